"""Journey events (``USER#{uid}``/``EV#{iso-ts}#{id}``, with a TTL): what a person did, never what they wrote."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wxloop.adapters.dynamo.codec import ConditionFailed, call, marshal, unmarshal
from wxloop.adapters.dynamo.keys import journey_pk, journey_sk


def put_journey_event(uid: str, event: Mapping[str, Any], *, ttl: int) -> bool:
    """Record a journey event once (keyed by its time and id); False when it was already there. Raises
    ``RepositoryError`` when DynamoDB fails."""
    item = {"pk": journey_pk(uid), "sk": journey_sk(event["at_iso"], event["id"]), "ttl": ttl, **event}
    try:
        call("put_item", Item=marshal(item), ConditionExpression="attribute_not_exists(pk)")
    except ConditionFailed:
        return False
    return True


def journey(uid: str, *, limit: int = 100) -> list[dict]:
    """A person's journey events, newest first."""
    out = call(
        "query",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :ev)",
        ExpressionAttributeValues=marshal({":pk": journey_pk(uid), ":ev": "EV#"}),
        ScanIndexForward=False,
        Limit=limit,
    )
    return [unmarshal(i) or {} for i in out.get("Items", [])]
