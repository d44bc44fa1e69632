"""Reachability and channel choice for one person and one push (pure; the planner calls it per person).

Order, by cost to the person's attention and to what WeChat lets us spend:
1. a customer-service message in a window still open at the send time with messages left (OA: the person
   must follow; MP: 5 / 48 h after a message, 2 / 1 min after entering a session, see ``reach``);
2. an MP subscribe message, when the person holds a one-time credit for the campaign's template;
3. an OA template message: certified service accounts only, service notices only, followers only;
4. else skip, with the reason.
Within a step, the person's preferred platform wins when both are allowed. Consent, closed channels
(after 45015 / 43101) and frequency caps are checked first. The send time is the person's most active
Shanghai hour among the campaign's allowed hours (send window minus quiet hours) in the next 24 hours, else
the first allowed moment; never in quiet hours.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from wxloop.domain.config_doc import shanghai_hour
from wxloop.domain.reach import MP_WINDOWS, WINDOWS, Window


class _Nothing(dict[str, Any]):
    """An empty mapping that cannot change and can be hashed, so it may be a dataclass default (3.11 refuses
    unhashable defaults): no dict built per person, and C-speed ``get``."""

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]
        return 0

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("NOTHING is immutable")

    __setitem__ = __delitem__ = __ior__ = update = setdefault = pop = popitem = clear = _refuse  # type: ignore[assignment]


NOTHING: Mapping[str, Any] = _Nothing()  # the empty default of person views' mappings
Channel = Literal["oa_cs", "mp_cs", "mp_subscribe", "oa_template"]
CHANNELS: tuple[Channel, ...] = ("oa_cs", "mp_cs", "mp_subscribe", "oa_template")
PLATFORM: Mapping[str, str] = {"oa_cs": "oa", "mp_cs": "mp", "mp_subscribe": "mp", "oa_template": "oa"}
SEND_SLACK = 900  # seconds: a send released at its hour goes out within this; the window must last that long


class SkipReason(Enum):
    NOT_IN_SEGMENT = "not_in_segment"
    OPTED_OUT = "opted_out"
    NO_CONSENT = "no_consent"
    CAP_PER_DAY = "cap_per_day"
    CAP_PER_WEEK = "cap_per_week"
    TOO_SOON = "too_soon"
    NO_SEND_TIME = "no_send_time"
    NOT_FOLLOWER = "not_follower"
    WINDOW_CLOSED = "window_closed"
    WINDOW_EXHAUSTED = "window_exhausted"
    CHANNEL_CLOSED = "channel_closed"
    NO_CREDIT = "no_credit"
    NOT_SERVICE_ACCOUNT = "not_service_account"
    NOT_SERVICE_NOTICE = "not_service_notice"
    NO_CONTENT = "no_content"


@dataclass(frozen=True, slots=True)
class Skip:
    """No send; ``reason`` is the last fallback's failure, ``details`` each offered channel's."""

    reason: SkipReason
    details: tuple[tuple[str, SkipReason], ...] = ()


@dataclass(slots=True)  # not frozen: built per person on the planner's path, where frozen init costs twice
class Reachability:
    """What the picker knows of a person: follow state, identity items (CS window counters), one-time
    subscribe credits per template, marketing consent, channels closed by WeChat errors, recent pushes."""

    follows_oa: bool = False
    oa_identity: Mapping[str, object] | None = None
    mp_identity: Mapping[str, object] | None = None
    subscribe_credits: Mapping[str, int] = NOTHING
    consent: Literal["granted", "withdrawn", "unknown"] = "unknown"
    closed: frozenset[str] = frozenset()
    recent_pushes: tuple[int, ...] = ()
    preferred: str | None = None


@dataclass(frozen=True, slots=True)
class Offer:
    """What a campaign can send: the channels it has content for, its subscribe template, whether the OA is
    a service account, whether the content is a service notice, whether explicit consent is required."""

    channels: frozenset[str]
    subscribe_template: str = ""
    oa_service_account: bool = False
    service_notice: bool = False
    require_consent: bool = False


@dataclass(frozen=True, slots=True)
class PushCaps:
    per_day: int | None = None
    per_week: int | None = None
    min_gap: int = 0  # seconds since the last push


def window_state(identity: Mapping[str, object] | None, windows: tuple[Window, ...], at: int) -> SkipReason | None:
    """``None`` when a CS window is open from ``at`` to ``at + SEND_SLACK`` with a message left, else
    whether the windows are closed or open but used up (``reach.open_cs_windows``'s rule, without building
    its list: this runs per person in the planner)."""
    if not identity:
        return SkipReason.WINDOW_CLOSED
    until, used_up = at + SEND_SLACK, False
    for w in windows:
        at_key, sent_key = _WINDOW_KEYS.get(w.name) or _window_keys(w.name)
        opened = _int(identity.get(at_key))
        if opened and until < opened + w.seconds:
            if _int(identity.get(sent_key)) < w.cap:
                return None
            used_up = True
    return SkipReason.WINDOW_EXHAUSTED if used_up else SkipReason.WINDOW_CLOSED


_WINDOW_KEYS: dict[str, tuple[str, str]] = {}


def _window_keys(name: str) -> tuple[str, str]:
    _WINDOW_KEYS[name] = keys = (f"win_{name}_at", f"win_{name}_sent")
    return keys


def _int(value: object) -> int:
    try:
        return int(value or 0)  # type: ignore[call-overload,no-any-return]
    except (TypeError, ValueError):
        return 0


def check_caps(caps: PushCaps, recent: Sequence[int], at: int) -> SkipReason | None:
    """Why a push at ``at`` would break a frequency cap, or ``None``."""
    if not recent:
        return None
    ages = [at - t for t in recent]
    if caps.min_gap and min(ages) < caps.min_gap:
        return SkipReason.TOO_SOON
    if caps.per_day is not None and len([a for a in ages if a < 86400]) >= caps.per_day:
        return SkipReason.CAP_PER_DAY
    if caps.per_week is not None and len([a for a in ages if a < 7 * 86400]) >= caps.per_week:
        return SkipReason.CAP_PER_WEEK
    return None


def send_candidates(allowed: Sequence[bool], now: int, not_after: int | None = None) -> tuple[tuple[int, int], ...]:
    """The allowed moments of the next 24 hours as (Shanghai hour, time): ``now`` itself when its hour is
    allowed, then the start of each later allowed hour, up to ``not_after``."""
    first_hour, boundary = shanghai_hour(now), now - (now % 3600) + 3600  # Shanghai is a whole-hour offset
    out = []
    for i in range(24):
        hour = (first_hour + i) % 24
        if not allowed[hour]:
            continue
        at = now if i == 0 else boundary + (i - 1) * 3600
        if not_after is not None and at > not_after:
            break
        out.append((hour, at))
    return tuple(out)


def best_time(candidates: Sequence[tuple[int, int]], hours: Sequence[int]) -> tuple[int, int]:
    """The candidate whose hour has the most activity in ``hours``, the earliest on a tie; ``candidates``
    must not be empty."""
    best, best_count = candidates[0], hours[candidates[0][0]]
    for candidate in candidates:
        count = hours[candidate[0]]
        if count > best_count:
            best, best_count = candidate, count
    return best


def send_time(hours: Sequence[int], allowed: Sequence[bool], now: int, not_after: int | None = None) -> int | None:
    """When to send: the start of the allowed Shanghai hour with the most activity in ``hours`` within the
    next 24 hours (``now`` itself when the current hour wins), the earliest on a tie; ``None`` when no allowed
    moment falls before ``not_after``."""
    candidates = send_candidates(allowed, now, not_after)
    return best_time(candidates, hours)[1] if candidates else None


def _availability(offer: Offer, reach: Reachability, at: int) -> dict[str, SkipReason | None]:
    """Per offered channel: ``None`` if usable at ``at``, else why not."""
    out: dict[str, SkipReason | None] = {}
    for ch in CHANNELS:
        if ch not in offer.channels:
            continue
        if ch in reach.closed:
            out[ch] = SkipReason.CHANNEL_CLOSED
        elif ch in ("oa_cs", "oa_template") and not reach.follows_oa:
            out[ch] = SkipReason.NOT_FOLLOWER
        elif ch == "oa_cs":
            out[ch] = window_state(reach.oa_identity, WINDOWS, at)
        elif ch == "mp_cs":
            out[ch] = window_state(reach.mp_identity, MP_WINDOWS, at)
        elif ch == "mp_subscribe":
            ok = reach.subscribe_credits.get(offer.subscribe_template, 0) > 0
            out[ch] = None if ok else SkipReason.NO_CREDIT
        elif not offer.oa_service_account:
            out[ch] = SkipReason.NOT_SERVICE_ACCOUNT
        else:
            out[ch] = None if offer.service_notice else SkipReason.NOT_SERVICE_NOTICE
    return out


def pick_channel(
    offer: Offer, reach: Reachability, caps: PushCaps, at: int,
    preferred: str | Callable[[], str | None] | None = None,
) -> Channel | Skip:
    """The channel for a push to this person at ``at``, or why none (see the module's order).
    ``preferred`` (a platform, or a function giving it, called only when two channels of a tier are allowed)
    overrides ``reach.preferred``."""
    if reach.consent == "withdrawn":
        return Skip(SkipReason.OPTED_OUT)
    if offer.require_consent and reach.consent != "granted":
        return Skip(SkipReason.NO_CONSENT)
    capped = check_caps(caps, reach.recent_pushes, at)
    if capped is not None:
        return Skip(capped)
    usable = _availability(offer, reach, at)
    for tier in (("oa_cs", "mp_cs"), ("mp_subscribe", "oa_template")):
        allowed = [ch for ch in tier if ch in usable and usable[ch] is None]
        if len(allowed) > 1:
            platform = (preferred() if callable(preferred) else preferred) or reach.preferred
            first = [ch for ch in allowed if PLATFORM[ch] == platform]
            return (first or allowed)[0]
        if allowed:
            return allowed[0]
    details = tuple((ch, r) for ch, r in usable.items() if r is not None)
    return Skip(details[-1][1] if details else SkipReason.NO_CONTENT, details)
