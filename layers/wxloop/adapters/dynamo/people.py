"""People (``USER#{uid}``/``PROFILE``) and unionid links (``UNION#{unionid}``/``ID``), with merges of two
people found to be one (rules in ``wxloop.domain.identity``)."""

from __future__ import annotations

import json
from typing import Any

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
from wxloop.domain.identity import MergePlan, decide_link, plan_merge


class IdentityNotFound(RepositoryError):
    """The (app_id, openid) identity does not exist (yet): the caller may retry later."""


def get_person(uid: str) -> dict | None:
    """The person item (strongly consistent), or None; raises ``RepositoryError``."""
    return get(person_key(uid))


def link_unionid(app_id: str, openid: str, unionid: str, now: int) -> str:
    """Attach ``unionid`` to the person behind (app_id, openid); returns the uid the identity resolves to.

    The union item ``UNION#{unionid}``/``ID`` holds the owning uid. New unionid: the identity's person claims
    it. Owned by another person: that person survives, this identity (and the loser's other openids) is
    repointed to it, the survivor's ``openids`` gains them and the loser gets ``merged_into`` (rules in
    ``wxloop.domain.identity``), all in one transaction. Idempotent: a repeat finds ``same``. Raises
    ``IdentityNotFound`` when the identity does not exist, ``RepositoryError`` when DynamoDB fails.
    """
    table = table_name()
    for _ in range(4):  # each lost race re-reads and decides again
        identity = get_identity(app_id, openid)
        if not identity or not identity.get("uid"):
            raise IdentityNotFound(f"no identity for this openid of {app_id}")  # openids stay out of logs
        uid = identity["uid"]
        union = get(union_key(unionid))
        decision = decide_link(uid, union.get("uid") if union else None)
        if decision.action == "same":
            return uid
        if decision.action == "claim":
            items, survivor = _claim_items(table, app_id, openid, unionid, uid, now), uid
        else:
            survivor_item, loser_item = get_person(decision.survivor), get_person(uid)
            if not survivor_item or not loser_item:
                raise RepositoryError(f"person missing for merge {decision.survivor} <- {uid}")
            try:
                plan = plan_merge(survivor_item, loser_item, unionid=unionid, identity=(app_id, openid))
            except ValueError:
                continue  # someone merged meanwhile: read again
            if plan is None:
                return decision.survivor
            items = _merge_items(table, plan, now, survivor_has_openids="openids" in survivor_item)
            survivor = plan.survivor
        try:
            call("transact_write_items", TransactItems=items)
        except TransactionCancelled as exc:
            if exc.any_of("ConditionalCheckFailed", "TransactionConflict"):
                continue
            raise
        return survivor
    raise RepositoryError(f"unionid link for an openid of {app_id} kept losing races")


def _claim_items(table: str, app_id: str, openid: str, unionid: str, uid: str, now: int) -> list[dict]:
    """TransactWriteItems for a person claiming a unionid nobody owns."""
    return [
        {"Put": {"TableName": table, "ConditionExpression": "attribute_not_exists(pk)",
                 "Item": {**union_key(unionid), **marshal({"uid": uid, "unionid": unionid, "created_at": now})}}},
        {"Update": {"TableName": table, "Key": person_key(uid),
                    "UpdateExpression": "SET unionid = :u",
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(merged_into) AND "
                    "(attribute_not_exists(unionid) OR unionid = :u)",
                    "ExpressionAttributeValues": marshal({":u": unionid})}},
        {"Update": {"TableName": table, "Key": identity_key(app_id, openid),
                    "UpdateExpression": "SET unionid = :u", "ConditionExpression": "uid = :uid",
                    "ExpressionAttributeValues": marshal({":u": unionid, ":uid": uid})}},
    ]


def _survivor_update(table: str, plan: MergePlan, *, survivor_has_openids: bool) -> dict:
    names: dict[str, str] = {}
    values: dict[str, Any] = {":u": plan.unionid}
    sets = ["unionid = :u"]
    if plan.openids:
        if survivor_has_openids:
            for i, (app, oid) in enumerate(sorted(plan.openids.items())):
                names[f"#a{i}"] = app
                values[f":o{i}"] = oid
                sets.append(f"openids.#a{i} = :o{i}")
        else:
            values[":openids"] = dict(plan.openids)
            sets.append("openids = :openids")
    if plan.first_touch is not None:
        values[":ft"] = dict(plan.first_touch)
        sets.append("first_touch = :ft")
    update: dict[str, Any] = {
        "TableName": table, "Key": person_key(plan.survivor), "UpdateExpression": "SET " + ", ".join(sets),
        "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(merged_into)",
        "ExpressionAttributeValues": marshal(values),
    }
    if names:
        update["ExpressionAttributeNames"] = names
    return update


def _merge_items(table: str, plan: MergePlan, now: int, *, survivor_has_openids: bool) -> list[dict]:
    """TransactWriteItems for a ``MergePlan`` (at most ~12 identities per person in practice)."""
    items: list[dict] = [
        {"ConditionCheck": {"TableName": table, "Key": union_key(plan.unionid), "ConditionExpression": "uid = :s",
                            "ExpressionAttributeValues": marshal({":s": plan.survivor})}},
        {"Update": _survivor_update(table, plan, survivor_has_openids=survivor_has_openids)},
        {"Update": {"TableName": table, "Key": person_key(plan.loser),
                    "UpdateExpression": "SET merged_into = :s, merged_at = :now",
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(merged_into)",
                    "ExpressionAttributeValues": marshal({":s": plan.survivor, ":now": now})}},
    ]
    for i, (app, oid) in enumerate(plan.repoint):
        if i > 0 and (get_identity(app, oid) or {}).get("uid") != plan.loser:
            continue  # an openid listed on the loser whose identity is gone or already elsewhere
        items.append({"Update": {"TableName": table, "Key": identity_key(app, oid),
                                 "UpdateExpression": "SET uid = :s, unionid = :u", "ConditionExpression": "uid = :l",
                                 "ExpressionAttributeValues": marshal({":s": plan.survivor, ":u": plan.unionid,
                                                                       ":l": plan.loser})}})
    return items


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


def put_engagement(uid: str, profile_doc: dict, *, seq: int, expected_seq: int) -> bool:
    """Store the profile document and the sequence number of the last stream record it includes, only if
    ``eng_seq`` is still ``expected_seq`` (another batch did not write in between); False otherwise, or when
    the person does not exist (never created here) or was merged into another."""
    condition = "attribute_exists(pk) AND attribute_not_exists(merged_into) AND "
    condition += "attribute_not_exists(eng_seq)" if not expected_seq else "eng_seq = :old"
    values: dict[str, Any] = {":eng": json.dumps(profile_doc, separators=(",", ":")), ":seq": seq}
    if expected_seq:
        values[":old"] = expected_seq
    return conditional_update(
        Key=person_key(uid), UpdateExpression="SET eng = :eng, eng_seq = :seq",
        ConditionExpression=condition, ExpressionAttributeValues=marshal(values),
    ) is not None


PUSHES_KEPT = 16  # recent push times on the person, for frequency caps (caps allow at most 10 a day)


def record_push(uid: str, at: int) -> None:
    """Append a push time to the person's ``pushes`` (the planner's frequency caps), keeping the newest
    ``PUSHES_KEPT``. Best effort on the trim: a list one or two longer for a while is harmless."""
    out = conditional_update(
        Key=person_key(uid), UpdateExpression="SET pushes = list_append(if_not_exists(pushes, :none), :at)",
        ConditionExpression="attribute_exists(pk)", ExpressionAttributeValues=marshal({":none": [], ":at": [at]}),
        ReturnValues="UPDATED_NEW",
    )
    pushes = (out or {}).get("Attributes", {}).get("pushes", {}).get("L") or []
    extra = len(pushes) - PUSHES_KEPT
    if extra > 0:
        conditional_update(
            Key=person_key(uid), UpdateExpression="REMOVE " + ", ".join(f"pushes[{i}]" for i in range(extra)),
            ConditionExpression="size(pushes) = :n", ExpressionAttributeValues=marshal({":n": len(pushes)}),
        )
