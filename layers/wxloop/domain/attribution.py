"""Attribution: which channel brought a person, and whether an invite counts as a referral (pure).

- **First touch wins**: a person's first touch (channel, scene, reference) is set once; a later touch, or the
  touch of a person merged in later, replaces it only when it happened earlier.
- **Only a newcomer counts**: the invitee must be new to every linked app: no app saw them before this
  touch (``NEW_GRACE`` seconds allow for the first contact writing the identity just before the referral).
- **No self-referral**: inviter and invitee are the same person by uid, by an openid or by the unionid.
- **A merge can void**: when a unionid merge shows the invitee existed before the referral, or makes the
  inviter and invitee one person, a pending referral is voided with the reason. A rewarded one is never
  silently undone: when the merge makes it a self-referral it is handed back to be reversed
  (``MergeOutcome.self_referred``; the reward rules write the reversal).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Literal

NEW_GRACE = 120  # seconds: the first-contact writes and the referral decision are not one instant


@dataclass(frozen=True, slots=True)
class Touch:
    """How a person reached a linked app: ``channel`` (a channel name, ``invite`` or ``organic``), the
    app, the scene or event key, the invite reference's campaign, and when (epoch seconds)."""

    channel: str
    app_id: str
    at: int
    scene: str = ""
    campaign: str = ""


@dataclass(frozen=True, slots=True)
class PersonFacts:
    """What attribution needs of a person: uid, unionid, openids per app, first contact per app."""

    uid: str
    unionid: str | None = None
    openids: Mapping[str, str] = field(default_factory=dict)
    first_seen: Mapping[str, int] = field(default_factory=dict)


class RefusalReason(Enum):
    SELF_REFERRAL = "self_referral"
    NOT_NEW = "not_new"  # the invitee used a linked app before this touch
    ALREADY_REFERRED = "already_referred"  # first touch wins: an earlier referral stands
    EXISTED_BEFORE = "existed_before"  # a merge showed an earlier contact
    MERGED_WITH_INVITER = "merged_with_inviter"
    LATER_TOUCH = "later_touch"  # two referrals met in a merge: the earlier one wins


@dataclass(frozen=True, slots=True)
class Referral:
    invitee: str
    inviter: str
    campaign: str
    channel: str
    created_at: int
    state: Literal["pending", "rewarded", "voided", "reversed"] = "pending"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Refused:
    reason: RefusalReason


def first_touch(current: Touch | None, new: Touch) -> Touch:
    """The person's first touch once ``new`` is known: the earlier one; on a tie the one already kept."""
    if current is None or new.at < current.at:
        return new
    return current


def same_person(a: PersonFacts, b: PersonFacts) -> bool:
    """Whether ``a`` and ``b`` are one person: same uid, same unionid, or one openid in common."""
    if a.uid == b.uid or (a.unionid and a.unionid == b.unionid):
        return True
    return bool(set(a.openids.values()) & set(b.openids.values()))


def is_newcomer(invitee: PersonFacts, touch_at: int, linked_apps: frozenset[str]) -> bool:
    """Whether no linked app saw ``invitee`` before ``touch_at`` (minus :data:`NEW_GRACE`). An openid on a
    linked app with no first-contact time (records older than the tracking) counts as seen before."""
    if any(app in linked_apps and app not in invitee.first_seen for app in invitee.openids):
        return False
    return all(at >= touch_at - NEW_GRACE for app, at in invitee.first_seen.items() if app in linked_apps)


def decide_referral(
    invitee: PersonFacts,
    inviter: PersonFacts,
    touch: Touch,
    linked_apps: frozenset[str],
    existing: Referral | None,
) -> Referral | Refused:
    """A pending referral of ``invitee`` by ``inviter`` through ``touch``, or why there is none.

    ``existing`` is the invitee's referral if one was recorded (any state): first touch wins, so any
    existing referral refuses a new one. The checks run cheapest and most damning first."""
    if same_person(invitee, inviter):
        return Refused(RefusalReason.SELF_REFERRAL)
    if existing is not None:
        return Refused(RefusalReason.ALREADY_REFERRED)
    if not is_newcomer(invitee, touch.at, linked_apps):
        return Refused(RefusalReason.NOT_NEW)
    return Referral(invitee.uid, inviter.uid, touch.campaign, touch.channel, touch.at)


@dataclass(frozen=True, slots=True)
class MergeOutcome:
    """The referral the survivor keeps (``None``: none), the ones voided with their reasons, rewarded
    ones that cannot be kept (two inviters paid for one person before the merge), and rewarded ones the
    merge showed to be self-referrals (the inviter is the merged person): the caller reverses those
    (``rewards.reverse_referral``) or reports them; nothing here undoes a payment."""

    keep: Referral | None
    voided: tuple[Referral, ...] = ()
    rewarded_twice: tuple[Referral, ...] = ()
    self_referred: tuple[Referral, ...] = ()


def referral_after_merge(
    survivor: Referral | None,
    loser: Referral | None,
    merged: PersonFacts,
    absorbed_uid: str,
    linked_apps: frozenset[str],
) -> MergeOutcome:
    """What becomes of the invitee's referrals when the person ``absorbed_uid`` merges into ``merged`` (the
    survivor's uid, both persons' openids, and the earliest first contact per app).

    A rewarded referral wins, else the earlier one (first touch); the other pending one is voided
    (``later_touch``). The kept referral, if pending, is voided when the merged person was seen before it
    (``existed_before``) or is its inviter (``merged_with_inviter``); if rewarded and the merged person is its
    inviter, it is not kept but returned in ``self_referred`` to be reversed."""
    ranked = sorted((r for r in (survivor, loser) if r is not None),
                    key=lambda r: (r.state != "rewarded", r.created_at))
    if not ranked:
        return MergeOutcome(None)
    keep, voided, twice = ranked[0], [], []
    for other in ranked[1:]:
        if other.state == "pending":
            voided.append(_void(other, RefusalReason.LATER_TOUCH))
        elif other.state == "rewarded":
            twice.append(other)
    if keep.state == "rewarded" and keep.inviter in (merged.uid, absorbed_uid):
        # paid to the invitee themself through a second, then unlinked, identity: reverse, never keep
        return MergeOutcome(None, tuple(voided), tuple(twice), (replace(keep, invitee=merged.uid),))
    if keep.state == "pending":
        reason = None
        if keep.inviter in (merged.uid, absorbed_uid):
            reason = RefusalReason.MERGED_WITH_INVITER
        elif not is_newcomer(merged, keep.created_at, linked_apps):
            reason = RefusalReason.EXISTED_BEFORE
        if reason is not None:
            return MergeOutcome(None, (_void(keep, reason), *voided), tuple(twice))
    return MergeOutcome(replace(keep, invitee=merged.uid), tuple(voided), tuple(twice))


def _void(referral: Referral, reason: RefusalReason) -> Referral:
    return replace(referral, state="voided", reason=reason.value)
