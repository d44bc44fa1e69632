"""Engagement profile per person, kept from journey events (pure; the stream function applies it).

- a **decayed activity score** per platform (``oa``, ``mp``): each event adds its weight, and the score
  halves every ``HALF_LIFE`` seconds; stored as (score, as-of time), decayed on read;
- a **24-bin hour-of-day histogram** in Asia/Shanghai (halved whenever a bin reaches ``HOUR_CAP``, so it stays
  small and follows a person whose habits change);
- **last active** time per platform and the **preferred platform** (the higher score now).

``Profile.to_doc()`` / ``from_doc()`` give a small JSON/DynamoDB-friendly mapping (~30 numbers).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from wxloop.domain.config_doc import shanghai_hour

Platform = Literal["oa", "mp"]
PLATFORMS: tuple[Platform, ...] = ("oa", "mp")
HALF_LIFE = 14 * 86400
HOUR_CAP = 250
# What an event says about attention: a message is deliberate, a page view or a session is light.
WEIGHTS: Mapping[str, float] = {
    "message": 3.0, "subscribe": 3.0, "menu_click": 2.0, "scan": 2.0, "order": 4.0, "phone_bound": 3.0,
    "session": 1.0, "page_view": 0.5, "share": 1.0, "subscribe_msg_accept": 1.0, "push_opened": 2.0,
}


@dataclass(frozen=True, slots=True)
class JourneyEvent:
    type: str
    platform: str
    at: int


@dataclass(frozen=True, slots=True)
class Profile:
    """``scores[p]`` is the score at ``score_at[p]``; ``hours[h]`` counts events in Shanghai hour ``h``."""

    scores: Mapping[str, float] = field(default_factory=dict)
    score_at: Mapping[str, int] = field(default_factory=dict)
    last_active: Mapping[str, int] = field(default_factory=dict)
    hours: tuple[int, ...] = (0,) * 24

    def to_doc(self) -> dict[str, Any]:
        """A plain mapping (scores rounded to 3 places, which is ample for ranking)."""
        return {"s": {p: [round(s, 3), self.score_at[p]] for p, s in self.scores.items()},
                "l": dict(self.last_active), "h": list(self.hours)}

    @classmethod
    def from_doc(cls, d: Mapping[str, Any] | None) -> Profile:
        """The profile stored by :meth:`to_doc`; anything unreadable gives an empty profile."""
        if not d:
            return _EMPTY
        scores: dict[str, float] = {}
        score_at: dict[str, int] = {}
        last: dict[str, int] = {}
        try:
            stored, stamps = d.get("s") or {}, d.get("l") or {}
            for p in PLATFORMS:
                if p in stored:
                    scores[p], score_at[p] = float(stored[p][0]), int(stored[p][1])
                if p in stamps:
                    last[p] = int(stamps[p])
            hours = tuple(map(int, d.get("h", _NO_HOURS)))
        except (TypeError, ValueError, IndexError, KeyError, AttributeError):
            return _EMPTY
        if len(hours) != 24:
            hours = _NO_HOURS
        return cls(scores, score_at, last, hours)

    @classmethod
    def from_text(cls, text: str | None) -> Profile:
        """The profile stored as the JSON text of :meth:`to_doc`; anything unreadable gives an empty profile."""
        try:
            d = _decode(text)[0] if text else None
        except (ValueError, RecursionError):
            return _EMPTY
        return cls.from_doc(d) if isinstance(d, Mapping) else _EMPTY


_NO_HOURS = (0,) * 24
_EMPTY = Profile()
_decode = json.JSONDecoder().raw_decode  # the stored text is compact: no surrounding whitespace to skip


def _decay(score: float, seconds: float) -> float:
    return score * math.pow(0.5, seconds / HALF_LIFE)


def update(profile: Profile, event: JourneyEvent) -> Profile:
    """The profile after ``event``. Unknown event types or platforms leave it unchanged; an event older
    than the stored score time (out of order) adds its weight decayed to that time, so order does not
    matter to the score."""
    weight = WEIGHTS.get(event.type)
    if weight is None or event.platform not in PLATFORMS:
        return profile
    p = event.platform
    old, old_at = profile.scores.get(p, 0.0), profile.score_at.get(p, event.at)
    if event.at >= old_at:
        new_score, new_at = _decay(old, event.at - old_at) + weight, event.at
    else:
        new_score, new_at = old + _decay(weight, old_at - event.at), old_at
    hours = list(profile.hours)
    hours[shanghai_hour(event.at)] += 1
    if max(hours) >= HOUR_CAP:
        hours = [h // 2 for h in hours]
    return Profile(
        {**profile.scores, p: new_score}, {**profile.score_at, p: new_at},
        {**profile.last_active, p: max(event.at, profile.last_active.get(p, 0))}, tuple(hours),
    )


def replay(events: Iterable[JourneyEvent], profile: Profile | None = None) -> Profile:
    """The profile after ``events`` in order (for backfills and tests)."""
    out = profile or Profile()
    for event in events:
        out = update(out, event)
    return out


def score(profile: Profile, now: int, platform: str | None = None) -> float:
    """The decayed score at ``now`` on ``platform``, or summed over platforms when ``None``."""
    platforms = PLATFORMS if platform is None else (platform,)
    return sum(_decay(profile.scores[p], max(now - profile.score_at[p], 0)) for p in platforms if p in profile.scores)


def preferred_platform(profile: Profile, now: int) -> str | None:
    """The platform with the higher score at ``now`` (ties: the one active last); ``None`` if no activity."""
    best: tuple[float, int, str] | None = None
    for p in PLATFORMS:
        if p in profile.scores:
            key = (score(profile, now, p), profile.last_active.get(p, 0), p)
            best = key if best is None or key > best else best
    return best[2] if best else None


def last_active(profile: Profile) -> int | None:
    """The last activity on any platform."""
    return max(profile.last_active.values(), default=None)


# Journey event types (``{platform}.{kind}``) as engagement events; a type not listed here and not a message
# carries no attention signal (unsubscribe, outbox, template-send reports).
_JOURNEY_KINDS: Mapping[str, str] = {
    "event.subscribe": "subscribe", "event.scan": "scan", "event.click": "menu_click", "event.view": "menu_click",
    "event.scancode_push": "menu_click", "event.scancode_waitmsg": "menu_click",
    "event.view_miniprogram": "menu_click", "event.subscribe_msg_popup_event": "subscribe_msg_accept",
    "launch": "session", "first_launch": "session", "share_open": "session", "page_view": "page_view",
    "client.page_view": "page_view", "order_paid": "order", "client.order_paid": "order",
    "phone_bound": "phone_bound", "registered": "phone_bound", "share": "share", "client.share": "share",
}
_MESSAGE_KINDS = frozenset({"text", "image", "voice", "video", "shortvideo", "location", "link", "file"})


def from_journey(event_type: str, at: int) -> JourneyEvent | None:
    """The engagement event a journey event stands for (``oa.text`` → a message on ``oa``), or None when it
    says nothing about attention. Other ``mp.client.*`` events (the MP's own analytics) count as page views."""
    platform, _, kind = str(event_type).partition(".")
    if platform not in PLATFORMS or not kind:
        return None
    mapped = _JOURNEY_KINDS.get(kind) or ("message" if kind in _MESSAGE_KINDS else None)
    if mapped is None and platform == "mp" and kind.startswith("client."):
        mapped = "page_view"
    return None if mapped is None else JourneyEvent(mapped, platform, int(at))
