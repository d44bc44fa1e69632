"""Identities (``ID#{app_id}#{openid}``/``ID``): the hot path's one conditional write per push (dedupe, last
interaction, customer-service windows, follow state, the event for the stream, the reply kept for retries),
first contacts, replies stored after the touch, outbox events, and the customer-service window counters."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wxloop.adapters.dynamo.codec import (
    ConditionFailed,
    RepositoryError,
    TransactionCancelled,
    call,
    conditional_update,
    get,
    marshal,
    table_name,
    to_attr,
    unmarshal,
)
from wxloop.adapters.dynamo.keys import identity_key, person_key
from wxloop.domain.inbound import Inbound

# Dedupe keys go into one of three string sets chosen by the writer's clock (never the push's CreateTime,
# which WeChat's clock sets); a push is new only when no set holds its key. A write clears the set of the
# hour to come, and only while that hour is more than DEDUPE_KEEP_SECONDS away, so a key lives at least an
# hour, and even a writer whose clock lags another's by up to DEDUPE_KEEP_SECONDS never clears a key
# younger than that (the clock-skew window plus WeChat's retry span). The item stays small.
DEDUPE_PERIOD_SECONDS = 3600
DEDUPE_SETS = 3
DEDUPE_KEEP_SECONDS = 900  # > WECHAT_CLOCK_SKEW_SECONDS (300) + retries (~15 s), with margin
_NOT_SEEN = " AND ".join(f"NOT contains(dd{i}, :key)" for i in range(DEDUPE_SETS))


@dataclass(frozen=True, slots=True)
class Touch:
    """Outcome of recording one push on the sender's identity.

    ``status``: ``recorded`` (first delivery, written), ``duplicate`` (seen before: ``stored_reply`` is the
    reply the first delivery stored, if it finished) or ``unknown`` (no identity yet: create one). ``uid``
    and ``identity`` are empty for a ``recorded`` touch that did not ask for them (``want_uid``).
    """

    status: str
    uid: str = ""
    identity: Mapping[str, Any] | None = None
    stored_reply: str | None = None


def new_uid() -> str:
    return uuid.uuid4().hex


def _dedupe_set(clock: int) -> int:
    return (clock // DEDUPE_PERIOD_SECONDS) % DEDUPE_SETS


def dedupe_rotation(clock: int) -> tuple[int, int | None]:
    """(the set a key written at ``clock`` goes to, the set that write clears or None)."""
    current = _dedupe_set(clock)
    if clock % DEDUPE_PERIOD_SECONDS >= DEDUPE_PERIOD_SECONDS - DEDUPE_KEEP_SECONDS:
        return current, None  # the next hour is near: a writer with a slightly later clock may fill its set
    return current, _dedupe_set(clock + DEDUPE_PERIOD_SECONDS)


def seen_in(item: Mapping[str, Any], key: str) -> bool:
    """Whether an identity item holds the dedupe ``key`` in any of its sets."""
    return any(key in (item.get(f"dd{i}") or ()) for i in range(DEDUPE_SETS))


def touch_fields(inb: Inbound, *, now: int, event: Mapping, reply: str | None) -> dict[str, Any]:
    """The identity's attributes a push sets (attribute → value), shared by the update and the create paths."""
    fields: dict[str, Any] = {"last_at": now, "last_kind": inb.kind, "ev": dict(event)}
    if reply is not None:
        fields["last_reply"] = {"k": inb.dedupe_key, "body": reply}
    if inb.opens_message_window:
        fields["win_msg_at"], fields["win_msg_sent"] = now, 0
    if inb.opens_short_window:
        fields["win_evt_at"], fields["win_evt_sent"] = now, 0
    if inb.is_event and inb.event in ("subscribe", "scan"):  # only followers can scan into a SCAN event
        fields["following"], fields["last_scene"] = True, inb.scene
        if inb.event == "subscribe":
            fields["followed_at"] = now
    elif inb.is_event and inb.event == "unsubscribe":
        fields["following"], fields["unfollowed_at"] = False, now
    return fields


def touch_identity(app_id: str, inb: Inbound, *, now: int, event: Mapping, reply: str | None,
                   replay: bool = False, want_uid: bool = False) -> Touch:
    """Record a push on its sender's identity in ONE conditional UpdateItem.

    At once: dedupes on the push's key, stamps the last interaction and the customer-service windows, sets
    follow state, leaves ``event`` on the item (the stream turns it into a journey record and queues the
    jobs it carries) and stores ``reply`` for WeChat's retries. ``replay``: a push recorded late (by the
    worker); when the identity has seen a newer push since, only the push itself is recorded (its dedupe
    key and event), not its now-stale state. ``want_uid``: return the written item (and so the person's uid);
    without it DynamoDB sends nothing back, which keeps the common answer small (the item carries the
    dedupe sets). Raises ``RepositoryError`` when DynamoDB fails.
    """
    fields = touch_fields(inb, now=now, event=event, reply=reply)
    values = {f":{name}": to_attr(value) for name, value in fields.items()}
    current, stale = dedupe_rotation(int(time.time()))
    names = {"#seen": f"dd{current}"}
    values[":key"] = {"S": inb.dedupe_key}
    values[":keys"] = {"SS": [inb.dedupe_key]}
    expr = "SET " + ", ".join(f"{name} = :{name}" for name in fields) + " ADD #seen :keys"
    if stale is not None:
        names["#stale"] = f"dd{stale}"
        expr += " REMOVE #stale"
    condition = "attribute_exists(uid) AND " + _NOT_SEEN
    if replay:
        condition += " AND (attribute_not_exists(last_at) OR last_at <= :last_at)"
    try:
        out = call(
            "update_item",
            Key=identity_key(app_id, inb.openid),
            UpdateExpression=expr,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW" if want_uid else "NONE",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ConditionFailed as failed:
        return _touch_refused(app_id, inb, event, current, unmarshal(failed.item), replay=replay)
    if not want_uid:
        return Touch("recorded")
    item = unmarshal(out["Attributes"]) or {}
    return Touch("recorded", uid=item["uid"], identity=item)


def _touch_refused(app_id: str, inb: Inbound, event: Mapping, current: int, old: dict | None, *,
                   replay: bool) -> Touch:
    if not old or "uid" not in old:
        return Touch("unknown")
    if replay and not seen_in(old, inb.dedupe_key):
        return _record_push_only(app_id, inb, event, current, old)
    last = old.get("last_reply") or {}
    stored = (last.get("body") or None) if last.get("k") == inb.dedupe_key else None  # "": being rendered
    return Touch("duplicate", uid=old["uid"], identity=old, stored_reply=stored)


def _record_push_only(app_id: str, inb: Inbound, event: Mapping, current: int, old: Mapping) -> Touch:
    """A late push on an identity that has seen a newer one: keep its key and event, not its state."""
    written = conditional_update(
        Key=identity_key(app_id, inb.openid),
        UpdateExpression="SET ev = :ev ADD #seen :keys",
        ConditionExpression="attribute_exists(uid) AND " + _NOT_SEEN,
        ExpressionAttributeNames={"#seen": f"dd{current}"},
        ExpressionAttributeValues={":ev": to_attr(dict(event)), ":key": {"S": inb.dedupe_key},
                                   ":keys": {"SS": [inb.dedupe_key]}},
    )
    return Touch("recorded" if written is not None else "duplicate", uid=old["uid"], identity=old)


def create_identity(
    app_id: str, inb: Inbound, *, now: int, event: Mapping, reply: str | None, first_touch: Mapping
) -> Touch:
    """First push from (app_id, openid): create the person and the identity in one transaction.

    A concurrent first delivery of the same push may win the race; then this one is re-run as a touch
    (which dedupes). Raises ``RepositoryError`` when DynamoDB fails.
    """
    uid = new_uid()
    identity: dict[str, Any] = {
        "uid": uid, "app_id": app_id, "openid": inb.openid, "created_at": now,
        f"dd{dedupe_rotation(int(time.time()))[0]}": {inb.dedupe_key},
        **touch_fields(inb, now=now, event=event, reply=reply),  # the same fields the update path sets
    }
    person = {
        "uid": uid, "created_at": now, "first_touch": dict(first_touch), "openids": {app_id: inb.openid},
        "points": 0,
    }
    table = table_name()
    try:
        call("transact_write_items", TransactItems=[
            {"Put": {"TableName": table, "Item": {**person_key(uid), **marshal(person)},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": table, "Item": {**identity_key(app_id, inb.openid), **marshal(identity)},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
    except TransactionCancelled as exc:
        if exc.any_of("ConditionalCheckFailed"):
            retry = touch_identity(app_id, inb, now=now, event=event, reply=reply, want_uid=True)
            if retry.status != "unknown":
                return retry
        raise
    return Touch("recorded", uid=uid, identity=identity)


def store_reply(app_id: str, openid: str, dedupe_key: str, reply: str | None, *,
                outbox: Mapping | None = None) -> bool:
    """Keep a reply computed after the touch (one needing the person's data) for WeChat's retries, unless a
    newer push's reply is kept already (then nothing is written: False). ``outbox``: an event (``journey:
    False``) whose jobs the table's stream queues, left on the identity by the same write."""
    sets: list[str] = []
    values: dict[str, Any] = {":k": dedupe_key}
    if reply is not None:
        sets.append("last_reply = :r")
        values[":r"] = {"k": dedupe_key, "body": reply}
    if outbox is not None:
        sets.append("ev = :ev")
        values[":ev"] = dict(outbox)
    if not sets:
        return True
    return conditional_update(
        Key=identity_key(app_id, openid),
        UpdateExpression="SET " + ", ".join(sets),
        # the touch of this push stored last_reply with its key (an empty body: being rendered)
        ConditionExpression="attribute_exists(uid) AND (attribute_not_exists(last_reply) OR last_reply.k = :k)",
        ExpressionAttributeValues=marshal(values),
    ) is not None


def leave_outbox(app_id: str, openid: str, outbox: Mapping, *, uid: str | None = None) -> bool:
    """Leave an event on an identity for the table's stream: an outbox event (``journey: False``: jobs to
    queue) or a journey event the person did not push (a campaign's send); False when there is no such
    identity (or, with ``uid``, when it no longer belongs to that person). The stream records each event id
    once."""
    values = {":ev": to_attr(dict(outbox))}
    if uid is not None:
        values[":uid"] = {"S": uid}
    return conditional_update(
        Key=identity_key(app_id, openid),
        UpdateExpression="SET ev = :ev",
        ConditionExpression="attribute_exists(uid)" if uid is None else "uid = :uid",
        ExpressionAttributeValues=values,
    ) is not None


def get_identity(app_id: str, openid: str) -> dict | None:
    """The identity item (strongly consistent), or None; raises ``RepositoryError``."""
    return get(identity_key(app_id, openid))


def spend_cs_window(app_id: str, openid: str, window: str, opened_at: int, cap: int) -> bool:
    """Take one message of the customer-service window ``window`` (``msg``/``evt``) opened at ``opened_at``;
    False when it has been reopened since, or is used up (a concurrent send took the last one)."""
    out = conditional_update(
        Key=identity_key(app_id, openid),
        UpdateExpression="SET #sent = if_not_exists(#sent, :zero) + :one",
        ConditionExpression="#at = :opened AND (attribute_not_exists(#sent) OR #sent < :cap)",
        ExpressionAttributeNames={"#at": f"win_{window}_at", "#sent": f"win_{window}_sent"},
        ExpressionAttributeValues=marshal({":opened": int(opened_at), ":cap": int(cap), ":zero": 0, ":one": 1}),
    )
    return out is not None


def exhaust_cs_window(app_id: str, openid: str, window: str, opened_at: int, cap: int) -> None:
    """Mark the window opened at ``opened_at`` used up (WeChat answered 45015: it knows no open window), so
    later sends wait for the person's next push instead of calling WeChat (best effort)."""
    _adjust_cs_window(app_id, openid, window, opened_at, "SET #sent = :n", "#at = :opened", cap)


def refund_cs_window(app_id: str, openid: str, window: str, opened_at: int) -> None:
    """Give back a message taken by ``spend_cs_window`` whose send failed (best effort: a refund that
    fails only leaves the window one message shorter)."""
    _adjust_cs_window(app_id, openid, window, opened_at, "SET #sent = #sent - :n", "#at = :opened AND #sent >= :n", 1)


def _adjust_cs_window(app_id: str, openid: str, window: str, opened_at: int, update: str, condition: str,
                      n: int) -> None:
    """Change the sent count of the window opened at ``opened_at`` (not one reopened since); best effort."""
    try:
        conditional_update(
            Key=identity_key(app_id, openid),
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames={"#at": f"win_{window}_at", "#sent": f"win_{window}_sent"},
            ExpressionAttributeValues=marshal({":opened": int(opened_at), ":n": int(n)}),
        )
    except RepositoryError:  # see the docstring
        pass


def mark_channel_closed(app_id: str, openid: str, channel: str, code: int, now: int) -> bool:
    """Note on the identity that ``channel`` (``cs``, ``subscribe:{template_id}``…) refused with errcode
    ``code``: sets ``closed.{channel} = {code, at}``. False when the identity does not exist."""
    key = identity_key(app_id, openid)
    entry = {"code": int(code), "at": int(now)}

    def nested() -> bool:
        return conditional_update(
            Key=key,
            UpdateExpression="SET #closed.#ch = :entry",
            ConditionExpression="attribute_exists(pk) AND attribute_exists(#closed)",
            ExpressionAttributeNames={"#closed": "closed", "#ch": channel},
            ExpressionAttributeValues=marshal({":entry": entry}),
        ) is not None

    if nested():
        return True
    whole = conditional_update(  # first closed channel: the map does not exist yet
        Key=key,
        UpdateExpression="SET #closed = :map",
        ConditionExpression="attribute_exists(pk) AND attribute_not_exists(#closed)",
        ExpressionAttributeNames={"#closed": "closed"},
        ExpressionAttributeValues=marshal({":map": {channel: entry}}),
    )
    # Lost a race with another writer creating the map, or no identity: one more nested try decides.
    return whole is not None or nested()
