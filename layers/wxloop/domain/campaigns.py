"""Campaigns: who gets a push, through which channel, at what time (pure; the planner calls it per person).

A campaign has a segment (filters below), content per channel, a schedule, frequency caps, quiet hours and
a send window (Shanghai hours). ``matches`` decides membership; ``plan_person`` adds the channel (see
``channel_pick``) and the send time. People who withdrew marketing consent are never selected, whatever
the segment says. OA template messages are for service notices on service accounts only, so a marketing
campaign cannot carry one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from wxloop.domain import config_doc as doc
from wxloop.domain.campaign_content import (
    APP_ID,
    Variant,
    accounts_of,
    check_channels,
    content_of,
    variants_of,
)
from wxloop.domain.channel_pick import (
    NOTHING,
    PLATFORM,
    Channel,
    Offer,
    PushCaps,
    Reachability,
    Skip,
    SkipReason,
    best_time,
    check_caps,
    pick_channel,
    send_candidates,
)
from wxloop.domain.engagement import Profile, last_active, preferred_platform, score

SCHEDULE_EXPR = re.compile(r"(cron\([^()]{9,100}\)|rate\(\d{1,4} (minute|minutes|hour|hours|day|days)\))")
_KEYS = ("id", "name", "purpose", "accounts", "segment", "content", "variants", "schedule", "caps",
         "quiet_hours", "send_window")
_SEGMENT_KEYS = ("oa_tags", "mp_preferences", "follows_oa", "uses_mp", "last_active_days", "first_touch_channel",
                 "points", "engagement_score", "marketing_consent")


@dataclass(frozen=True, slots=True)
class Segment:
    tags_any: frozenset[int] = frozenset()
    tags_all: frozenset[int] = frozenset()
    tags_none: frozenset[int] = frozenset()
    prefs: tuple[tuple[str, frozenset[str]], ...] = ()
    follows_oa: bool | None = None
    uses_mp: str = ""
    active_days: tuple[float | None, float | None] = (None, None)  # last active between min and max days ago
    first_touch: frozenset[str] = frozenset()
    points: tuple[float | None, float | None] = (None, None)
    score: tuple[float | None, float | None] = (None, None)
    consent_granted: bool = False  # True: explicit consent; False: anyone who has not opted out


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    name: str
    purpose: Literal["marketing", "service"]
    accounts: Mapping[str, str]  # "oa", "mp": app ids
    segment: Segment
    content: Mapping[str, Mapping[str, Any]]
    offer: Offer
    caps: PushCaps
    allowed_hours: tuple[bool, ...]  # 24 flags: inside the send window and outside quiet hours
    start: int
    end: int
    recurring: str = ""
    variants: tuple[Variant, ...] = ()  # A/B content, sticky per person (``campaign_content.variant_for``)


@dataclass(slots=True)  # not frozen: built per person on the planner's path, where frozen init costs twice
class PersonView:
    """What planning reads of a person (built by the adapter from the person and identity items). The
    engagement profile is given as ``profile`` or as its stored document ``profile_doc`` (``Profile.to_doc``,
    or that as JSON text), read only when the send time or a filter needs it (``engagement``); ``active_at``,
    the last activity when the store keeps it beside the profile, spares the last-active filter that read."""

    uid: str
    oa_tags: frozenset[int] = frozenset()
    mp_prefs: Mapping[str, str | tuple[str, ...]] = NOTHING
    mp_apps: frozenset[str] = frozenset()
    first_touch_channel: str = ""
    points: int = 0
    profile: Profile | None = None
    reach: Reachability = field(default_factory=Reachability)
    profile_doc: Mapping[str, Any] | str | None = None
    active_at: int | None = None

    @property
    def engagement(self) -> Profile:
        if self.profile is None:
            doc_ = self.profile_doc
            self.profile = Profile.from_text(doc_) if isinstance(doc_, str) else Profile.from_doc(doc_)
        return self.profile


@dataclass(frozen=True, slots=True)
class SendPlan:
    campaign: str
    uid: str
    channel: Channel | Literal["oa_mass"]
    app_id: str
    send_at: int
    send_hour: int  # Shanghai hour, the planner's batch


def send_key(campaign: str, run: str, uid: str) -> str:
    """The idempotency key of one send: a rerun or retry of the same run never sends twice."""
    return f"{campaign}#{run}#{uid}"


Check = Callable[[PersonView], bool]
_DAY = 86400


def _bounds(bounds: tuple[float | None, float | None]) -> tuple[float, float]:
    low, high = bounds
    return (-float("inf") if low is None else low), (float("inf") if high is None else high)


def _segment_checks(segment: Segment, now: int) -> list[Check]:  # noqa: C901 - one branch per filter, flat
    """The segment's filters as closures, cheapest first; a filter the segment does not use costs nothing."""
    checks: list[Check] = []
    if segment.consent_granted:
        checks.append(lambda p: p.reach.consent == "granted")
    else:  # opted-out people are never selected, whatever the segment says
        checks.append(lambda p: p.reach.consent != "withdrawn")
    if segment.follows_oa is not None:
        follows = segment.follows_oa
        checks.append(lambda p: p.reach.follows_oa == follows)
    if segment.uses_mp:
        app = segment.uses_mp
        checks.append(lambda p: app in p.mp_apps)
    if segment.tags_any:
        any_of = segment.tags_any
        checks.append(lambda p: not any_of.isdisjoint(p.oa_tags))
    if segment.tags_all:
        all_of = segment.tags_all
        checks.append(lambda p: all_of <= p.oa_tags)
    if segment.tags_none:
        none_of = segment.tags_none
        checks.append(lambda p: none_of.isdisjoint(p.oa_tags))
    if segment.first_touch:
        channels = segment.first_touch
        checks.append(lambda p: p.first_touch_channel in channels)
    if segment.points != (None, None):
        low, high = _bounds(segment.points)
        checks.append(lambda p: low <= p.points <= high)
    checks.extend(_preference_check(key, accepted) for key, accepted in segment.prefs)
    if segment.active_days != (None, None):
        fewest, most = _bounds(segment.active_days)
        checks.append(lambda p: _active_between(p, now, fewest, most))
    if segment.score != (None, None):
        low_score, high_score = _bounds(segment.score)
        checks.append(lambda p: low_score <= score(p.engagement, now) <= high_score)
    return checks


def _preference_check(key: str, accepted: frozenset[str]) -> Check:
    def check(p: PersonView) -> bool:
        value = p.mp_prefs.get(key, ())
        return not accepted.isdisjoint((value,) if isinstance(value, str) else value)
    return check


def _active_between(person: PersonView, now: int, fewest: float, most: float) -> bool:
    last = person.active_at if person.active_at is not None else last_active(person.engagement)
    return last is not None and fewest <= (now - last) / _DAY <= most


def compile_segment(segment: Segment, now: int) -> Check:
    """Whether a person is in ``segment`` at ``now``, as one function built once per run. Opted-out people
    never are."""
    checks = tuple(_segment_checks(segment, now))

    def member(person: PersonView) -> bool:
        for check in checks:
            if not check(person):
                return False
        return True
    return member


def matches(segment: Segment, person: PersonView, now: int) -> bool:
    """Whether ``person`` is in ``segment`` at ``now`` (``compile_segment`` for one person)."""
    return compile_segment(segment, now)(person)


class Planner:
    """``plan_person`` compiled once per run: the segment's checks, and the send-time candidates (each allowed
    Shanghai hour of the next 24 with its start time), so a person costs a few closure calls and a scan of
    at most 24 (hour, time) pairs; no datetime, no parsing."""

    __slots__ = ("_mass", "_times", "campaign", "member", "now")

    def __init__(self, campaign: Campaign, now: int) -> None:
        self.campaign, self.now = campaign, now
        self.member = compile_segment(campaign.segment, now)
        self._times = send_candidates(campaign.allowed_hours, max(now, campaign.start), campaign.end)
        self._mass = "oa_mass" in campaign.content

    def plan(self, person: PersonView) -> SendPlan | Skip:
        """The send for ``person``, or why there is none (not in the segment first)."""
        return self.plan_member(person) if self.member(person) else Skip(SkipReason.NOT_IN_SEGMENT)

    def plan_member(self, person: PersonView) -> SendPlan | Skip:
        """``plan`` for a person already known to be in the segment."""
        campaign, reach = self.campaign, person.reach
        mass = self._mass and reach.follows_oa
        if not self._times:
            return Skip(SkipReason.NO_SEND_TIME)
        hour, at = self._times[0] if mass else best_time(self._times, person.engagement.hours)
        if mass:
            capped = check_caps(campaign.caps, reach.recent_pushes, at)
            if capped is not None:
                return Skip(capped)
            return SendPlan(campaign.id, person.uid, "oa_mass", campaign.accounts["oa"], at, hour)
        channel = pick_channel(campaign.offer, reach, campaign.caps, at,
                               lambda: preferred_platform(person.engagement, self.now))
        if isinstance(channel, Skip):
            return channel
        return SendPlan(campaign.id, person.uid, channel, campaign.accounts[PLATFORM[channel]], at, hour)


def plan_person(campaign: Campaign, person: PersonView, now: int) -> SendPlan | Skip:
    """The send for ``person`` in a run of ``campaign`` started at ``now``, or why there is none.

    With ``oa_mass`` content, followers are planned for the one mass send (tagged, then sent once to the tag
    at the first allowed moment); everyone else goes through the channel picker at their own hour. The
    planner builds a ``Planner`` once per run instead."""
    return Planner(campaign, now).plan(person)


# ----------------------------------------------------------------------------------------------- parsing


def _range(value: object, path: str, *, low: float = 0) -> tuple[float | None, float | None]:
    m = doc.mapping(value, path, ("min", "max"))
    lo = doc.number(m["min"], f"{path}.min", low=low) if "min" in m else None
    hi = doc.number(m["max"], f"{path}.max", low=low) if "max" in m else None
    if lo is not None and hi is not None and lo > hi:
        raise doc.ConfigError(path, "min is greater than max")
    return lo, hi


def _tags(value: object, path: str) -> frozenset[int]:
    return frozenset(doc.integer(t, f"{path}[{i}]", low=1) for i, t in enumerate(doc.items(value, path)))


def _names(value: object, path: str) -> frozenset[str]:
    return frozenset(doc.text(t, f"{path}[{i}]", max_len=64) for i, t in enumerate(doc.items(value, path)))


def parse_segment(value: object, path: str) -> Segment:
    """A segment from its document; raises :class:`ConfigError` naming the bad field."""
    m = doc.mapping(value, path, _SEGMENT_KEYS)
    tags = doc.mapping(m.get("oa_tags", {}), f"{path}.oa_tags", ("any", "all", "none"))
    prefs = doc.string_map(m["mp_preferences"], f"{path}.mp_preferences") if "mp_preferences" in m else {}
    def at(key: str) -> str:
        return f"{path}.{key}"

    consent = doc.choice(m.get("marketing_consent", "not_withdrawn"), at("marketing_consent"),
                         ("granted", "not_withdrawn"))
    return Segment(
        tags_any=_tags(tags["any"], f"{path}.oa_tags.any") if "any" in tags else frozenset(),
        tags_all=_tags(tags["all"], f"{path}.oa_tags.all") if "all" in tags else frozenset(),
        tags_none=_tags(tags["none"], f"{path}.oa_tags.none") if "none" in tags else frozenset(),
        prefs=tuple((str(k), _names(v, f"{path}.mp_preferences.{k}")) for k, v in prefs.items()),
        follows_oa=doc.flag(m["follows_oa"], at("follows_oa")) if "follows_oa" in m else None,
        uses_mp=doc.text(m["uses_mp"], at("uses_mp"), pattern=APP_ID) if "uses_mp" in m else "",
        active_days=_range(m["last_active_days"], at("last_active_days")) if "last_active_days" in m
        else (None, None),
        first_touch=_names(m["first_touch_channel"], at("first_touch_channel")) if "first_touch_channel" in m
        else frozenset(),
        points=_range(m["points"], at("points")) if "points" in m else (None, None),
        score=_range(m["engagement_score"], at("engagement_score")) if "engagement_score" in m else (None, None),
        consent_granted=consent == "granted",
    )


def _schedule(value: object, path: str) -> tuple[int, int, str]:
    m = doc.mapping(value, path, ("start", "end", "recurring"), ("start", "end"))
    start, end = doc.moment(m["start"], f"{path}.start"), doc.moment(m["end"], f"{path}.end")
    if end <= start:
        raise doc.ConfigError(f"{path}.end", "must be after start")
    recurring = doc.text(m["recurring"], f"{path}.recurring", pattern=SCHEDULE_EXPR) if "recurring" in m else ""
    return start, end, recurring


def _caps(value: object, path: str) -> PushCaps:
    m = doc.mapping(value, path, ("per_day", "per_week", "min_gap_hours"))
    return PushCaps(
        per_day=doc.integer(m["per_day"], f"{path}.per_day", low=1, high=10) if "per_day" in m else None,
        per_week=doc.integer(m["per_week"], f"{path}.per_week", low=1, high=50) if "per_week" in m else None,
        min_gap=doc.integer(m.get("min_gap_hours", 0), f"{path}.min_gap_hours", high=24 * 30) * 3600,
    )


def parse_campaign(value: object, path: str) -> Campaign:  # one field per line: long but flat
    """One campaign from its document; raises :class:`ConfigError` naming the bad field."""
    m = doc.mapping(value, path, _KEYS, ("id", "accounts", "segment", "content", "schedule"))
    purpose = doc.choice(m.get("purpose", "marketing"), f"{path}.purpose", ("marketing", "service"))
    accounts = accounts_of(m["accounts"], f"{path}.accounts")
    content = content_of(m["content"], f"{path}.content")
    check_channels(content, accounts, purpose, path)
    window = doc.span_hours(*doc.hour_span(m.get("send_window", "09-21"), f"{path}.send_window"))
    quiet = doc.span_hours(*doc.hour_span(m.get("quiet_hours", "22-08"), f"{path}.quiet_hours"))
    allowed = tuple(h in window and h not in quiet for h in range(24))
    if not any(allowed):
        raise doc.ConfigError(f"{path}.send_window", "lies entirely in the quiet hours")
    start, end, recurring = _schedule(m["schedule"], f"{path}.schedule")
    segment = parse_segment(m["segment"], f"{path}.segment")
    template = content.get("mp_subscribe", {}).get("template_id", "")
    offer = Offer(frozenset(content) - {"oa_mass"}, template, accounts["oa_type"] == "service",
                  purpose == "service", segment.consent_granted)
    return Campaign(
        id=doc.text(m["id"], f"{path}.id", pattern=doc.NAME), name=doc.text(m.get("name", m["id"]), f"{path}.name"),
        purpose=purpose,  # type: ignore[arg-type]
        accounts=accounts, segment=segment, content=content, offer=offer,
        caps=_caps(m.get("caps", {}), f"{path}.caps"), allowed_hours=allowed, start=start, end=end,
        recurring=recurring, variants=variants_of(m.get("variants"), content, f"{path}.variants"),
    )


def parse_campaign_doc(value: object) -> tuple[Campaign, ...]:
    """The campaigns of a document ``{version?, campaigns: [...]}``; ids must be unique."""
    m = doc.mapping(value, "", ("version", "campaigns"), ("campaigns",))
    out = tuple(parse_campaign(c, f"campaigns[{i}]") for i, c in enumerate(doc.items(m["campaigns"], "campaigns")))
    doc.unique_ids([c.id for c in out], "campaigns")
    return out
