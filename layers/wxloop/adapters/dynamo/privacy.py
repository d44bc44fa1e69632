"""Privacy storage: consent records, everything held about a person, erasure work and its audit, exports.

| item | pk | sk | holds |
|---|---|---|---|
| consent state | ``USER#{uid}`` | ``PROFILE`` | ``consent_{purpose}``: ``{g, v, at, src}`` (``wxloop.domain.consent``) |
| consent history | ``USER#{uid}`` | ``CONSENT#{purpose}#{at:010d}#{g|w}`` | one per change (the ledger) |
| export request | ``USER#{uid}`` | ``EXPORT#{id}`` | state, object key; TTL 7 days |
| erasure work | ``ERASEQ#`` | ``{request_id}`` | uid, step, sweep time: deleted when the erasure ends |
| erasure audit | ``ERASURE#{request_id}`` | ``AUDIT`` | source, times, counts: no personal data, kept |

Erasure is generic over item types: a person owns every item under its ``USER#`` partitions, its
identities' ``ID#`` partitions (``SUB#``, ``SUBEV#``...), its ``UNION#`` and ``REF#{uid}`` items, and
codes named on its items; other people's items that name it are rewritten to name nobody.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from wxloop.adapters.dynamo.codec import (
    RepositoryError,
    TransactionCancelled,
    call,
    get,
    marshal,
    table_name,
    unmarshal,
)
from wxloop.adapters.dynamo.keys import person_key, union_key
from wxloop.domain import consent as rules

ERASED = "erased"  # what a reference to an erased person becomes
ERASE_QUEUE_PK = "ERASEQ#"
EXPORT_TTL_SECONDS = 7 * 86400
_REFERENCE_ATTRS = ("inviter", "invitee", "referrer", "uid", "owner", "merged_from", "merged_into", "by")


# --- consent -------------------------------------------------------------------------------------------


def record_consent(uid: str, record: rules.Consent, *, max_hops: int = 3) -> str | None:
    """Store ``record`` as the person's current state of its purpose (unless a newer one is there) and append
    it to the history, in one transaction. A merged person's record lands on the survivor. Returns the uid it
    landed on, or None when an equal or newer record won (nothing written) or the person does not exist.
    Raises ``RepositoryError``."""
    for _ in range(max_hops + 1):
        person = get(person_key(uid))
        if not person:
            return None
        if person.get("merged_into"):
            uid = str(person["merged_into"])
            continue
        if not rules.newer(person.get(rules.attribute(record.purpose)), record):
            return None
        try:
            call("transact_write_items", TransactItems=_consent_items(uid, record))
        except TransactionCancelled as exc:
            if exc.any_of("ConditionalCheckFailed", "TransactionConflict"):
                continue  # changed meanwhile: read again and decide
            raise
        return uid
    raise RepositoryError("consent write kept losing races")


def _consent_items(uid: str, record: rules.Consent) -> list[dict]:
    table = table_name()
    attr = rules.attribute(record.purpose)
    history_sk = f"CONSENT#{record.purpose}#{record.at:010d}#{'g' if record.granted else 'w'}"
    return [
        {"Update": {"TableName": table, "Key": person_key(uid), "UpdateExpression": "SET #c = :rec",
                    # newer wins; at the same second a withdrawal wins
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(merged_into) AND "
                    "(attribute_not_exists(#c) OR #c.#at < :at OR (#c.#at = :at AND :g = :false))",
                    "ExpressionAttributeNames": {"#c": attr, "#at": "at"},
                    "ExpressionAttributeValues": marshal({":rec": record.to_item(), ":at": record.at,
                                                          ":g": record.granted, ":false": False})}},
        {"Put": {"TableName": table, "Item": marshal({"pk": f"USER#{uid}", "sk": history_sk, **record.to_item(),
                                                      "purpose": record.purpose})}},
    ]


def consent_history(uid: str) -> list[dict]:
    """The person's consent changes, oldest first."""
    return [i for i in query_partition(f"USER#{uid}", sk_prefix="CONSENT#")]


# --- reading a person's items --------------------------------------------------------------------------


def query_partition(pk: str, *, sk_prefix: str = "") -> Iterator[dict]:
    """Every item under ``pk`` (strongly consistent, all pages), optionally only sort keys with a prefix."""
    kwargs: dict[str, Any] = {"KeyConditionExpression": "pk = :pk", "ConsistentRead": True,
                              "ExpressionAttributeValues": marshal({":pk": pk})}
    if sk_prefix:
        kwargs["KeyConditionExpression"] += " AND begins_with(sk, :p)"
        kwargs["ExpressionAttributeValues"] = marshal({":pk": pk, ":p": sk_prefix})
    while True:
        out = call("query", **kwargs)
        for item in out.get("Items") or ():
            yield unmarshal(item) or {}
        if not out.get("LastEvaluatedKey"):
            return
        kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]


def merged_uids(uid: str) -> list[str]:
    """Persons merged into ``uid`` (its ``MERGE#{uid}`` merge log items, followed transitively)."""
    seen, todo, out = {uid}, [uid], []
    while todo:
        for item in query_partition(f"USER#{todo.pop()}", sk_prefix="MERGE#"):
            loser = str(item["sk"]).removeprefix("MERGE#")
            if loser and loser not in seen:
                seen.add(loser)
                out.append(loser)
                todo.append(loser)
    return out


def holdings(uid: str) -> dict[str, Any]:
    """Everything held about the person ``uid`` (and persons merged into it): ``items`` by partition, the
    ``uids``, ``identities`` ((app, openid) pairs), ``unionids`` and ``codes`` found on them."""
    uids = [uid, *merged_uids(uid)]
    items: dict[str, list[dict]] = {}
    identities, unionids = _person_partitions(uids, items)
    unionids |= _identity_partitions(identities, uids, items)
    for unionid in sorted(unionids):
        union = get(union_key(unionid))
        if union and union.get("uid") in uids:
            items[f"UNION#{unionid}"] = [union]
    codes = sorted(_codes_named(items))
    for code in codes:
        found = list(query_partition(f"CODE#{code}"))
        if found and any(_names_any(i, uids) for i in found):
            items[f"CODE#{code}"] = found
    return {"uids": uids, "items": items, "identities": sorted(identities), "unionids": sorted(unionids),
            "codes": [c for c in codes if f"CODE#{c}" in items]}


def _person_partitions(uids: list[str], items: dict[str, list[dict]]) -> tuple[set[tuple[str, str]], set[str]]:
    """Add each person's ``USER#`` and ``REF#`` partitions to ``items``; the (app, openid) pairs and unionids
    their profiles name."""
    identities: set[tuple[str, str]] = set()
    unionids: set[str] = set()
    for u in uids:
        items[f"USER#{u}"] = list(query_partition(f"USER#{u}"))
        for item in items[f"USER#{u}"]:
            if item.get("sk") == "PROFILE":
                identities |= {(str(a), str(o)) for a, o in (item.get("openids") or {}).items()}
                if item.get("unionid"):
                    unionids.add(str(item["unionid"]))
        ref = get({"pk": {"S": f"REF#{u}"}, "sk": {"S": "REF"}})
        if ref:
            items[f"REF#{u}"] = list(query_partition(f"REF#{u}"))
    return identities, unionids


def _identity_partitions(identities: set[tuple[str, str]], uids: list[str], items: dict[str, list[dict]]) -> set[str]:
    """Add the ``ID#`` partitions still pointing at one of ``uids`` to ``items``; the unionids they name."""
    unionids: set[str] = set()
    for app, openid in sorted(identities):
        found = list(query_partition(f"ID#{app}#{openid}"))
        ident = next((i for i in found if i.get("sk") == "ID"), None)
        if ident is not None and ident.get("uid") in uids:  # an openid taken over since is someone else's
            items[f"ID#{app}#{openid}"] = found
            if ident.get("unionid"):
                unionids.add(str(ident["unionid"]))
    return unionids


def _codes_named(items: Mapping[str, list[dict]]) -> set[str]:
    out: set[str] = set()
    for group in items.values():
        for item in group:
            for name in ("code", "invite_code", "short_code"):
                if isinstance(item.get(name), str) and item[name]:
                    out.add(item[name])
            for code in item.get("codes") or ():
                out.add(str(code))
    return out


def _names_any(item: Mapping[str, Any], values: Iterable[str]) -> bool:
    wanted = set(values)
    return any(isinstance(v, str) and v in wanted for v in item.values())


def linked_partitions(holding: Mapping[str, Any]) -> list[str]:
    """Partitions of OTHER people that may name this person: the inviter and invitees its items name.
    Campaign items (``CAMPAIGN#{id}``) are cleared by the erasure per recent run (a campaign partition holds
    everyone's sends: it is never read whole)."""
    own = set(holding["uids"])
    out: set[str] = set()
    for group in holding["items"].values():
        for item in group:
            for name in ("inviter", "invitee", "referrer"):
                other = item.get(name)
                if isinstance(other, str) and other and other not in own and other != ERASED:
                    out |= {f"USER#{other}", f"REF#{other}"}
    return sorted(out)


# --- retention -------------------------------------------------------------------------------------------


def last_activity_by_person(*, segment: int = 0, segments: int = 1) -> dict[str, int]:
    """Each person's latest activity (epoch s) over the person and its identities, from a scan of person and
    identity items (one parallel-scan ``segment``). Merged persons and persons being erased are left out."""
    kwargs: dict[str, Any] = {
        "TableName": table_name(), "Segment": segment, "TotalSegments": segments,
        "FilterExpression": "(sk = :p AND begins_with(pk, :u)) OR (sk = :i AND begins_with(pk, :id))",
        "ProjectionExpression": "pk, sk, uid, created_at, last_at, last_launch_at, merged_into, erasing",
        "ExpressionAttributeValues": marshal({":p": "PROFILE", ":u": "USER#", ":i": "ID", ":id": "ID#"}),
    }
    latest: dict[str, int] = {}
    skip: set[str] = set()
    while True:
        out = call("scan", **kwargs)
        for raw in out.get("Items") or ():
            item = unmarshal(raw) or {}
            uid = str(item.get("uid") or str(item["pk"]).removeprefix("USER#"))
            if item.get("merged_into") or item.get("erasing"):
                skip.add(uid)
            at = max(int(item.get(k) or 0) for k in ("created_at", "last_at", "last_launch_at"))
            latest[uid] = max(latest.get(uid, 0), at)
        if not out.get("LastEvaluatedKey"):
            return {u: at for u, at in latest.items() if u not in skip}
        kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]


def forget(uid: str, attributes: Iterable[str]) -> None:
    """Remove ``attributes`` from the person item (rectification: the person takes something back)."""
    names = {f"#a{i}": a for i, a in enumerate(attributes)}
    if names:
        call("update_item", Key=person_key(uid), ConditionExpression="attribute_exists(pk)",
             UpdateExpression="REMOVE " + ", ".join(names), ExpressionAttributeNames=names)
