"""People (``USER#{uid}``/``PROFILE``) and unionid links (``UNION#{unionid}``/``ID``): claims, and merges of
two people found to be one (rules in ``wxloop.domain.identity``, the transaction in ``merges``)."""

from __future__ import annotations

import json
from typing import Any

from wxloop.adapters.dynamo import merges
from wxloop.adapters.dynamo.codec import (
    RepositoryError,
    TransactionCancelled,
    call,
    conditional_update,
    get,
    marshal,
    table_name,
)
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
            assert owner is not None and union is not None  # a merge needs the union's owner
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


# --- engagement profile (kept by the stream) ---------------------------------------------------------


def engagement_doc(value: Any) -> dict | None:
    """The profile document stored in ``eng`` (compact JSON: one string attribute is far cheaper to read
    back in bulk, by a scan of every person, than a map of ~30 numbers), or None when absent or unreadable."""
    try:
        doc = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def get_engagement(uid: str) -> tuple[dict | None, int, bool]:
    """(the stored profile document ``eng``, the last stream sequence number applied ``eng_seq`` (0: none),
    whether the person exists). One small consistent read."""
    item = get(person_key(uid), ProjectionExpression="pk, eng, eng_seq")
    if not item:
        return None, 0, False
    return engagement_doc(item.get("eng")), int(item.get("eng_seq") or 0), True


def put_engagement(uid: str, profile_doc: dict, *, seq: int, expected_seq: int, active_at: int | None = None) -> bool:
    """Store the profile document, the last activity ``active_at`` beside it (a number the planner's
    last-active filter reads without parsing the profile) and the sequence number of the last stream record
    it includes, only if ``eng_seq`` is still ``expected_seq`` (another batch did not write in between); False
    otherwise, or when the person does not exist (never created here) or was merged into another."""
    condition = "attribute_exists(pk) AND attribute_not_exists(merged_into) AND "
    condition += "attribute_not_exists(eng_seq)" if not expected_seq else "eng_seq = :old"
    values: dict[str, Any] = {":eng": json.dumps(profile_doc, separators=(",", ":")), ":seq": seq}
    update = "SET eng = :eng, eng_seq = :seq"
    if expected_seq:
        values[":old"] = expected_seq
    if active_at is not None:
        values[":active"] = int(active_at)
        update += ", active_at = :active"
    return conditional_update(
        Key=person_key(uid), UpdateExpression=update,
        ConditionExpression=condition, ExpressionAttributeValues=marshal(values),
    ) is not None


PUSHES_KEPT = 16  # recent push times on the person, for frequency caps (caps allow at most 10 a day)


def record_push(uid: str, at: int) -> None:
    """Append a push time to the person's ``pushes`` (the planner's frequency caps), keeping the newest
    ``PUSHES_KEPT``. Best effort on the trim: a list one or two longer for a while is harmless."""
    out = conditional_update(
        Key=person_key(uid), UpdateExpression=PUSH_APPEND,
        ConditionExpression="attribute_exists(pk)", ExpressionAttributeValues=marshal(push_values(at)),
        ReturnValues="UPDATED_NEW",
    )
    trim_pushes(uid, (out or {}).get("Attributes", {}).get("pushes", {}).get("L") or [])


# the append, also written inside a campaign send's transaction (``campaigns.record_send_result``)
PUSH_APPEND = "SET pushes = list_append(if_not_exists(pushes, :none), :at)"


def push_values(at: int) -> dict[str, Any]:
    return {":none": [], ":at": [at]}


def trim_pushes(uid: str, pushes: list | None = None) -> None:
    """Drop the oldest push times beyond ``PUSHES_KEPT`` (read first when ``pushes`` is not given); only if
    the list is still that long, so a concurrent append is never lost."""
    if pushes is None:
        pushes = (get(person_key(uid), ProjectionExpression="pushes") or {}).get("pushes") or []
    extra = len(pushes) - PUSHES_KEPT
    if extra > 0:
        conditional_update(
            Key=person_key(uid), UpdateExpression="REMOVE " + ", ".join(f"pushes[{i}]" for i in range(extra)),
            ConditionExpression="size(pushes) = :n", ExpressionAttributeValues=marshal({":n": len(pushes)}),
        )
