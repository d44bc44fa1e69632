"""Plain-mode query bindings (``PUSHQ#{app_id}#{signature}``/``PUSHQ``, with a TTL): WeChat signs only the
query of a plain push, so the first body seen with a signed query is the only one that query may carry."""

from __future__ import annotations

from wxloop.adapters.dynamo.codec import ConditionFailed, call, marshal
from wxloop.adapters.dynamo.keys import query_binding_key


def bind_query(app_id: str, signature: str, body_hash: str, *, ttl: int) -> bool:
    """Bind the signed query ``signature`` (over token, timestamp, nonce) to ``body_hash``, once.

    True when the query is new or already bound to this same body (WeChat's retry); False when it was bound
    to another body (a captured query replayed with a forged body). ``ttl``: epoch after which the item goes
    (beyond the clock-skew window, when the query itself is refused). Raises ``RepositoryError``.
    """
    try:
        call("put_item", Item={**query_binding_key(app_id, signature), **marshal({"body": body_hash, "ttl": ttl})},
             ConditionExpression="attribute_not_exists(pk) OR body = :body",
             ExpressionAttributeValues=marshal({":body": body_hash}))
    except ConditionFailed:
        return False
    return True
