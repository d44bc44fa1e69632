"""Subscribe-message credits (``ID#{app_id}#{openid}``/``SUB#{template_id}``): the one-time sends a person
granted per template, kept from subscribe-message events since no WeChat API tells the remaining count."""

from __future__ import annotations

from collections.abc import Mapping

from wxloop.adapters.dynamo.codec import (
    ConditionFailed,
    RepositoryError,
    TransactionCancelled,
    call,
    conditional_update,
    marshal,
    table_name,
    unmarshal,
)
from wxloop.adapters.dynamo.keys import subscribe_credit_key, subscribe_event_marker


def apply_subscribe_event(app_id: str, openid: str, event_id: str, changes: Mapping[str, int | None], *,
                          now: int, ttl: int) -> bool:
    """Apply once the subscribe-message credit changes of one event (``subscribe_msg_popup_event`` /
    ``subscribe_msg_change_event``). ``changes`` maps a template id to the one-time sends it grants (added to
    ``remaining`` of ``SUB#{template_id}``, created at 0) or None (refused: ``remaining`` = 0, ``gen`` + 1).

    One transaction with a marker ``ID#{app_id}#{openid}``/``SUBEV#{event_id}`` (expires at ``ttl``) that
    must not exist yet: a replayed stream record changes nothing and gets False.
    """
    if not changes:
        return False
    table = table_name()
    items: list[dict] = [{"Put": {
        "TableName": table,
        "Item": marshal({**subscribe_event_marker(app_id, openid, event_id), "at": int(now), "ttl": int(ttl)}),
        "ConditionExpression": "attribute_not_exists(pk)",
    }}]
    for template_id, grant in changes.items():
        if grant is None:
            update, values = "SET remaining = :zero, updated_at = :now ADD gen :one", {":zero": 0, ":now": now, ":one": 1}
        else:
            update = "SET remaining = if_not_exists(remaining, :zero) + :n, updated_at = :now"
            values = {":zero": 0, ":n": int(grant), ":now": now}
        items.append({"Update": {"TableName": table, "Key": subscribe_credit_key(app_id, openid, template_id),
                                 "UpdateExpression": update, "ExpressionAttributeValues": marshal(values)}})
    try:
        call("transact_write_items", TransactItems=items)
    except TransactionCancelled as exc:
        if exc.reasons and exc.reasons[0] == "ConditionalCheckFailed":
            return False  # the marker exists: this event was applied before
        raise
    return True


def spend_subscribe_credit(app_id: str, openid: str, template_id: str) -> tuple[str, int]:
    """Take one subscribe-message credit (``SUB#{template_id}``, attribute ``remaining``) before a send.

    Returns (``spent``, the item's ``gen`` for ``refund_subscribe_credit``), (``none_left``, 0) when the
    counter exists at 0, or (``no_counter``, 0) when no counter is kept for this person and template.
    """
    try:
        out = call(
            "update_item",
            Key=subscribe_credit_key(app_id, openid, template_id),
            UpdateExpression="SET remaining = remaining - :one",
            ConditionExpression="attribute_exists(pk) AND remaining > :zero",
            ExpressionAttributeValues=marshal({":one": 1, ":zero": 0}),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ConditionFailed as failed:
        return ("none_left" if failed.item else "no_counter"), 0
    return "spent", int((unmarshal(out.get("Attributes")) or {}).get("gen") or 0)


def refund_subscribe_credit(app_id: str, openid: str, template_id: str, gen: int) -> bool:
    """Give back a credit taken by ``spend_subscribe_credit`` whose send failed, unless the counter was
    reset since (``gen`` changed: a refusal or 43101 set it to 0). Best effort: False when not refunded."""
    if gen:
        condition, values = "gen = :gen", {":one": 1, ":gen": int(gen)}
    else:
        condition, values = "attribute_exists(pk) AND attribute_not_exists(gen)", {":one": 1}
    try:
        return conditional_update(
            Key=subscribe_credit_key(app_id, openid, template_id),
            UpdateExpression="SET remaining = remaining + :one",
            ConditionExpression=condition,
            ExpressionAttributeValues=marshal(values),
        ) is not None
    except RepositoryError:  # the person then has one credit less than WeChat thinks: a later send finds out
        return False


def zero_subscribe_credit(app_id: str, openid: str, template_id: str, now: int) -> bool:
    """WeChat says there is no credit (43101): set an existing counter to 0 (``gen`` + 1). False when no
    counter is kept (none is created: without one, sends go ahead and WeChat decides)."""
    return conditional_update(
        Key=subscribe_credit_key(app_id, openid, template_id),
        UpdateExpression="SET remaining = :zero, updated_at = :now ADD gen :one",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeValues=marshal({":zero": 0, ":now": int(now), ":one": 1}),
    ) is not None
