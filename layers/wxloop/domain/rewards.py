"""Rewards: reward campaign config, its validation, and who gets paid for which event (pure).

An inviter is rewarded for the **invitee's real action**, never for a share or a follow (WeChat bans that and
bans Mini Programs for it): a qualifying action is a bound phone number, N active days, or a brand event
(``first_order``) posted by the brand's server. Validation refuses any event name that smells of sharing,
following or a lottery, also when disguised: a name is read with separators dropped and look-alike digits
as letters (``shar_e``, ``fo11ow``) before the check. A blocklist, not a per-campaign allow-list, because
the brand names its own events; the normalised reading keeps the obvious disguises out. Ledger entry ids are derived from (campaign, invitee), so the repository's
conditional transaction makes a repeat a no-op: exactly once by construction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from wxloop.domain import config_doc as doc
from wxloop.domain.attribution import Referral

QualifyKind = Literal["phone_bound", "active_days", "event"]
EVENT_NAME = re.compile(r"[a-z][a-z0-9_]{1,39}")
# What makes a "qualifying" event the share, follow or luck itself: WeChat's operating rules ban them.
BANNED_STEMS = ("share", "follow", "forward", "repost", "subscribe", "lottery")
BANNED_WORDS = frozenset({"invite", "invited", "like", "liked", "collect", "draw", "spin", "luck", "lucky", "moments"})
_CAMPAIGN_KEYS = ("id", "name", "qualify", "points", "caps", "notify", "reverse_on", "ref_max_age_days")


@dataclass(frozen=True, slots=True)
class Qualify:
    kind: QualifyKind
    days: int = 0  # active_days only
    event: str = ""  # event only


@dataclass(frozen=True, slots=True)
class Caps:
    """Rewards at most this many: per inviter per Shanghai day, per inviter in the campaign, in total."""

    per_inviter_per_day: int | None = None
    per_inviter: int | None = None
    total: int | None = None


@dataclass(frozen=True, slots=True)
class Notify:
    """How the inviter is told: a CS text in an open window, else this MP subscribe template."""

    text: str
    template_id: str = ""
    page: str = ""
    data: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class RewardCampaign:
    id: str
    name: str
    qualify: Qualify
    points: int
    caps: Caps
    notify: Notify | None = None
    reverse_on: frozenset[str] = frozenset()
    ref_max_age_days: int = 30


# Digits that stand in for letters (fo11ow, sh4re, 1ike): each name is also read with these replaced.
_LOOKALIKES = (str.maketrans("0134578", "oieastb"), str.maketrans("0134578", "oleastb"))


def _readings(name: str) -> set[str]:
    """``name`` as a reader may see it: as written, and with look-alike digits read as letters."""
    return {name.lower(), *(name.lower().translate(table) for table in _LOOKALIKES)}


def _is_banned(name: str) -> bool:
    """Whether any reading of ``name`` names a share, follow or luck: by word, or by stem with the
    separators and digits between letters dropped (``shar_e``, ``fo11ow``)."""
    for reading in _readings(name):
        squashed = re.sub(r"[^a-z]", "", reading)
        words = set(re.split(r"[^a-z]+", reading))
        if words & BANNED_WORDS or squashed in BANNED_WORDS or any(stem in squashed for stem in BANNED_STEMS):
            return True
    return False


def _refuse_banned(name: str, path: str) -> None:
    if _is_banned(name):
        raise doc.ConfigError(path, "rewards may not be paid for sharing, following or luck (WeChat's rules): "
                                    "qualify on the invitee's real action such as first_order")


def _event_name(value: object, path: str) -> str:
    name = doc.text(value, path, max_len=40, pattern=EVENT_NAME)
    _refuse_banned(name, path)
    return name


def _qualify(value: object, path: str) -> Qualify:
    if isinstance(value, str):
        _refuse_banned(value, path)
        if value == "phone_bound":
            return Qualify("phone_bound")
        raise doc.ConfigError(path, "must be phone_bound, {active_days: N} or {event: NAME}")
    m = doc.mapping(value, path, ("active_days", "event"))
    if len(m) != 1:
        raise doc.ConfigError(path, "must be phone_bound, {active_days: N} or {event: NAME}")
    if "active_days" in m:
        return Qualify("active_days", days=doc.integer(m["active_days"], f"{path}.active_days", low=1, high=365))
    return Qualify("event", event=_event_name(m["event"], f"{path}.event"))


def _caps(value: object, path: str) -> Caps:
    m = doc.mapping(value, path, ("per_inviter_per_day", "per_inviter", "total"))
    got = {k: doc.integer(v, doc.join(path, k), low=1) for k, v in m.items()}
    return Caps(**got)


def _notify(value: object, path: str) -> Notify:
    m = doc.mapping(value, path, ("text", "template_id", "page", "data"), ("text",))
    data = doc.template_data(m["data"], f"{path}.data", subscribe=True) if "data" in m else None
    return Notify(
        text=doc.text(m["text"], f"{path}.text", max_len=600),
        template_id=doc.text(m["template_id"], f"{path}.template_id", max_len=64) if "template_id" in m else "",
        page=doc.text(m["page"], f"{path}.page", max_len=128) if "page" in m else "",
        data=data,
    )


def parse_campaign(value: object, path: str) -> RewardCampaign:
    """One reward campaign from its document; raises :class:`ConfigError` naming the bad field."""
    m = doc.mapping(value, path, _CAMPAIGN_KEYS, ("id", "qualify", "points"))
    reverse = m.get("reverse_on", [])
    reverse_on = frozenset(_event_name(v, f"{path}.reverse_on[{i}]")
                           for i, v in enumerate(doc.items(reverse, f"{path}.reverse_on"))) if reverse else frozenset()
    return RewardCampaign(
        id=doc.text(m["id"], f"{path}.id", pattern=doc.NAME),
        name=doc.text(m.get("name", m["id"]), f"{path}.name", max_len=60),
        qualify=_qualify(m["qualify"], f"{path}.qualify"),
        points=doc.integer(m["points"], f"{path}.points", low=1, high=1_000_000),
        caps=_caps(m.get("caps", {}), f"{path}.caps"),
        notify=_notify(m["notify"], f"{path}.notify") if "notify" in m else None,
        reverse_on=reverse_on,
        ref_max_age_days=doc.integer(m.get("ref_max_age_days", 30), f"{path}.ref_max_age_days", low=1, high=365),
    )


def parse_reward_doc(value: object) -> tuple[RewardCampaign, ...]:
    """The campaigns of a rewards document ``{version?, campaigns: [...]}``; ids must be unique."""
    m = doc.mapping(value, "", ("version", "campaigns"), ("campaigns",))
    out = tuple(parse_campaign(c, f"campaigns[{i}]") for i, c in enumerate(doc.items(m["campaigns"], "campaigns")))
    doc.unique_ids([c.id for c in out], "campaigns")
    return out


# ------------------------------------------------------------------------------------------- decisions


@dataclass(frozen=True, slots=True)
class InviteeEvent:
    """Something the invitee did: ``phone_bound``, an ``active_day`` (with the count so far), or a brand
    ``event`` by name (the partner API posts these)."""

    kind: Literal["phone_bound", "active_day", "event"]
    invitee: str
    at: int
    name: str = ""
    active_days: int = 0


@dataclass(frozen=True, slots=True)
class Tallies:
    """Counts the caps need, read by the caller: rewards already paid to this inviter today (Shanghai day)
    and in this campaign, rewards paid in the campaign in total, the inviter's balance, and the inviter's
    debt (points reversals could not take back from a spent balance)."""

    inviter_today: int = 0
    inviter_in_campaign: int = 0
    campaign_total: int = 0
    inviter_balance: int = 0
    inviter_debt: int = 0


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A change to ``uid``'s points; ``entry_id`` is the same for the same cause, so it is written once."""

    entry_id: str
    uid: str
    points: int
    reason: str
    campaign: str
    invitee: str
    at: int


@dataclass(frozen=True, slots=True)
class Reward:
    """Move the referral pending → rewarded, write ``entry`` and lower the inviter's debt by
    ``debt_repaid`` in one transaction. ``entry.points`` is the campaign's points less ``debt_repaid``
    (≥ 0): a reward first pays back what an earlier reversal could not take."""

    entry: LedgerEntry
    debt_repaid: int = 0


@dataclass(frozen=True, slots=True)
class Reversal:
    """Move the referral rewarded → reversed, write the compensating ``entry`` (points ≤ 0; never below a
    zero balance) and add ``shortfall`` (what the balance could not give back) to the inviter's debt, in one
    transaction; later rewards repay the debt first (:attr:`Reward.debt_repaid`)."""

    entry: LedgerEntry
    shortfall: int

    @property
    def debt_added(self) -> int:
        return self.shortfall


class NoReward(Enum):
    NOT_PENDING = "not_pending"
    ALREADY_REWARDED = "already_rewarded"
    OTHER_CAMPAIGN = "other_campaign"
    NOT_QUALIFYING = "not_qualifying"
    TOO_FEW_DAYS = "too_few_days"
    REFERRAL_TOO_OLD = "referral_too_old"
    CAP_DAY = "cap_per_inviter_per_day"
    CAP_INVITER = "cap_per_inviter"
    CAP_TOTAL = "cap_total"
    NOTHING_TO_REVERSE = "nothing_to_reverse"
    NOT_THE_INVITEE = "not_the_invitee"
    SELF_REFERRAL = "self_referral"
    BEFORE_REFERRAL = "before_referral"  # the event happened before the invitee was referred


def reward_day(ts: int) -> str:
    """The Asia/Shanghai date of ``ts`` (``2027-01-10``): the day the per-inviter daily cap counts in."""
    return datetime.fromtimestamp(ts, doc.SHANGHAI).date().isoformat()


def entry_id(kind: Literal["reward", "reversal"], campaign: str, invitee: str) -> str:
    """The ledger id of a reward or its reversal: one per (campaign, invitee), whatever the retries."""
    return f"{kind}#{campaign}#{invitee}"


def decide_reward(  # noqa: C901  # one decision over state, event and caps: reads best in one place
    campaign: RewardCampaign, referral: Referral, event: InviteeEvent, tallies: Tallies
) -> Reward | Reversal | NoReward:
    """What ``event`` does to ``referral`` under ``campaign``.

    A reversal event (``campaign.reverse_on``) on a rewarded referral gives a :class:`Reversal`, checked
    before anything else about the referral, so a paid self-referral is still taken back. Otherwise a
    pending referral younger than ``ref_max_age_days`` whose event qualifies, happened at or after the
    referral, and stays within every cap gives a :class:`Reward` (less what pays the inviter's debt);
    anything else gives the :class:`NoReward` reason. One referral per invitee, so an invitee rewards at
    most one inviter."""
    if event.invitee != referral.invitee:
        return NoReward.NOT_THE_INVITEE
    if referral.campaign != campaign.id:
        return NoReward.OTHER_CAMPAIGN
    if event.kind == "event" and event.name in campaign.reverse_on:
        return reverse_referral(campaign, referral, f"invitee {event.name}", event.at, tallies)
    if referral.inviter == referral.invitee:  # attribution refuses these; a bad record must not pay either
        return NoReward.SELF_REFERRAL
    if referral.state == "rewarded":
        return NoReward.ALREADY_REWARDED
    if referral.state != "pending":
        return NoReward.NOT_PENDING
    reason = _qualifies(campaign.qualify, event)
    if reason is not None:
        return reason
    if event.at < referral.created_at:  # done before the invite: not the invitee's answer to it
        return NoReward.BEFORE_REFERRAL
    if event.at - referral.created_at > campaign.ref_max_age_days * 86400:
        return NoReward.REFERRAL_TOO_OLD
    caps = campaign.caps
    if caps.total is not None and tallies.campaign_total >= caps.total:
        return NoReward.CAP_TOTAL
    if caps.per_inviter is not None and tallies.inviter_in_campaign >= caps.per_inviter:
        return NoReward.CAP_INVITER
    if caps.per_inviter_per_day is not None and tallies.inviter_today >= caps.per_inviter_per_day:
        return NoReward.CAP_DAY
    repaid = min(campaign.points, max(tallies.inviter_debt, 0))
    why = _why(campaign.qualify) + (f" ({repaid} points repay a reversal)" if repaid else "")
    entry = LedgerEntry(entry_id("reward", campaign.id, referral.invitee), referral.inviter,
                        campaign.points - repaid, why, campaign.id, referral.invitee, event.at)
    return Reward(entry, debt_repaid=repaid)


def _qualifies(qualify: Qualify, event: InviteeEvent) -> NoReward | None:
    if qualify.kind == "phone_bound":
        return None if event.kind == "phone_bound" else NoReward.NOT_QUALIFYING
    if qualify.kind == "active_days":
        if event.kind != "active_day":
            return NoReward.NOT_QUALIFYING
        return None if event.active_days >= qualify.days else NoReward.TOO_FEW_DAYS
    return None if event.kind == "event" and event.name == qualify.event else NoReward.NOT_QUALIFYING


def _why(qualify: Qualify) -> str:
    return {"phone_bound": "invitee bound a phone", "active_days": f"invitee active {qualify.days} days",
            "event": f"invitee {qualify.event}"}[qualify.kind]


def reverse_referral(
    campaign: RewardCampaign, referral: Referral, why: str, at: int, tallies: Tallies
) -> Reversal | NoReward:
    """Take back the reward paid for ``referral`` (a reverse_on event, or a merge that showed a
    self-referral): a :class:`Reversal` of up to ``campaign.points`` from the inviter's balance, the rest
    added to the inviter's debt; ``NOTHING_TO_REVERSE`` unless the referral is rewarded."""
    if referral.state != "rewarded":
        return NoReward.NOTHING_TO_REVERSE
    taken = min(campaign.points, max(tallies.inviter_balance, 0))
    entry = LedgerEntry(entry_id("reversal", campaign.id, referral.invitee), referral.inviter, -taken,
                        f"reversal: {why}", campaign.id, referral.invitee, at)
    return Reversal(entry, shortfall=campaign.points - taken)


def describe(campaign: RewardCampaign) -> dict[str, Any]:
    """A plain summary for the CLI (``wxloop rewards validate``)."""
    return {"id": campaign.id, "qualify": _why(campaign.qualify), "points": campaign.points,
            "caps": {k: getattr(campaign.caps, k) for k in ("per_inviter_per_day", "per_inviter", "total")
             if getattr(campaign.caps, k) is not None}}
