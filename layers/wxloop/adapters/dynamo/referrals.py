"""Short codes (``CODE#{code}``/``CODE``) and referrals (``REF#{invitee}``/``REF``, listed per inviter on the
index: ``gsi1pk`` ``INVITER#{inviter}``, ``gsi1sk`` ``{created_at}#{invitee}``).

A referral is written once (``attribute_not_exists``): first touch wins by construction. Its state moves
pending → rewarded → reversed, or pending → voided; the reward transaction lives in ``rewards``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from wxloop.adapters.dynamo.codec import (
    ConditionFailed,
    RepositoryError,
    call,
    get,
    marshal,
    table_name,
    unmarshal,
)
from wxloop.adapters.dynamo.keys import code_key, inviter_index_pk, referral_key
from wxloop.domain.attribution import Referral

MAX_PAGE = 50


class BadCursor(RepositoryError):
    """A page cursor that is not one this listing handed out (tampered, or another person's)."""


def put_code(code: str, payload: Mapping[str, Any], *, now: int) -> bool:
    """Store ``code`` → ``payload`` unless the code exists; True when stored or already holding the same
    payload (a repeat), False when the code stands for something else (draw another)."""
    item = {**code_key(code), **marshal({**payload, "created_at": now})}
    try:
        call("put_item", Item=item, ConditionExpression="attribute_not_exists(pk)")
        return True
    except ConditionFailed:
        held = get_code(code) or {}
        return all(held.get(k) == v for k, v in payload.items())


def get_code(code: str) -> dict | None:
    """What a short code stands for (``kind`` ``invite``: inviter, campaign; ``channel``: name), or None."""
    return get(code_key(code), consistent=False)


def referral_from_item(item: Mapping[str, Any]) -> Referral:
    return Referral(invitee=item["invitee"], inviter=item["inviter"], campaign=item["campaign"],
                    channel=item.get("channel", ""), created_at=int(item["created_at"]),
                    state=item.get("state", "pending"), reason=item.get("reason", ""))


def get_referral(invitee: str) -> dict | None:
    """The invitee's referral item (strongly consistent), or None."""
    return get(referral_key(invitee))


def put_referral(referral: Referral, *, app_id: str) -> bool:
    """Record a pending referral; False when the invitee already has one (first touch wins)."""
    item = {**referral_key(referral.invitee), **marshal({
        "invitee": referral.invitee, "inviter": referral.inviter, "campaign": referral.campaign,
        "channel": referral.channel, "created_at": referral.created_at, "state": referral.state,
        "reason": referral.reason, "app_id": app_id, "gsi1pk": inviter_index_pk(referral.inviter),
        "gsi1sk": f"{referral.created_at:012d}#{referral.invitee}"})}
    try:
        call("put_item", Item=item, ConditionExpression="attribute_not_exists(pk)")
        return True
    except ConditionFailed:
        return False


def void_referral(invitee: str, reason: str, *, now: int) -> bool:
    """Move a pending referral to voided with ``reason``; False when it is not pending (nothing changed)."""
    try:
        call("update_item", TableName=table_name(), Key=referral_key(invitee),
             UpdateExpression="SET #s = :v, reason = :r, voided_at = :now",
             ConditionExpression="#s = :p", ExpressionAttributeNames={"#s": "state"},
             ExpressionAttributeValues=marshal({":v": "voided", ":r": reason, ":now": now, ":p": "pending"}))
        return True
    except ConditionFailed:
        return False


def move_referral(old_invitee: str, referral: Referral, *, app_id: str, now: int) -> bool:
    """A merge: the survivor ``referral.invitee`` takes over the pending referral of ``old_invitee`` (the
    merged person's is marked ``moved``), in one transaction; False when either side changed meanwhile."""
    new_item = {**referral_key(referral.invitee), **marshal({
        "invitee": referral.invitee, "inviter": referral.inviter, "campaign": referral.campaign,
        "channel": referral.channel, "created_at": referral.created_at, "state": "pending", "reason": "",
        "app_id": app_id, "gsi1pk": inviter_index_pk(referral.inviter),
        "gsi1sk": f"{referral.created_at:012d}#{referral.invitee}"})}
    from wxloop.adapters.dynamo.codec import TransactionCancelled

    try:
        call("transact_write_items", TransactItems=[
            {"Put": {"TableName": table_name(), "Item": new_item, "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Update": {"TableName": table_name(), "Key": referral_key(old_invitee),
                        "UpdateExpression": "SET #s = :m, reason = :r, moved_at = :now REMOVE gsi1pk, gsi1sk",
                        "ConditionExpression": "#s = :p", "ExpressionAttributeNames": {"#s": "state"},
                        "ExpressionAttributeValues": marshal({":m": "moved", ":r": f"merged into {referral.invitee}",
                                                              ":now": now, ":p": "pending"})}},
        ])
        return True
    except TransactionCancelled:
        return False


def add_active_day(invitee: str, day: str) -> dict | None:
    """Note ``day`` as an active day of a pending referral; the referral after the write, or None when the
    invitee has no pending referral (one conditional write: cheap for everyone else)."""
    try:
        out = call("update_item", TableName=table_name(), Key=referral_key(invitee),
                   UpdateExpression="ADD active_days :d", ConditionExpression="#s = :p",
                   ExpressionAttributeNames={"#s": "state"},
                   ExpressionAttributeValues=marshal({":d": {day}, ":p": "pending"}), ReturnValues="ALL_NEW")
    except ConditionFailed:
        return None
    return unmarshal(out.get("Attributes"))


def encode_cursor(key: Mapping | None) -> str | None:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode() if key else None


def decode_cursor(cursor: str | None, *, expect: Mapping[str, str]) -> dict | None:
    """The ``ExclusiveStartKey`` of ``cursor``; raises ``BadCursor`` unless every attribute in ``expect``
    holds that value (a cursor cannot reach another person's items)."""
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (ValueError, UnicodeError):
        raise BadCursor("bad cursor") from None
    if not isinstance(key, dict) or len(key) > 4 or not all(
            isinstance(v, dict) and list(v) == ["S"] and isinstance(v["S"], str) for v in key.values()):
        raise BadCursor("bad cursor")
    if any(key.get(k, {}).get("S") != v for k, v in expect.items()):
        raise BadCursor("bad cursor")
    return key


def list_referrals(inviter: str, *, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    """One page of the inviter's referrals, newest first, and the next page's cursor (None: last page)."""
    kwargs: dict[str, Any] = {
        "TableName": table_name(), "IndexName": "gsi1", "KeyConditionExpression": "gsi1pk = :p",
        "ExpressionAttributeValues": marshal({":p": inviter_index_pk(inviter)}),
        "Limit": max(1, min(limit, MAX_PAGE)), "ScanIndexForward": False}
    start = decode_cursor(cursor, expect={"gsi1pk": inviter_index_pk(inviter)})
    if start:
        kwargs["ExclusiveStartKey"] = start
    out = call("query", **kwargs)
    return [unmarshal(i) for i in out.get("Items", [])], encode_cursor(out.get("LastEvaluatedKey"))
