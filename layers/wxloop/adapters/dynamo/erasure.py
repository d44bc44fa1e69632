"""Erasure writes (item layout in ``wxloop.adapters.dynamo.privacy``): the work item that makes an erasure
resumable, the audit record, deletes and the rewriting of other people's items that name the person."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from wxloop.adapters.dynamo.codec import (
    ConditionFailed,
    RepositoryError,
    TransactionCancelled,
    call,
    get,
    marshal,
    table_name,
)
from wxloop.adapters.dynamo.keys import person_key
from wxloop.adapters.dynamo.privacy import ERASE_QUEUE_PK, ERASED, query_partition

BATCH = 25


def _work_key(request_id: str) -> dict:
    return {"pk": {"S": ERASE_QUEUE_PK}, "sk": {"S": request_id}}


def audit_key(request_id: str) -> dict:
    return {"pk": {"S": f"ERASURE#{request_id}"}, "sk": {"S": "AUDIT"}}


def start(request_id: str, uid: str, *, source: str, now: int) -> str | None:
    """Open an erasure of ``uid``: mark the person (``erasing``), write the work item and the audit record in
    one transaction. Returns the request id that erases the person (an earlier one when it is already being
    erased), or None when there is no such person."""
    table = table_name()
    try:
        call("transact_write_items", TransactItems=[
            {"Update": {"TableName": table, "Key": person_key(uid), "UpdateExpression": "SET erasing = :r",
                        "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(erasing)",
                        "ExpressionAttributeValues": marshal({":r": request_id})}},
            {"Put": {"TableName": table, "ConditionExpression": "attribute_not_exists(pk)",
                     "Item": {**_work_key(request_id), **marshal({"uid": uid, "step": "table", "at": now})}}},
            {"Put": {"TableName": table, "ConditionExpression": "attribute_not_exists(pk)",
                     "Item": {**audit_key(request_id), **marshal(
                         {"state": "running", "source": source, "requested_at": now})}}},
        ])
    except TransactionCancelled as exc:
        if not exc.any_of("ConditionalCheckFailed", "TransactionConflict"):
            raise
        person = get(person_key(uid))
        return str(person["erasing"]) if person and person.get("erasing") else None
    return request_id


def pending() -> list[dict]:
    """Open erasures (work items), oldest request first: what a resumed run picks up."""
    return sorted(query_partition(ERASE_QUEUE_PK), key=lambda i: i.get("at", 0))


def work(request_id: str) -> dict | None:
    return get(_work_key(request_id))


def advance(request_id: str, **fields: Any) -> None:
    """Record progress on the work item (``step``, the partitions to sweep, ``sweep_at``)."""
    names = {f"#f{i}": k for i, k in enumerate(fields)}
    values = {f":f{i}": v for i, v in enumerate(fields.values())}
    call("update_item", Key=_work_key(request_id), ConditionExpression="attribute_exists(pk)",
         UpdateExpression="SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))),
         ExpressionAttributeNames=names, ExpressionAttributeValues=marshal(values))


def finish(request_id: str, *, counts: Mapping[str, int], now: int) -> None:
    """Close the erasure: the audit record says done with its counts, the work item (the uid) goes."""
    table = table_name()
    call("transact_write_items", TransactItems=[
        {"Update": {"TableName": table, "Key": audit_key(request_id),
                    "UpdateExpression": "SET #s = :done, finished_at = :now, counts = :c",
                    "ExpressionAttributeNames": {"#s": "state"},
                    "ExpressionAttributeValues": marshal({":done": "done", ":now": now, ":c": dict(counts)})}},
        {"Delete": {"TableName": table, "Key": _work_key(request_id)}},
    ])


def audit(request_id: str) -> dict | None:
    return get(audit_key(request_id))


def delete_keys(keys: Sequence[tuple[str, str]]) -> int:
    """Delete items by (pk, sk), 25 a request; returns how many were asked. Raises ``RepositoryError``."""
    requests = [{"DeleteRequest": {"Key": {"pk": {"S": pk}, "sk": {"S": sk}}}} for pk, sk in keys]
    for start_at in range(0, len(requests), BATCH):
        pending_items = {table_name(): requests[start_at:start_at + BATCH]}
        for _ in range(5):
            out = call("batch_write_item", RequestItems=pending_items)
            pending_items = out.get("UnprocessedItems") or {}
            if not pending_items:
                break
        if pending_items:
            raise RepositoryError("erasure deletes left unprocessed")
    return len(requests)


def delete_if_owned(pk: str, sk: str, uids: Iterable[str]) -> bool:
    """Delete an item only while its ``uid`` is one of ``uids`` (an identity or union taken by a new
    person meanwhile stays theirs); True when deleted or already gone."""
    owners = sorted(set(uids))
    values = {f":u{i}": u for i, u in enumerate(owners)}
    try:
        call("delete_item", Key={"pk": {"S": pk}, "sk": {"S": sk}},
             ConditionExpression="attribute_not_exists(pk) OR uid IN (" + ", ".join(values) + ")",
             ExpressionAttributeValues=marshal(values))
    except ConditionFailed:
        return False
    return True


def unlink(pk: str, identifiers: Iterable[str]) -> int:
    """In another person's partition ``pk``, make every item that names one of ``identifiers`` name nobody:
    an item keyed by the identifier (``SEND#{uid}``) is deleted, a top-level attribute equal to one becomes
    ``erased`` (an inviter's ledger stays, without the invitee). Returns how many items changed."""
    wanted = {i for i in identifiers if i}
    changed = 0
    for item in list(query_partition(pk)):
        sk = str(item.get("sk", ""))
        if any(i in sk for i in wanted):
            delete_keys([(pk, sk)])
            changed += 1
            continue
        attrs = sorted(k for k, v in item.items() if k not in ("pk", "sk") and isinstance(v, str) and v in wanted)
        if not attrs:
            continue
        names = {f"#a{i}": a for i, a in enumerate(attrs)}
        call("update_item", Key={"pk": {"S": pk}, "sk": {"S": sk}},
             UpdateExpression="SET " + ", ".join(f"#a{i} = :e" for i in range(len(attrs))),
             ExpressionAttributeNames=names, ExpressionAttributeValues=marshal({":e": ERASED}))
        changed += 1
    return changed
