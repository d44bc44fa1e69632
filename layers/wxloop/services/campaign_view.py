"""What the planner reads of a person: the person item alone decides segment membership; only people in the
segment cost a batched read of their identities and subscribe credit (at most 3 keys each).

The person item (``USER#{uid}``/``PROFILE``) carries everything a segment filter needs:

| attribute | filter |
|---|---|
| ``openids`` | ``{app_id: openid}``: uses a given MP; the openid each channel sends to |
| ``fol_{oa}`` | ``{f, at}``: follows the OA (mirrored by the stream) |
| ``oa_tags`` | OA tag ids (a number set) |
| ``prefs`` | ``{topics, …}``: MP preferences (each key but ``v``/``at`` is a filterable preference) |
| ``first_touch`` | ``{channel, …}``: first-touch channel |
| ``points`` | points balance |
| ``eng`` | the engagement profile as compact JSON (scores, hours, last active), kept by the stream |
| ``consent_marketing`` | ``granted`` / ``withdrawn`` (absent: unknown) |
| ``pushes`` | recent push times, for frequency caps (kept by the worker) |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wxloop.adapters.dynamo.keys import identity_pk
from wxloop.adapters.dynamo.people import engagement_doc
from wxloop.domain.campaigns import Campaign, PersonView
from wxloop.domain.channel_pick import Reachability
from wxloop.domain.engagement import Profile

Key = tuple[str, str]
_CONSENT = {"granted": "granted", "withdrawn": "withdrawn"}


def openid_of(person: Mapping[str, Any], app_id: str | None) -> str:
    openids = person.get("openids")
    return str(openids.get(app_id) or "") if app_id and isinstance(openids, Mapping) else ""


def filter_view(person: Mapping[str, Any], campaign: Campaign) -> PersonView:
    """The person as the segment filter sees it (no identities read: reachability is partial)."""
    oa = campaign.accounts.get("oa")
    follow = person.get(f"fol_{oa}") if oa else None
    prefs = person.get("prefs") if isinstance(person.get("prefs"), Mapping) else {}
    openids = person.get("openids") if isinstance(person.get("openids"), Mapping) else {}
    first = person.get("first_touch") if isinstance(person.get("first_touch"), Mapping) else {}
    try:
        tags = frozenset(int(t) for t in person.get("oa_tags") or ())
        points = int(person.get("points") or 0)
        pushes = tuple(int(t) for t in person.get("pushes") or ())
    except (TypeError, ValueError):
        tags, points, pushes = frozenset(), 0, ()
    reach = Reachability(
        follows_oa=bool(isinstance(follow, Mapping) and follow.get("f")),
        consent=_CONSENT.get(str(person.get("consent_marketing") or ""), "unknown"),  # type: ignore[arg-type]
        recent_pushes=pushes,
    )
    return PersonView(
        uid=str(person.get("uid") or str(person.get("pk", "")).removeprefix("USER#")), oa_tags=tags,
        mp_prefs={str(k): tuple(v) if isinstance(v, (list, set, tuple)) else str(v)
                  for k, v in prefs.items() if k not in ("v", "at")},
        mp_apps=frozenset(openids), first_touch_channel=str(first.get("channel") or ""), points=points,
        profile=Profile.from_doc(engagement_doc(person.get("eng"))), reach=reach,
    )


def reach_keys(person: Mapping[str, Any], campaign: Campaign) -> list[Key]:
    """The identity and credit items the picker needs for this person (only the offered channels')."""
    oa_openid = openid_of(person, campaign.accounts.get("oa"))
    mp_openid = openid_of(person, campaign.accounts.get("mp"))
    keys: list[Key] = []
    if oa_openid and campaign.offer.channels & {"oa_cs", "oa_template"}:
        keys.append((identity_pk(campaign.accounts["oa"], oa_openid), "ID"))
    if mp_openid and campaign.offer.channels & {"mp_cs", "mp_subscribe"}:
        pk = identity_pk(campaign.accounts["mp"], mp_openid)
        keys.append((pk, "ID"))
        if "mp_subscribe" in campaign.offer.channels and campaign.offer.subscribe_template:
            keys.append((pk, f"SUB#{campaign.offer.subscribe_template}"))
    return keys


def _closed(identity: Mapping[str, Any] | None, channel: str, name: str, reopened: int) -> set[str]:
    """``{name}`` when WeChat closed ``channel`` (45015/43101) after it last reopened."""
    entry = ((identity or {}).get("closed") or {}).get(channel)
    at = int(entry.get("at") or 0) if isinstance(entry, Mapping) else 0
    return {name} if at and at >= reopened else set()


def full_view(person: Mapping[str, Any], campaign: Campaign, items: Mapping[Key, dict],
              base: PersonView | None = None) -> PersonView:
    """The person with reachability: CS windows from the identities, the subscribe credit, closed channels.
    ``base``: the person's ``filter_view`` when the caller has it already."""
    base = base or filter_view(person, campaign)
    oa, mp = campaign.accounts.get("oa"), campaign.accounts.get("mp")
    oa_id = items.get((identity_pk(oa, openid_of(person, oa)), "ID")) if oa else None
    mp_pk = identity_pk(mp, openid_of(person, mp)) if mp else ""
    mp_id = items.get((mp_pk, "ID")) if mp else None
    template = campaign.offer.subscribe_template
    credit = items.get((mp_pk, f"SUB#{template}")) if mp and template else None
    closed = set()
    for identity, name in ((oa_id, "oa_cs"), (mp_id, "mp_cs")):
        reopened = max(int((identity or {}).get("win_msg_at") or 0), int((identity or {}).get("win_evt_at") or 0))
        closed |= _closed(identity, "cs", name, reopened)
    closed |= _closed(mp_id, f"subscribe:{template}", "mp_subscribe", int((credit or {}).get("updated_at") or 0))
    r = base.reach
    reach = Reachability(
        follows_oa=r.follows_oa and (oa_id or {}).get("following") is not False, oa_identity=oa_id,
        mp_identity=mp_id, subscribe_credits={template: int(credit.get("remaining") or 0)} if credit else {},
        consent=r.consent, closed=frozenset(closed), recent_pushes=r.recent_pushes,
    )
    return PersonView(base.uid, base.oa_tags, base.mp_prefs, base.mp_apps, base.first_touch_channel, base.points,
                      base.profile, reach)
