"""Invites, attribution and rewards: the storage-backed use cases around the pure rules in
``wxloop.domain.invites``, ``attribution`` and ``rewards``.

- ``invite_for``: the person's share path (signed reference) and short code (``CODE#{code}``).
- ``attribute``: an invitee's first contact through a reference or code → a pending referral (or a logged
  reason why not).
- ``qualify``: an invitee's action (phone bound, an active day, a brand event) → at most one reward, or a
  reversal; each is one ``TransactWriteItems`` whose conditions make repeats and races no-ops.
- ``on_merge(survivor, merged)``: what a person merge does to referrals (void, move or reverse).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from aws_lambda_powertools import Logger

from wxloop.adapters.dynamo import identities, people, referrals
from wxloop.adapters.dynamo import rewards as store
from wxloop.config import load_config
from wxloop.domain import attribution as attr
from wxloop.domain import invites
from wxloop.domain import rewards as rules
from wxloop.settings import settings

logger = Logger(child=True)
MAX_TRIES = 8  # each lost race reads again and decides again
CONFIG_TTL_SECONDS = 30
_cache: dict[str, object] = {}


# --- config ---------------------------------------------------------------------------------------------


def reset() -> None:
    """Forget the cached reward config (tests; a push takes effect within ``CONFIG_TTL_SECONDS``)."""
    _cache.clear()


def campaigns(now: float | None = None) -> dict[str, rules.RewardCampaign]:
    """The current reward campaigns by id (stored by ``wxloop rewards push``), cached for 30 s."""
    now = time.monotonic() if now is None else now
    if _cache.get("until", 0) > now:  # type: ignore[operator]
        return _cache["campaigns"]  # type: ignore[return-value]
    stored = store.get_reward_config()
    found = {c.id: c for c in rules.parse_reward_doc(stored[0])} if stored else {}
    _cache.update(campaigns=found, until=now + CONFIG_TTL_SECONDS)
    return found


def _keys() -> list[str]:
    return [k.get_secret_value() for k in load_config().session_keys]


def linked_apps(app_id: str) -> frozenset[str]:
    """``app_id`` with the OA that links it and every MP that OA links (a person new to all of them counts)."""
    accounts = load_config().accounts
    out = {app_id}
    for oa_id, account in accounts.items():
        if account.kind == "oa" and (oa_id == app_id or app_id in account.linked_mps):
            out |= {oa_id, *account.linked_mps}
    return frozenset(out)


# --- invites --------------------------------------------------------------------------------------------


def _stable_code(uid: str, campaign: str) -> str:
    """The inviter's short code for ``campaign``: derived with the signing key, so it is stable (a repeat
    stores nothing new) yet unguessable."""
    seed = hmac.new(_keys()[0].encode(), f"wxloop/invite-code|{uid}|{campaign}".encode(), hashlib.sha256).digest()
    stream = iter(seed * 4)
    return invites.new_code(rand=lambda n: bytes(next(stream) for _ in range(n)))


def invite_for(app_id: str, uid: str, *, campaign: str | None = None, now: int | None = None) -> dict:
    """The share path (``INVITE_PAGE``?ref=signed reference), the short code (stored) and the campaign.
    Raises ``LookupError`` when no reward campaign is configured (or ``campaign`` is unknown)."""
    now = int(time.time()) if now is None else now
    found = campaigns()
    chosen = found.get(campaign) if campaign else next(iter(found.values()), None)
    if chosen is None:
        raise LookupError("no reward campaign")
    # sign first: raises ValueError before any write when no key can sign
    ref = invites.sign_ref(invites.InviteRef(uid, chosen.id, now), _keys())
    for _ in range(4):
        code = _stable_code(uid, chosen.id)
        if referrals.put_code(code, {"kind": "invite", "inviter": uid, "campaign": chosen.id, "app_id": app_id},
                              now=now):
            break
    else:  # pragma: no cover - a derived code taken by another payload: 31**10 makes this astronomically rare
        raise LookupError("no free code")
    page = settings().invite_page
    return {"path": f"{page}?ref={ref}", "ref": ref, "code": code, "campaign": chosen.id,
            "expires_at": now + chosen.ref_max_age_days * 86400}


# --- attribution ----------------------------------------------------------------------------------------


def _live_person(uid: str) -> dict | None:
    for _ in range(4):
        person = people.get_person(uid)
        if not person or not person.get("merged_into"):
            return person
        uid = str(person["merged_into"])
    return None


def facts(person: Mapping) -> attr.PersonFacts:
    """Attribution's view of a person item: first contact per app from its identities' ``created_at``."""
    openids = {str(k): str(v) for k, v in (person.get("openids") or {}).items()}
    first_seen = {}
    for app, openid in openids.items():
        created = (identities.get_identity(app, openid) or {}).get("created_at")
        if isinstance(created, int):
            first_seen[app] = created
    return attr.PersonFacts(str(person["uid"]), person.get("unionid"), openids, first_seen)


def resolve_source(*, ref: str | None = None, code: str | None = None,
                   now: int) -> tuple[str, str, str] | str:
    """(inviter, campaign, channel) a reference or code stands for, or why it stands for none (logged)."""
    if ref:
        found = invites.verify_ref(ref, _keys(), now, max_age=365 * 86400)
        if isinstance(found, invites.RefRefused):
            return f"ref_{found.problem.value}"
        campaign = campaigns().get(found.campaign)
        if campaign is None:
            return "unknown_campaign"
        if now - found.issued_at > campaign.ref_max_age_days * 86400:
            return "ref_expired"
        return found.inviter, found.campaign, "invite"
    held = referrals.get_code(code) if code and invites.is_code(code) else None
    if not held:
        return "unknown_code"
    if held.get("kind") != "invite":
        return "channel_code"
    if held.get("campaign") not in campaigns():
        return "unknown_campaign"
    return str(held["inviter"]), str(held["campaign"]), str(held.get("channel") or "invite")


def attribute(app_id: str, invitee_uid: str, *, ref: str | None = None, code: str | None = None,
              now: int | None = None) -> str:
    """Record a pending referral of ``invitee_uid`` (first contact on ``app_id``) through ``ref`` or ``code``.
    Returns ``pending`` or the reason there is none (also logged); never raises for bad input."""
    now = int(time.time()) if now is None else now
    source = resolve_source(ref=ref, code=code, now=now)
    if isinstance(source, str):
        return _refused(source, app_id)
    inviter_uid, campaign, channel = source
    invitee, inviter = _live_person(invitee_uid), _live_person(inviter_uid)
    if not invitee or not inviter:
        return _refused("unknown_person", app_id)
    existing = referrals.get_referral(str(invitee["uid"]))
    touch = attr.Touch(channel, app_id, now, campaign=campaign)
    decided = attr.decide_referral(facts(invitee), facts(inviter), touch, linked_apps(app_id),
                                   referrals.referral_from_item(existing) if existing else None)
    if isinstance(decided, attr.Refused):
        return _refused(decided.reason.value, app_id)
    if not referrals.put_referral(decided, app_id=app_id):
        return _refused(attr.RefusalReason.ALREADY_REFERRED.value, app_id)
    logger.info("referral pending", extra={"app_id": app_id, "campaign": campaign})
    return "pending"


def _refused(reason: str, app_id: str) -> str:
    logger.info("no referral", extra={"app_id": app_id, "reason": reason})
    return reason


# --- rewards --------------------------------------------------------------------------------------------


def qualify(event: rules.InviteeEvent) -> str:
    """Apply the invitee's action to their referral: ``rewarded``, ``reversed``, ``repeat`` or the reason
    nothing happened. Exactly once under any concurrency: the transaction's conditions decide, and a lost
    race reads again."""
    for _ in range(MAX_TRIES):
        item = referrals.get_referral(event.invitee)
        if not item:
            return "no_referral"
        referral = referrals.referral_from_item(item)
        campaign = campaigns().get(referral.campaign)
        if campaign is None:
            return "unknown_campaign"
        balance, debt = store.person_points(referral.inviter)
        decided = rules.decide_reward(campaign, referral, event, rules.Tallies(inviter_balance=balance,
                                                                               inviter_debt=debt))
        if isinstance(decided, rules.NoReward):
            return decided.value
        if isinstance(decided, rules.Reward):
            out = store.apply_reward(decided, debt_read=debt, caps=campaign.caps,
                                     day=rules.reward_day(event.at), now=int(time.time()))
        else:
            out = store.apply_reversal(decided, balance_read=balance, now=int(time.time()))
        if out.status != "stale":
            return {"done": "rewarded" if isinstance(decided, rules.Reward) else "reversed"}.get(out.status, out.status)
    return "contended"


def active_day(invitee: str, at: int) -> str:
    """A journey event of ``invitee``: count the (Shanghai) day on a pending referral and reward when an
    ``active_days`` campaign's count is reached. One conditional write for anyone without one."""
    item = referrals.add_active_day(invitee, rules.reward_day(at))
    if item is None:
        return "no_referral"
    days = len(item.get("active_days") or ())
    return qualify(rules.InviteeEvent("active_day", invitee, at, active_days=days))


def on_merge(survivor: str, merged: str, *, now: int | None = None) -> dict:
    """The person ``merged`` was merged into ``survivor``: void, keep, move or reverse their referrals as
    ``attribution.referral_after_merge`` decides. Idempotent; returns what was done (for the merge log)."""
    now = int(time.time()) if now is None else now
    person = people.get_person(survivor)
    if not person:
        return {"error": "unknown_survivor"}
    s_item, m_item = referrals.get_referral(survivor), referrals.get_referral(merged)
    live = [i for i in (s_item, m_item) if i and i.get("state") in ("pending", "rewarded")]
    if not live:
        return {}
    app = str(live[0].get("app_id") or next(iter(person.get("openids") or {}), ""))
    outcome = attr.referral_after_merge(
        referrals.referral_from_item(s_item) if s_item in live else None,
        referrals.referral_from_item(m_item) if m_item in live else None,
        facts(person), merged, linked_apps(app) if app else frozenset())
    done: dict = {"voided": [], "reversed": [], "rewarded_twice": [r.invitee for r in outcome.rewarded_twice]}
    for voided in outcome.voided:
        if referrals.void_referral(voided.invitee, voided.reason, now=now):
            done["voided"].append(voided.invitee)
    for paid in outcome.self_referred:
        for who in (survivor, merged):  # the paid referral is stored under whichever person it was made for
            item = s_item if who == survivor else m_item
            if item and item.get("state") == "rewarded" and item.get("inviter") == paid.inviter:
                done["reversed"].append(_reverse(referrals.referral_from_item(item), "merged with the inviter", now))
    keep = outcome.keep
    if keep is not None and keep.state == "pending" and m_item and m_item.get("state") == "pending" \
            and keep.created_at == int(m_item["created_at"]) and keep.inviter == m_item["inviter"]:
        done["moved"] = referrals.move_referral(merged, keep, app_id=app, now=now)
    return done


def _reverse(paid: attr.Referral, why: str, now: int) -> str:
    """Take back a paid reward (one transaction; a lost race reads again)."""
    for _ in range(MAX_TRIES):
        campaign = campaigns().get(paid.campaign)
        if campaign is None:
            return "unknown_campaign"
        balance, debt = store.person_points(paid.inviter)
        decided = rules.reverse_referral(campaign, paid, why, now,
                                         rules.Tallies(inviter_balance=balance, inviter_debt=debt))
        if isinstance(decided, rules.NoReward):
            return decided.value
        out = store.apply_reversal(decided, balance_read=balance, now=now)
        if out.status != "stale":
            return "reversed" if out.status == "done" else out.status
        item = referrals.get_referral(paid.invitee)
        if not item:
            return "nothing_to_reverse"
        paid = referrals.referral_from_item(item)
    return "contended"
