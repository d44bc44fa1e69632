"""A push from WeChat, normalised: what the rest of wxloop reasons about (no wire format here)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

# Events that open the short customer-service window (OA: 3 messages within 1 minute; a Mini Program's
# user_enter_tempsession: 2, see ``wxloop.domain.reach.MP_WINDOWS``).
SHORT_WINDOW_EVENTS = frozenset({"click", "scancode_push", "scancode_waitmsg", "subscribe", "scan",
                                 "user_enter_tempsession"})
# Messages that open the 48-hour window (miniprogrampage: a card sent to a Mini Program's customer service).
MESSAGE_TYPES = frozenset({"text", "image", "voice", "video", "shortvideo", "location", "link", "miniprogrampage"})


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def event_dedupe_key(fields: Mapping[str, object]) -> str:
    """The dedupe key of an event: a hash of ALL its fields (sender included), keys sorted at every level.

    WeChat repeats an event unchanged on retries, while two different events may share sender, CreateTime,
    Event and EventKey (two subscribe-message changes in one second). ``fields`` must be shallow enough for
    ``json`` (the parser caps the depth first).
    """
    return hashlib.blake2b(("e|" + _canonical(fields)).encode(), digest_size=12).hexdigest()


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message or event pushed by WeChat to an account.

    ``msg_type`` is the lower-case MsgType (``event`` for events); ``event`` the lower-case Event;
    ``scene`` the QR scene of a subscribe (``qrscene_`` prefix removed) or SCAN; ``detail`` the remaining
    fields worth keeping (media ids, URLs, coordinates, subscribe-message lists), all strings.
    """

    openid: str
    to_user: str
    msg_type: str
    create_time: int
    event: str = ""
    msg_id: str = ""
    content: str = ""
    event_key: str = ""
    scene: str = ""
    detail: Mapping[str, object] = field(default_factory=dict)
    dedupe_key: str = ""  # computed once (see ``_dedupe_key``); read many times on the hot path

    def __post_init__(self) -> None:
        if not self.dedupe_key:
            object.__setattr__(self, "dedupe_key", self._dedupe_key())

    @property
    def is_event(self) -> bool:
        return self.msg_type == "event"

    @property
    def kind(self) -> str:
        """``text``, ``image``, … for messages; ``event.<name>`` for events."""
        return f"event.{self.event}" if self.is_event else self.msg_type

    def _dedupe_key(self) -> str:
        """Stable across WeChat's retries of this push; short, so many fit on one item.

        Messages: sender + MsgId (MsgId collides across users). Events are keyed by their whole content
        (``event_dedupe_key``, given by the parser); without it, by the fields known here.
        """
        if self.msg_id and not self.is_event:
            basis = f"m|{self.openid}|{self.msg_id}"
        else:
            basis = f"e|{self.openid}|{self.create_time}|{self.event}|{self.event_key}|" + _canonical(self.detail)
        return hashlib.blake2b(basis.encode(), digest_size=12).hexdigest()

    @property
    def opens_message_window(self) -> bool:
        """A user message opens the 48-hour window (5 customer-service messages)."""
        return not self.is_event and self.msg_type in MESSAGE_TYPES

    @property
    def opens_short_window(self) -> bool:
        """A menu click, scan or follow opens the 1-minute window (3 customer-service messages)."""
        return self.is_event and self.event in SHORT_WINDOW_EVENTS

    @property
    def text_for_rules(self) -> str:
        """What keyword rules match: the text, or the speech recognised in a voice message."""
        if self.msg_type == "text":
            return self.content
        if self.msg_type == "voice":
            return str(self.detail.get("Recognition", "") or "")
        return ""
