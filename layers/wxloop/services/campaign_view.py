"""What the planner reads of a person: the person item alone decides segment membership; only people in the
segment cost a batched read of their identities and subscribe credit (at most 3 keys each).

The person item (``USER#{uid}``/``PROFILE``) carries everything a segment filter needs:

| attribute | filter |
|---|---|
| ``openids`` | ``{app_id: openid}``: uses a given MP; the openid each channel sends to |
| ``fol_{oa}`` | ``{f, at}``: follows the OA (mirrored by the stream) |
| ``oa_tags`` | OA tag ids (a number set) |
| ``prefs`` | ``{topics, …}``: MP preferences, seen only with personalisation consent (``consent.segment_prefs``) |
| ``first_touch`` | ``{channel, …}``: first-touch channel |
| ``points`` | points balance |
| ``eng`` | the engagement profile as compact JSON (scores, hours, last active), kept by the stream |
| ``consent_marketing`` | the marketing consent record (``consent.campaign_consent``: granted, withdrawn, unknown) |
| ``pushes`` | recent push times, for frequency caps (kept by the worker) |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wxloop.adapters.dynamo.keys import identity_pk
from wxloop.domain.campaigns import Campaign, PersonView
from wxloop.domain.channel_pick import Reachability
from wxloop.domain.consent import attribute as consent_attribute
from wxloop.domain.consent import campaign_consent, segment_prefs

Key = tuple[str, str]
# What the picker reads of identity and credit items (``full_view``, ``channel_pick.window_state``).
REACH_ATTRIBUTES = ("following", "win_msg_at", "win_msg_sent", "win_evt_at", "win_evt_sent", "closed", "remaining",
                    "updated_at")
MARKETING = consent_attribute("marketing")
_NONE: frozenset = frozenset()
_NO_PREFS: dict = {}
_NO_CREDIT: dict = {}


def openid_of(person: Mapping[str, Any], app_id: str | None) -> str:
    openids = person.get("openids")
    return str(openids.get(app_id) or "") if app_id and isinstance(openids, Mapping) else ""


def _ints(value: Any) -> tuple[int, ...]:
    try:
        return tuple(map(int, value or ()))
    except (TypeError, ValueError):
        return ()


class Views:
    """The person items of one campaign as the planner reads them, specialised once per campaign: an
    attribute no filter of the segment looks at is not read (``filter_view``), and only people in the segment
    get their reachability (``reach_keys``, ``full_view``)."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        seg, accounts, channels = campaign.segment, campaign.accounts, campaign.offer.channels
        self.oa, self.mp = accounts.get("oa"), accounts.get("mp")
        self._follow_key = f"fol_{self.oa}" if self.oa else ""
        self._tags = bool(seg.tags_any or seg.tags_all or seg.tags_none)
        self._apps = bool(seg.uses_mp)
        self._prefs = bool(seg.prefs)
        self._first_touch = bool(seg.first_touch)
        self._points = seg.points != (None, None)
        self._oa_identity = bool(self.oa and channels & {"oa_cs", "oa_template"})
        self._mp_identity = bool(self.mp and channels & {"mp_cs", "mp_subscribe"})
        template = campaign.offer.subscribe_template
        self._credit_sk = f"SUB#{template}" if template and "mp_subscribe" in channels else ""
        read = {"pk": True, "uid": True, "openids": True, MARKETING: True, "eng": True, "active_at": True,
                "pushes": True, "oa_tags": self._tags, "prefs": self._prefs, consent_attribute("personalisation"):
                self._prefs, "first_touch": self._first_touch, "points": self._points}
        self.person_attributes = tuple(k for k, wanted in read.items() if wanted) + (
            (self._follow_key,) if self._follow_key else ())

    def filter_view(self, person: dict[str, Any]) -> PersonView:
        """The person as the segment filter sees it (no identities read: reachability is partial)."""
        get = person.get
        follow = get(self._follow_key) if self._follow_key else None
        openids = get("openids")
        active_at = get("active_at")
        reach = Reachability(follows_oa=bool(type(follow) is dict and follow.get("f")),
                             consent=campaign_consent(person) if get(MARKETING) is not None else "unknown")
        return PersonView(
            str(get("uid") or str(get("pk", "")).removeprefix("USER#")),
            frozenset(_ints(get("oa_tags"))) if self._tags else _NONE,
            segment_prefs(person) if self._prefs else _NO_PREFS,
            frozenset(openids) if self._apps and type(openids) is dict else _NONE,
            _first_touch(get("first_touch")) if self._first_touch else "",
            _int(get("points")) if self._points else 0,
            None, reach, get("eng"), active_at if type(active_at) is int else None,
        )

    def reach_keys(self, person: Mapping[str, Any]) -> list[Key]:
        """The identity and credit items the picker needs for this person (only the offered channels')."""
        keys: list[Key] = []
        openids = person.get("openids")
        if not isinstance(openids, Mapping):
            return keys
        oa_openid = openids.get(self.oa) if self._oa_identity else None
        if oa_openid:
            keys.append((identity_pk(self.oa, str(oa_openid)), "ID"))  # type: ignore[arg-type]
        mp_openid = openids.get(self.mp) if self._mp_identity else None
        if mp_openid:
            pk = identity_pk(self.mp, str(mp_openid))  # type: ignore[arg-type]
            keys.append((pk, "ID"))
            if self._credit_sk:
                keys.append((pk, self._credit_sk))
        return keys

    def full_view(self, person: dict[str, Any], items: Mapping[Key, dict],
                  base: PersonView | None = None) -> PersonView:
        """The person with reachability: CS windows from the identities, the subscribe credit, closed channels,
        recent pushes. ``base``: the person's ``filter_view`` when the caller has it already (it is completed,
        not copied)."""
        view = base or self.filter_view(person)
        openids = person.get("openids")
        openids = openids if type(openids) is dict else {}
        oa, mp, template = self.oa, self.mp, self.campaign.offer.subscribe_template
        oa_openid, mp_openid = openids.get(oa) if oa else None, openids.get(mp) if mp else None
        oa_id = items.get((identity_pk(oa, str(oa_openid)), "ID")) if oa_openid else None  # type: ignore[arg-type]
        mp_pk = identity_pk(mp, str(mp_openid)) if mp_openid else ""  # type: ignore[arg-type]
        mp_id = items.get((mp_pk, "ID")) if mp_pk else None
        credit = items.get((mp_pk, self._credit_sk)) if mp_pk and self._credit_sk else None
        closed: frozenset[str] = _NONE
        if (oa_id and oa_id.get("closed")) or (mp_id and mp_id.get("closed")):
            closed = frozenset(_closed_channels(oa_id, mp_id, credit, template))
        r = view.reach
        view.reach = Reachability(
            r.follows_oa and (oa_id is None or oa_id.get("following") is not False), oa_id, mp_id,
            {template: _int(credit.get("remaining"))} if credit else _NO_CREDIT, r.consent, closed,
            _ints(person.get("pushes")),
        )
        return view


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _first_touch(value: Any) -> str:
    return str(value.get("channel") or "") if isinstance(value, Mapping) else ""


def _closed_channels(oa_id: Mapping | None, mp_id: Mapping | None, credit: Mapping | None, template: str) -> set[str]:
    """The channels WeChat closed (45015/43101) after they last reopened: a window opened by a later message,
    a credit granted later."""
    out: set[str] = set()
    for identity, name in ((oa_id, "oa_cs"), (mp_id, "mp_cs")):
        if identity:
            reopened = max(_int(identity.get("win_msg_at")), _int(identity.get("win_evt_at")))
            out |= _closed(identity, "cs", name, reopened)
    if mp_id:
        out |= _closed(mp_id, f"subscribe:{template}", "mp_subscribe", _int((credit or {}).get("updated_at")))
    return out


def _closed(identity: Mapping[str, Any], channel: str, name: str, reopened: int) -> set[str]:
    """``{name}`` when WeChat closed ``channel`` (45015/43101) after it last reopened."""
    entry = (identity.get("closed") or {}).get(channel)
    at = _int(entry.get("at")) if isinstance(entry, Mapping) else 0
    return {name} if at and at >= reopened else set()
