"""People (``USER#{uid}``/``PROFILE``) and unionid links (``UNION#{unionid}``/``ID``): claims, and merges of
two people found to be one (rules in ``wxloop.domain.identity``, the transaction in ``merges``)."""

from __future__ import annotations

from wxloop.adapters.dynamo import merges
from wxloop.adapters.dynamo.codec import RepositoryError, TransactionCancelled, call, get, marshal, table_name
from wxloop.adapters.dynamo.identities import get_identity
from wxloop.adapters.dynamo.keys import identity_key, person_key, union_key
from wxloop.domain.identity import decide_link, plan_merge

MAX_MERGE_HOPS = 4  # merged_into chains stay short: every merge points at a live survivor
LINK_ATTEMPTS = 6  # each lost race re-reads and decides again


class IdentityNotFound(RepositoryError):
    """The (app_id, openid) identity does not exist (yet): the caller may retry later."""


def get_person(uid: str) -> dict | None:
    """The person item as stored (strongly consistent; a merged person's husk included), or None; raises
    ``RepositoryError``."""
    return get(person_key(uid))


def resolve_person(uid: str) -> dict | None:
    """The live person ``uid`` resolves to: itself, or the survivor it was merged into (``merged_into``
    followed a few hops). None when there is no such person; raises ``RepositoryError``."""
    for _ in range(MAX_MERGE_HOPS + 1):
        item = get_person(uid)
        if not item or not item.get("merged_into"):
            return item
        uid = str(item["merged_into"])
    raise RepositoryError("merge chain too long")


def link_unionid(app_id: str, openid: str, unionid: str, now: int) -> str:
    """Attach ``unionid`` to the person behind (app_id, openid); returns the uid the identity resolves to.

    The union item ``UNION#{unionid}``/``ID`` holds the owning uid. New unionid: the identity's person claims
    it. Owned by another person: that person survives and the identity's person is merged into it, in ONE
    transaction (``merges``). Both sides are first followed through ``merged_into``, so a merged person's
    identity or a stale union lands on the live survivor. Idempotent: a repeat writes nothing; concurrent
    links of the same pair produce one merge (the losers' conditions fail, they read again and find it
    done). Raises ``IdentityNotFound`` when the identity does not exist, ``merges.MergeTooLarge`` when a
    merge would exceed one transaction, ``RepositoryError`` when DynamoDB fails.
    """
    for _ in range(LINK_ATTEMPTS):
        identity = get_identity(app_id, openid)
        if not identity or not identity.get("uid"):
            raise IdentityNotFound(f"no identity for this openid of {app_id}")  # openids stay out of logs
        mine = resolve_person(str(identity["uid"]))
        union = get(union_key(unionid))
        owner = resolve_person(str(union["uid"])) if union else None
        if not mine or (union and not owner):
            raise RepositoryError(f"person missing for a unionid link of {app_id}")
        decision = decide_link(mine["uid"], owner["uid"] if owner else None)
        if decision.action == "same":
            items = _pointer_fixes(identity, union, mine["uid"], unionid, (app_id, openid))
            survivor = mine["uid"]
        elif decision.action == "claim":
            items, survivor = _claim_items(app_id, openid, unionid, identity["uid"], mine["uid"], now), mine["uid"]
        else:
            consent = merges.consent_of(owner["uid"]), merges.consent_of(mine["uid"])
            try:
                plan = plan_merge(owner, mine, unionid=unionid, identity=(app_id, openid),
                                  survivor_consent=consent[0], loser_consent=consent[1])
            except ValueError:
                continue  # someone merged meanwhile: read again
            if plan is None:
                return owner["uid"]
            items = merges.merge_items(plan, owner, mine, trigger_uid=str(identity["uid"]),
                                       union_uid=str(union["uid"]), app_id=app_id, now=now,
                                       survivor_consent=consent[0], loser_consent=consent[1])
            survivor = plan.survivor
        if not items:
            return survivor
        try:
            call("transact_write_items", TransactItems=items)
        except TransactionCancelled as exc:
            if exc.any_of("ConditionalCheckFailed", "TransactionConflict"):
                continue
            raise
        return survivor
    raise RepositoryError(f"unionid link for an openid of {app_id} kept losing races")


def _pointer_fixes(identity: dict, union: dict | None, uid: str, unionid: str,
                   at: tuple[str, str]) -> list[dict]:
    """Already one person: point a stale identity or union at the live survivor (nothing when both are)."""
    table, items = table_name(), []
    if identity.get("uid") != uid or identity.get("unionid") != unionid:
        items.append({"Update": {"TableName": table, "Key": identity_key(*at),
                                 "UpdateExpression": "SET uid = :s, unionid = :u", "ConditionExpression": "uid = :r",
                                 "ExpressionAttributeValues": marshal({":s": uid, ":u": unionid,
                                                                       ":r": identity["uid"]})}})
    if union and union.get("uid") != uid:
        items.append({"Update": {"TableName": table, "Key": union_key(unionid), "UpdateExpression": "SET uid = :s",
                                 "ConditionExpression": "uid = :r",
                                 "ExpressionAttributeValues": marshal({":s": uid, ":r": union["uid"]})}})
    return items


def _claim_items(app_id: str, openid: str, unionid: str, read_uid: str, uid: str, now: int) -> list[dict]:
    """TransactWriteItems for a person claiming a unionid nobody owns (``read_uid``: the identity's uid as
    read, which differs from ``uid`` when it named a merged person)."""
    table = table_name()
    return [
        {"Put": {"TableName": table, "ConditionExpression": "attribute_not_exists(pk)",
                 "Item": {**union_key(unionid), **marshal({"uid": uid, "unionid": unionid, "created_at": now})}}},
        {"Update": {"TableName": table, "Key": person_key(uid),
                    "UpdateExpression": "SET unionid = :u",
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(merged_into) AND "
                    "(attribute_not_exists(unionid) OR unionid = :u)",
                    "ExpressionAttributeValues": marshal({":u": unionid})}},
        {"Update": {"TableName": table, "Key": identity_key(app_id, openid),
                    "UpdateExpression": "SET unionid = :u, uid = :uid", "ConditionExpression": "uid = :r",
                    "ExpressionAttributeValues": marshal({":u": unionid, ":uid": uid, ":r": read_uid})}},
    ]
