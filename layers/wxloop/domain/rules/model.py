"""What the engine is asked and what it answers: triggers, normalisation, rules, decisions, limits.

Triggers (``Trigger.kind``) and what a rule's ``keywords`` are matched against:
  - ``text``      the text of a message or the speech recognised in a voice message;
  - ``click``     the ``EventKey`` of a menu CLICK;
  - ``subscribe`` the QR scene of a new follower (``qrscene_`` prefix removed);
  - ``scan``      the QR scene scanned by an existing follower.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from wxloop.domain.inbound import Inbound
from wxloop.domain.replies import Reply
from wxloop.domain.rules.windows import TimeWindow

TRIGGERS = ("text", "click", "subscribe", "scan", "enter")
ACTIONS = ("opt_out_marketing",)  # what a rule may do beside replying (the webhook carries it out as a job)
MATCH_MODES = ("exact", "contains", "regex")  # also the tie-break order on equal priority
REGEX_MAX_LEN = 200
REGEX_TEXT_LIMIT = 512
KEYWORD_MAX_LEN = 256
MAX_RULES = 5000
MAX_REGEXES = 500
MAX_KEYWORDS = 20_000  # all keywords of a set: compiling stays well under a second inside a request
MAX_NEEDLE_CHARS = 100_000  # characters of all ``contains`` keywords of a set together
MAX_NESTED_NEEDLES = 6  # contains keywords that may end at one place of a text (卡, 会员卡, 金卡会员卡 ... )
DEFAULT_IDS = {"reply": "defaults.reply", "welcome": "defaults.welcome", "first_welcome": "defaults.first_welcome"}

_MODE_RANK = {mode: i for i, mode in enumerate(MATCH_MODES)}
# Invisible format characters (Unicode category Cf: soft hyphen, zero-width space/joiners, bidi marks, word
# joiner, BOM, tags) and lone surrogates: dropped before matching, so 退\u200b款 still contains 退款. The
# ranges are Unicode 15's Cf, written out so importing costs nothing.
_INVISIBLE_RE = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f\ud800-\udfff]"
)



@dataclass(frozen=True, slots=True)
class Trigger:
    kind: str  # "text" | "click" | "subscribe" | "scan" | "enter"
    value: str  # text / click key / scene ("" when none)


def trigger_for(inbound: Inbound) -> Trigger | None:
    """What a push asks the rule engine: text and voice → ``text``; menu click → ``click`` (EventKey);
    follow → ``subscribe`` (scene); existing follower's scan → ``scan`` (scene); anything else → None."""
    if inbound.msg_type in ("text", "voice"):
        return Trigger("text", inbound.text_for_rules)
    if inbound.msg_type == "event":
        if inbound.event == "click":
            return Trigger("click", inbound.event_key)
        if inbound.event == "subscribe":
            return Trigger("subscribe", inbound.scene)
        if inbound.event == "scan":
            return Trigger("scan", inbound.scene)
        if inbound.event == "user_enter_tempsession":  # a Mini Program's customer service, by its session-from
            return Trigger("enter", str(inbound.detail.get("SessionFrom") or ""))
    return None


def normalize(text: str) -> str:
    """Drop invisible format characters (Cf) and lone surrogates, NFKC (full-width → half-width), casefold,
    trim, collapse inner whitespace to one space."""
    if not text:
        return ""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", _INVISIBLE_RE.sub("", text))
    return " ".join(text.casefold().split())



@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    match: str
    keywords: tuple[str, ...]
    priority: int
    triggers: tuple[str, ...]
    reply: Reply
    needs: frozenset[str]
    position: int  # index in the file's rule list
    window: TimeWindow | None = None
    apps: frozenset[str] = frozenset()
    note: str = ""
    doc: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    action: str = ""
    variants: tuple[tuple[str, float, Reply], ...] = ()  # A/B replies (name, weight, reply); ``reply`` is the first

    @property
    def precedence(self) -> tuple[int, int, int]:
        """Sort key: smaller wins (higher priority, then exact < contains < regex, then file position)."""
        return (-self.priority, _MODE_RANK[self.match], self.position)


@dataclass(frozen=True, slots=True)
class Decision:
    rule_id: str
    reply: Reply
    needs: frozenset[str]  # placeholder names used by this reply
    action: str = ""  # one of ACTIONS, or "" (reply only)
    experiment: str = ""  # an A/B rule: ``rule:{id}`` and the variant the person gets
    variant: str = ""

