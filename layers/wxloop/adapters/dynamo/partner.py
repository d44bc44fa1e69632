"""The partner API's replay guard (``PNONCE#{key_id}#{nonce}``/``NONCE``, expiring through ``ttl``) and its
idempotency records (``PIDEM#{app_id}#{key}``/``PIDEM``: the request's hash, then the answer)."""

from __future__ import annotations

import json

from wxloop.adapters.dynamo.codec import ConditionFailed, call, get, marshal, table_name
from wxloop.adapters.dynamo.keys import identity_key, partner_idempotency_key, partner_nonce_key, union_key

IDEMPOTENCY_TTL_SECONDS = 7 * 86400


def use_nonce(key_id: str, nonce: str, *, expires_at: int) -> bool:
    """Spend ``nonce`` of ``key_id``; False when it was spent before (a replay)."""
    try:
        call("put_item", Item={**partner_nonce_key(key_id, nonce), **marshal({"ttl": expires_at})},
             ConditionExpression="attribute_not_exists(pk)")
        return True
    except ConditionFailed:
        return False


def claim_request(app_id: str, key: str, request_hash: str, *, now: int) -> dict | None:
    """Claim the idempotency ``key`` for a request with ``request_hash``: None when this call claimed it
    (go on), else the record already there (``hash``, and ``status``/``body`` once answered)."""
    try:
        call("put_item", Item={**partner_idempotency_key(app_id, key), **marshal(
            {"hash": request_hash, "at": now, "ttl": now + IDEMPOTENCY_TTL_SECONDS})},
            ConditionExpression="attribute_not_exists(pk)")
        return None
    except ConditionFailed:
        held = get(partner_idempotency_key(app_id, key)) or {}
        if "body" in held:
            held["body"] = json.loads(held["body"])
        return held


def settle_request(app_id: str, key: str, status: int, body: dict) -> None:
    """Keep the answer of a claimed request, so a retry with the same key gets the same answer."""
    call("update_item", TableName=table_name(), Key=partner_idempotency_key(app_id, key),
         UpdateExpression="SET #st = :s, body = :b", ExpressionAttributeNames={"#st": "status"},
         ExpressionAttributeValues=marshal({":s": status, ":b": json.dumps(body, ensure_ascii=False)}))


def release_request(app_id: str, key: str) -> None:
    """Forget a claim whose request failed on our side, so the partner's retry runs it."""
    call("delete_item", TableName=table_name(), Key=partner_idempotency_key(app_id, key))


def uid_of(app_id: str, *, openid: str | None = None, unionid: str | None = None) -> str | None:
    """The uid behind an openid of ``app_id`` or a unionid, or None."""
    item = get(identity_key(app_id, openid)) if openid else get(union_key(unionid)) if unionid else None
    return str(item["uid"]) if item and item.get("uid") else None
