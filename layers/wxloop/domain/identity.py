"""Identity rules: what happens when a WeChat unionid shows up for an openid (pure, no I/O).

A person (``USER#{uid}``) starts from one openid. When a unionid arrives (OA ``user/info``, MP
``jscode2session``), it is linked: the first person seen with that unionid claims it; a second person with
the same unionid is merged into the first. The adapter (``wxloop.adapters.dynamo.merges``) applies these
decisions in one transaction; the rules themselves live here so they can be tested without a table.

How a merge combines the two persons (``plan_merge``):

- identities of the loser are re-pointed to the survivor (their subscribe credits ``SUB#`` live on the
  identity and so move with it); the survivor's ``openids`` gains the loser's apps, never overwriting its own;
- points add up (the loser's balance moves; both ledgers get an entry for the move, so each ledger still
  sums to its person's balance);
- OA follow state (``fol_{oa}``): the newer observation wins; follow-prompt stamps (``fps_``/``fpd_``/``fpc_``):
  the later one (a dismissal anywhere keeps the prompt away); MP session keys and scenes: the survivor's,
  the loser's where the survivor has none;
- preferences: topics are the union (the survivor's order first), ``topics_seen`` the union too;
- the phone: the more recently bound number; one taken from the loser is re-sealed for the survivor;
- consent, per purpose: the stricter; a withdrawal on either side wins (the later withdrawal), else the
  survivor's grant, else the loser's;
- first touch: the earlier one (attribution keeps the earliest contact).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# Per-app attributes of the person and how two values combine (see the module docstring).
_NEWER_FOLLOW = ("fol_",)
_LATER_STAMP = ("fps_", "fpd_", "fpc_")
_SURVIVOR_FIRST = ("mpsk_", "mpscene_")


@dataclass(frozen=True, slots=True)
class LinkDecision:
    """``claim``: the unionid is new, the identity's person takes it. ``same``: already linked, nothing to
    do. ``merge``: the unionid belongs to another person, ``survivor``; ``loser`` is folded into it."""

    action: Literal["claim", "same", "merge"]
    survivor: str
    loser: str | None = None


def decide_link(identity_uid: str, union_uid: str | None) -> LinkDecision:
    """Who owns the unionid after linking it to the person ``identity_uid`` (both uids already followed
    through ``merged_into`` to a live person).

    The union's existing person always wins: it is the one other apps already resolve to, so repointing the
    newcomer is one identity write instead of many.
    """
    if not identity_uid:
        raise ValueError("the identity has no person")
    if union_uid is None:
        return LinkDecision("claim", survivor=identity_uid)
    if union_uid == identity_uid:
        return LinkDecision("same", survivor=identity_uid)
    return LinkDecision("merge", survivor=union_uid, loser=identity_uid)


@dataclass(frozen=True, slots=True)
class MergePlan:
    """What a merge writes.

    - ``repoint``: (app_id, openid) identities whose ``uid`` moves to ``survivor`` (the triggering one first).
    - ``openids``: entries added to the survivor's ``openids`` map.
    - ``first_touch``: set on the survivor when the loser was touched first; ``None`` keeps the survivor's.
    - ``points``: the loser's balance, added to the survivor's and taken off the loser's.
    - ``sets``: other survivor attributes → their combined value (follow state, prompt stamps, session keys,
      preferences, the masked phone).
    - ``topics_seen``: topics added to the survivor's ``topics_seen`` set.
    - ``phone_from_loser``: the loser's sealed phone must be re-sealed for the survivor (it is bound to uid).
    - ``consent``: purpose → the consent record the survivor gets (only purposes that change).
    - ``survivor_guard`` / ``loser_guard``: attribute → the value read (``None``: absent). The write holds
      only while these are unchanged, so a concurrent write is never lost: the merge reads again instead.
    """

    survivor: str
    loser: str
    unionid: str
    repoint: tuple[tuple[str, str], ...]
    openids: Mapping[str, str] = field(default_factory=dict)
    first_touch: Mapping[str, Any] | None = None
    points: int = 0
    sets: Mapping[str, Any] = field(default_factory=dict)
    topics_seen: frozenset[str] = frozenset()
    phone_from_loser: bool = False
    consent: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    survivor_guard: Mapping[str, Any] = field(default_factory=dict)
    loser_guard: Mapping[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """What moved, for the merge log (no PII: app ids, counts and topic names)."""
        return {
            "identities": [f"{app}:{oid}" for app, oid in self.repoint],
            "points": self.points,
            "first_touch": self.first_touch is not None,
            "attributes": sorted(self.sets),
            "topics": sorted(self.topics_seen),
            "phone": self.phone_from_loser,
            "consent": sorted(self.consent),
        }


def _earlier_touch(survivor: Mapping[str, Any], loser: Mapping[str, Any]) -> dict[str, Any] | None:
    """The loser's first touch when it happened before the survivor's (by ``first_touch.at``, else the
    person's ``created_at``), or when the survivor has none."""
    mine, theirs = survivor.get("first_touch"), loser.get("first_touch")
    if not isinstance(theirs, Mapping):
        return None
    if not isinstance(mine, Mapping):
        return dict(theirs)

    def when(person: Mapping[str, Any], touch: Mapping[str, Any]) -> float | None:
        at = touch.get("at", person.get("created_at"))
        return at if isinstance(at, (int, float)) and not isinstance(at, bool) else None

    s_at, l_at = when(survivor, mine), when(loser, theirs)
    return dict(theirs) if s_at is not None and l_at is not None and l_at < s_at else None


def combine_follow(mine: Any, theirs: Any) -> Any:
    """Two observations ``{f, at}`` of one OA follow state: the newer wins (the survivor's on a tie)."""
    if not isinstance(theirs, Mapping):
        return mine
    if not isinstance(mine, Mapping):
        return theirs
    return theirs if _num(theirs.get("at")) > _num(mine.get("at")) else mine


def combine_prefs(mine: Any, theirs: Any) -> Any:
    """Preferences ``{topics, v, at}``: the union of the topics (the survivor's order first), the later
    version and time."""
    if not isinstance(theirs, Mapping):
        return mine
    if not isinstance(mine, Mapping):
        return dict(theirs)
    topics = list(mine.get("topics") or [])
    topics += [t for t in theirs.get("topics") or [] if t not in topics]
    return {**mine, "topics": topics, "v": max(_num(mine.get("v")), _num(theirs.get("v"))),
            "at": max(_num(mine.get("at")), _num(theirs.get("at")))}


def combine_consent(mine: Mapping[str, Any] | None, theirs: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """One purpose's consent records ``{state: granted|withdrawn, at, ...}``: the stricter. A withdrawal on
    either side wins (the later withdrawal when both withdrew); two grants keep the survivor's."""
    if not isinstance(theirs, Mapping):
        return mine
    if not isinstance(mine, Mapping):
        return theirs
    withdrawn = [r for r in (mine, theirs) if r.get("state") == "withdrawn"]
    if not withdrawn:
        return mine
    return max(withdrawn, key=lambda r: _num(r.get("at")))


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("-inf")


def _per_app_sets(survivor: Mapping[str, Any], loser: Mapping[str, Any]) -> dict[str, Any]:
    """The per-app attributes (follow state, prompt stamps, session keys) the survivor changes to."""
    out: dict[str, Any] = {}
    for attr, theirs in loser.items():
        mine = survivor.get(attr)
        if attr.startswith(_NEWER_FOLLOW):
            value = combine_follow(mine, theirs)
        elif attr.startswith(_LATER_STAMP):
            value = theirs if _num(theirs) > _num(mine) else mine
        elif attr.startswith(_SURVIVOR_FIRST):
            value = mine if mine is not None else theirs
        else:
            continue
        if value != mine:
            out[attr] = value
    return out


def _phone_moves(survivor: Mapping[str, Any], loser: Mapping[str, Any]) -> bool:
    """The loser's phone replaces the survivor's: the survivor has none, or the loser's was bound later."""
    if not loser.get("phone"):
        return False
    return not survivor.get("phone") or _num(loser.get("phone_at")) > _num(survivor.get("phone_at"))


def _guards(person: Mapping[str, Any], attrs: set[str]) -> dict[str, Any]:
    return {a: person.get(a) for a in sorted(attrs)}


def _consent_moves(
    mine: Mapping[str, Mapping[str, Any]], theirs: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The consent records, by purpose, the survivor takes over from the loser's."""
    out = {}
    for purpose in sorted(theirs):
        chosen = combine_consent(mine.get(purpose), theirs[purpose])
        if chosen is not mine.get(purpose):
            out[purpose] = dict(chosen or {})
    return out


def plan_merge(
    survivor: Mapping[str, Any], loser: Mapping[str, Any], *, unionid: str, identity: tuple[str, str],
    survivor_consent: Mapping[str, Mapping[str, Any]] | None = None,
    loser_consent: Mapping[str, Mapping[str, Any]] | None = None,
) -> MergePlan | None:
    """The merge of person ``loser`` into person ``survivor`` (person items as dicts, each with ``uid``;
    consent records by purpose).

    ``identity`` is the (app_id, openid) whose unionid triggered the merge; it is always repointed. Returns
    ``None`` when the loser is already merged into the survivor (a repeat is a no-op). Raises ``ValueError``
    when the loser was merged into someone else or the survivor is merged (the caller follows
    ``merged_into`` and decides again).
    """
    s_uid, l_uid = survivor.get("uid"), loser.get("uid")
    if not s_uid or not l_uid or s_uid == l_uid:
        raise ValueError("a merge needs two different persons")
    merged_into = loser.get("merged_into")
    if merged_into == s_uid:
        return None
    if merged_into:
        raise ValueError(f"person {l_uid} is already merged into {merged_into}")
    if survivor.get("merged_into"):
        raise ValueError(f"survivor {s_uid} is itself merged into {survivor['merged_into']}")

    loser_openids = dict(loser.get("openids") or {})
    app_id, openid = identity
    loser_openids.setdefault(app_id, openid)
    repoint = [(app_id, openid)] + sorted((a, o) for a, o in loser_openids.items() if (a, o) != (app_id, openid))
    have = survivor.get("openids") or {}
    adds = {a: o for a, o in loser_openids.items() if a not in have}

    sets = _per_app_sets(survivor, loser)
    prefs = combine_prefs(survivor.get("prefs"), loser.get("prefs"))
    if prefs != survivor.get("prefs"):
        sets["prefs"] = prefs
    phone = _phone_moves(survivor, loser)
    if phone:
        sets["phone_masked"], sets["phone_at"] = loser.get("phone_masked"), loser.get("phone_at")
    consent = _consent_moves(survivor_consent or {}, loser_consent or {})
    first_touch = _earlier_touch(survivor, loser)
    moved = set(sets) | ({"phone"} if phone else set())
    loser_moving = set(sets) | {a for a in ("points", "phone", "phone_at", "prefs", "topics_seen") if a in loser}
    return MergePlan(
        survivor=s_uid, loser=l_uid, unionid=unionid, repoint=tuple(repoint), openids=adds,
        first_touch=first_touch, points=int(loser.get("points") or 0), sets=sets,
        topics_seen=frozenset(loser.get("topics_seen") or ()), phone_from_loser=phone, consent=consent,
        survivor_guard=_guards(survivor, moved | ({"first_touch"} if first_touch is not None else set())),
        loser_guard=_guards(loser, loser_moving),
    )


def tag_sync_jobs(plan: MergePlan, survivor: Mapping[str, Any], oa_apps: frozenset[str]) -> list[dict[str, Any]]:
    """``tag_topics`` jobs that mirror the merged person's topics onto each OA it follows (``oa_apps``: the
    configured OAs) when the merge changed them or brought the OA openid: the OA's segments then see what the
    human chose in any MP. None when there are no topics to mirror."""
    prefs = plan.sets.get("prefs", survivor.get("prefs"))
    topics = list(prefs.get("topics") or []) if isinstance(prefs, Mapping) else []
    if not topics:
        return []
    openids = {**(survivor.get("openids") or {}), **plan.openids}
    seen = set(survivor.get("topics_seen") or ()) | set(plan.topics_seen) | set(topics)
    version = prefs.get("v") if isinstance(prefs.get("v"), int) and not isinstance(prefs.get("v"), bool) else 0
    return [{"id": f"merge-tags:{app}:{plan.loser}", "kind": "tag_topics", "app_id": app, "openid": openids[app],
             "uid": plan.survivor, "version": version, "topics": topics, "remove": sorted(seen - set(topics))}
            for app in sorted(set(openids) & oa_apps) if "prefs" in plan.sets or app in plan.openids]


def merge_event(
    plan: MergePlan, *, app_id: str, platform: str, now: int, jobs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The journey event of a merge, left on the triggering identity for the stream (``person.merged``:
    ``person`` = the survivor, ``merged_from`` = the merged uid; not the person's own action). ``jobs`` ride
    on it (the stream queues them: an outbox)."""
    event = {"id": f"merge-{plan.loser}", "type": "person.merged", "app": app_id, "platform": platform,
             "at": now, "by_user": False, "merged_from": plan.loser, "detail": {"reason": "unionid"}}
    if jobs:
        event["jobs"] = jobs
    return event
