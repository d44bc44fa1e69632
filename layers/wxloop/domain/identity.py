"""Identity rules: what happens when a WeChat unionid shows up for an openid (pure, no I/O).

A person (``USER#{uid}``) starts from one openid. When a unionid arrives (OA ``user/info``, MP
``jscode2session``), it is linked: the first person seen with that unionid claims it; a second person with
the same unionid is merged into the first. The repository (``link_unionid``) applies these decisions with
conditional writes; the rules themselves live here so they can be tested without a table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class LinkDecision:
    """``claim``: the unionid is new, the identity's person takes it. ``same``: already linked, nothing to
    do. ``merge``: the unionid belongs to another person, ``survivor``; ``loser`` is folded into it."""

    action: Literal["claim", "same", "merge"]
    survivor: str
    loser: str | None = None


def decide_link(identity_uid: str, union_uid: str | None) -> LinkDecision:
    """Who owns the unionid after linking it to the person ``identity_uid``.

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

    - ``repoint``: (app_id, openid) identities whose ``uid`` moves from ``loser`` to ``survivor``.
    - ``openids``: entries added to the survivor's ``openids`` map (one openid per app; the survivor's own
      entry for an app is never overwritten).
    - ``first_touch``: set on the survivor when the loser was touched first (attribution keeps the earliest
      touch); ``None`` keeps the survivor's.
    - ``loser_points``: the loser's balance, NOT moved (the ledger owns balances); reported so callers can
      log or alert on it.
    """

    survivor: str
    loser: str
    unionid: str
    repoint: tuple[tuple[str, str], ...]
    openids: Mapping[str, str] = field(default_factory=dict)
    first_touch: Mapping | None = None
    loser_points: int = 0


def plan_merge(
    survivor: Mapping, loser: Mapping, *, unionid: str, identity: tuple[str, str]
) -> MergePlan | None:
    """The merge of person ``loser`` into person ``survivor`` (person items as dicts, each with ``uid``).

    ``identity`` is the (app_id, openid) whose unionid triggered the merge; it is always repointed. Returns
    ``None`` when the loser is already merged into the survivor (a repeat is a no-op). Raises ``ValueError``
    when the loser was merged into someone else (the caller re-reads and decides again).
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

    first_touch = None
    s_at, l_at = survivor.get("created_at"), loser.get("created_at")
    if loser.get("first_touch") and (not survivor.get("first_touch") or (
        isinstance(l_at, (int, float)) and isinstance(s_at, (int, float)) and l_at < s_at
    )):
        first_touch = dict(loser["first_touch"])

    return MergePlan(
        survivor=s_uid,
        loser=l_uid,
        unionid=unionid,
        repoint=tuple(repoint),
        openids=adds,
        first_touch=first_touch,
        loser_points=int(loser.get("points") or 0),
    )
