"""The one DynamoDB repository: every key, item shape and conditional write of wxloop lives here.

Single table, keys ``pk``/``sk``, GSI ``gsi1pk``/``gsi1sk``, TTL attribute ``ttl``. Item layout is in the
README ("Data"). Uses the low-level botocore client (see ``wxloop.adapters.aws``) with a small marshaller.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from wxloop.adapters import aws
from wxloop.domain.inbound import Inbound

# Dedupe keys go into one of three string sets chosen by the push's CreateTime; each write clears the set
# two periods back, so keys live 1-2 hours (WeChat retries within ~15 s) and the item stays small.
DEDUPE_PERIOD_SECONDS = 3600
DEDUPE_SETS = 3


class RepositoryError(RuntimeError):
    """DynamoDB did not accept a write or read (throttled, unavailable, timed out)."""


# --- marshalling -------------------------------------------------------------------------------------


def _m(value: Any) -> dict:
    kind = type(value)
    if kind is str:  # the common cases first: this runs on the hot path
        return {"S": value}
    if kind is int:
        return {"N": str(value)}
    if kind is dict:
        return {"M": {str(k): _m(v) for k, v in value.items()}}
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, Decimal)):
        return {"N": str(value)}
    if isinstance(value, float):
        return {"N": repr(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (bytes, bytearray)):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): _m(v) for k, v in value.items()}}
    if isinstance(value, (set, frozenset)):
        if all(isinstance(v, str) for v in value):
            return {"SS": sorted(value)}
        return {"NS": sorted(str(v) for v in value)}
    if isinstance(value, (list, tuple)):
        return {"L": [_m(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__}")


def _u(attr: Mapping[str, Any]) -> Any:
    (tag, value), = attr.items()
    if tag == "S":
        return value
    if tag == "N":
        return int(value) if value.lstrip("-").isdigit() else float(value)
    if tag == "BOOL":
        return value
    if tag == "NULL":
        return None
    if tag == "M":
        return {k: _u(v) for k, v in value.items()}
    if tag == "L":
        return [_u(v) for v in value]
    if tag == "SS":
        return set(value)
    if tag == "NS":
        return {int(v) if v.lstrip("-").isdigit() else float(v) for v in value}
    if tag == "B":
        return value
    raise TypeError(f"unknown DynamoDB type {tag}")


def marshal(item: Mapping[str, Any]) -> dict:
    """A plain dict as a DynamoDB item (attribute-value map)."""
    return {k: _m(v) for k, v in item.items()}


def unmarshal(item: Mapping[str, Any] | None) -> dict | None:
    """A DynamoDB item as a plain dict (numbers as int/float, sets as set)."""
    if item is None:
        return None
    return {k: _u(v) for k, v in item.items()}


def table_name() -> str:
    name = os.environ.get("TABLE_NAME")
    if not name:
        raise RuntimeError("TABLE_NAME is not set")
    return name


def ddb():
    return aws.client("dynamodb")


def is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


# --- keys --------------------------------------------------------------------------------------------


def person_key(uid: str) -> dict:
    return {"pk": {"S": f"USER#{uid}"}, "sk": {"S": "PROFILE"}}


def identity_key(app_id: str, openid: str) -> dict:
    return {"pk": {"S": f"ID#{app_id}#{openid}"}, "sk": {"S": "ID"}}


def union_key(unionid: str) -> dict:
    return {"pk": {"S": f"UNION#{unionid}"}, "sk": {"S": "ID"}}


def new_uid() -> str:
    return uuid.uuid4().hex


# --- identities: the hot path ------------------------------------------------------------------------


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


def _dedupe_set(create_time: int) -> int:
    return (create_time // DEDUPE_PERIOD_SECONDS) % DEDUPE_SETS


def _touch_parts(inb: Inbound, *, now: int, event: Mapping, reply: str | None) -> tuple[list, dict, dict]:
    """SET clauses, names and values shared by the update and the create paths."""
    sets = ["last_at = :now", "last_kind = :kind", "ev = :ev"]
    names: dict[str, str] = {}
    values: dict[str, Any] = {":now": now, ":kind": inb.kind, ":ev": dict(event)}
    if reply is not None:
        sets.append("last_reply = :reply")
        values[":reply"] = {"k": inb.dedupe_key, "body": reply}
    if inb.opens_message_window:
        sets += ["win_msg_at = :now", "win_msg_sent = :zero"]
        values[":zero"] = 0
    if inb.opens_short_window:
        sets += ["win_evt_at = :now", "win_evt_sent = :zero"]
        values[":zero"] = 0
    if inb.is_event and inb.event in ("subscribe", "scan"):  # only followers can scan into a SCAN event
        sets += ["following = :true", "last_scene = :scene"]
        values[":true"] = True
        values[":scene"] = inb.scene
        if inb.event == "subscribe":
            sets.append("followed_at = :now")
    elif inb.is_event and inb.event == "unsubscribe":
        sets += ["following = :false", "unfollowed_at = :now"]
        values[":false"] = False
    return sets, names, values


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
    sets, names, values = _touch_parts(inb, now=now, event=event, reply=reply)
    current = _dedupe_set(inb.create_time)
    names["#seen"] = f"dd{current}"
    typed = {placeholder: _m(value) for placeholder, value in values.items()}
    typed[":key"] = {"S": inb.dedupe_key}
    typed[":keys"] = {"SS": [inb.dedupe_key]}
    expr = "SET " + ", ".join(sets) + " ADD #seen :keys"
    clock = int(time.time())  # the set to clear is the one of the hour to come, whatever the push's age
    stale = _dedupe_set(clock // DEDUPE_PERIOD_SECONDS * DEDUPE_PERIOD_SECONDS + DEDUPE_PERIOD_SECONDS)
    if stale != current:
        names["#stale"] = f"dd{stale}"
        expr += " REMOVE #stale"
    condition = "attribute_exists(uid) AND NOT contains(#seen, :key)"
    if replay:
        condition += " AND (attribute_not_exists(last_at) OR last_at <= :now)"
    try:
        out = ddb().update_item(
            TableName=table_name(),
            Key=identity_key(app_id, inb.openid),
            UpdateExpression=expr,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=typed,
            ReturnValues="ALL_NEW" if want_uid else "NONE",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if not is_conditional_failure(exc):
            raise RepositoryError(str(exc)) from exc
        old = unmarshal(exc.response.get("Item"))
        if not old or "uid" not in old:
            return Touch("unknown")
        if replay and inb.dedupe_key not in (old.get(f"dd{current}") or ()):
            return _record_push_only(app_id, inb, event, current, old)
        last = old.get("last_reply") or {}
        stored = (last.get("body") or None) if last.get("k") == inb.dedupe_key else None  # "": being rendered
        return Touch("duplicate", uid=old["uid"], identity=old, stored_reply=stored)
    except Exception as exc:  # timeouts, connection errors
        raise RepositoryError(repr(exc)) from exc
    if not want_uid:
        return Touch("recorded")
    item = unmarshal(out["Attributes"]) or {}
    return Touch("recorded", uid=item["uid"], identity=item)


def _record_push_only(app_id: str, inb: Inbound, event: Mapping, current: int, old: Mapping) -> Touch:
    """A late push on an identity that has seen a newer one: keep its key and event, not its state."""
    written = _conditional_update(
        Key=identity_key(app_id, inb.openid),
        UpdateExpression="SET ev = :ev ADD #seen :keys",
        ConditionExpression="attribute_exists(uid) AND NOT contains(#seen, :key)",
        ExpressionAttributeNames={"#seen": f"dd{current}"},
        ExpressionAttributeValues={":ev": _m(dict(event)), ":key": {"S": inb.dedupe_key},
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
    sets, _, values = _touch_parts(inb, now=now, event=event, reply=reply)
    identity: dict[str, Any] = {
        "uid": uid, "app_id": app_id, "openid": inb.openid, "created_at": now,
        f"dd{_dedupe_set(inb.create_time)}": {inb.dedupe_key},
    }
    for clause in sets:  # the same fields the update path sets
        attr, _, placeholder = clause.partition(" = ")
        identity[attr] = values[placeholder]
    person = {
        "uid": uid, "created_at": now, "first_touch": dict(first_touch), "openids": {app_id: inb.openid},
        "points": 0,
    }
    try:
        ddb().transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table_name(), "Item": {**person_key(uid), **marshal(person)},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": table_name(), "Item": {**identity_key(app_id, inb.openid), **marshal(identity)},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
            ]
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
            reasons = exc.response.get("CancellationReasons") or []
            if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
                retry = touch_identity(app_id, inb, now=now, event=event, reply=reply, want_uid=True)
                if retry.status != "unknown":
                    return retry
        raise RepositoryError(str(exc)) from exc
    except Exception as exc:
        raise RepositoryError(repr(exc)) from exc
    return Touch("recorded", uid=uid, identity=identity)


def store_reply(app_id: str, openid: str, dedupe_key: str, reply: str | None, *,
                outbox: Mapping | None = None) -> bool:
    """Keep a reply computed after the touch (one needing the person's data) for WeChat's retries, unless a
    newer push's reply is kept already (then nothing is written: False). ``outbox``: an event (``journey:
    False``) whose jobs the table's stream queues, left on the identity by the same write."""
    sets, values = [], {":k": dedupe_key}
    if reply is not None:
        sets.append("last_reply = :r")
        values[":r"] = {"k": dedupe_key, "body": reply}
    if outbox is not None:
        sets.append("ev = :ev")
        values[":ev"] = dict(outbox)
    if not sets:
        return True
    return _conditional_update(
        Key=identity_key(app_id, openid),
        UpdateExpression="SET " + ", ".join(sets),
        # the touch of this push stored last_reply with its key (an empty body: being rendered)
        ConditionExpression="attribute_exists(uid) AND (attribute_not_exists(last_reply) OR last_reply.k = :k)",
        ExpressionAttributeValues=marshal(values),
    ) is not None


def leave_outbox(app_id: str, openid: str, outbox: Mapping) -> bool:
    """Leave an outbox event (``journey: False``: jobs for the table's stream to queue) on an identity;
    False when there is no such identity."""
    return _conditional_update(
        Key=identity_key(app_id, openid),
        UpdateExpression="SET ev = :ev",
        ConditionExpression="attribute_exists(uid)",
        ExpressionAttributeValues={":ev": _m(dict(outbox))},
    ) is not None


def get_identity(app_id: str, openid: str) -> dict | None:
    out = ddb().get_item(TableName=table_name(), Key=identity_key(app_id, openid), ConsistentRead=True)
    return unmarshal(out.get("Item"))


def spend_cs_window(app_id: str, openid: str, window: str, opened_at: int, cap: int) -> bool:
    """Take one message of the customer-service window ``window`` (``msg``/``evt``) opened at ``opened_at``;
    False when it has been reopened since, or is used up (a concurrent send took the last one)."""
    out = _conditional_update(
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
        _conditional_update(
            Key=identity_key(app_id, openid),
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames={"#at": f"win_{window}_at", "#sent": f"win_{window}_sent"},
            ExpressionAttributeValues=marshal({":opened": int(opened_at), ":n": int(n)}),
        )
    except Exception:  # noqa: S110 - see the docstring
        pass


def get_person(uid: str) -> dict | None:
    out = ddb().get_item(TableName=table_name(), Key=person_key(uid), ConsistentRead=True)
    return unmarshal(out.get("Item"))


# --- journey events ----------------------------------------------------------------------------------


def put_journey_event(uid: str, event: Mapping[str, Any], *, ttl: int) -> bool:
    """Record a journey event once (keyed by its time and id); False when it was already there."""
    item = {"pk": f"USER#{uid}", "sk": f"EV#{event['at_iso']}#{event['id']}", "ttl": ttl, **event}
    try:
        ddb().put_item(
            TableName=table_name(), Item=marshal(item), ConditionExpression="attribute_not_exists(pk)"
        )
    except ClientError as exc:
        if is_conditional_failure(exc):
            return False
        raise
    return True


def journey(uid: str, *, limit: int = 100) -> list[dict]:
    """A person's journey events, newest first."""
    out = ddb().query(
        TableName=table_name(),
        KeyConditionExpression="pk = :pk AND begins_with(sk, :ev)",
        ExpressionAttributeValues=marshal({":pk": f"USER#{uid}", ":ev": "EV#"}),
        ScanIndexForward=False,
        Limit=limit,
    )
    return [unmarshal(i) for i in out.get("Items", [])]


# --- tokens ------------------------------------------------------------------------------------------
# One item per app, ``TOKEN#{app_id}``/``TOKEN``: access_token, expires_at (epoch s), version, fetched_at,
# and while someone is fetching: lease_owner, lease_until. See ``wxloop.adapters.wechat`` for the protocol.


def token_key(app_id: str) -> dict:
    return {"pk": {"S": f"TOKEN#{app_id}"}, "sk": {"S": "TOKEN"}}


def _conditional_update(**kwargs: Any) -> dict | None:
    """UpdateItem that returns None when its condition fails; other failures raise ``RepositoryError``."""
    try:
        return ddb().update_item(TableName=table_name(), **kwargs)
    except ClientError as exc:
        if is_conditional_failure(exc):
            return None
        raise RepositoryError(str(exc)) from exc
    except Exception as exc:  # timeouts, connection errors
        raise RepositoryError(repr(exc)) from exc


def get_token(app_id: str) -> dict | None:
    """The token item (strongly consistent read), or None."""
    try:
        out = ddb().get_item(TableName=table_name(), Key=token_key(app_id), ConsistentRead=True)
    except Exception as exc:
        raise RepositoryError(repr(exc)) from exc
    return unmarshal(out.get("Item"))


def lease_token(app_id: str, owner: str, *, now: int, lease_seconds: int, due_before: int) -> bool:
    """Take the right to fetch a new token; True for exactly one caller at a time.

    Granted only when no unexpired lease exists AND the stored token is missing or expires before
    ``due_before`` (so a caller that read a stale item does not fetch again right after another stored).
    """
    out = _conditional_update(
        Key=token_key(app_id),
        UpdateExpression="SET lease_owner = :owner, lease_until = :until",
        ConditionExpression="(attribute_not_exists(lease_until) OR lease_until < :now) AND "
        "(attribute_not_exists(expires_at) OR expires_at < :due)",
        ExpressionAttributeValues=marshal(
            {":owner": owner, ":until": now + lease_seconds, ":now": now, ":due": due_before}
        ),
    )
    return out is not None


def store_token(app_id: str, token: str, *, expires_at: int, owner: str, now: int) -> int | None:
    """Store a fetched token and drop the lease; returns the new version, or None when another instance
    holds the lease now (ours ran out) and will store its own."""
    out = _conditional_update(
        Key=token_key(app_id),
        UpdateExpression="SET access_token = :t, expires_at = :exp, fetched_at = :now, "
        "version = if_not_exists(version, :zero) + :one REMOVE lease_owner, lease_until",
        ConditionExpression="attribute_not_exists(lease_owner) OR lease_owner = :owner",
        ExpressionAttributeValues=marshal(
            {":t": token, ":exp": expires_at, ":now": now, ":zero": 0, ":one": 1, ":owner": owner}
        ),
        ReturnValues="UPDATED_NEW",
    )
    return None if out is None else int(unmarshal(out["Attributes"])["version"])


def release_token_lease(app_id: str, owner: str) -> None:
    """Give the lease back after a failed fetch, so a waiting instance can try at once."""
    _conditional_update(
        Key=token_key(app_id),
        UpdateExpression="REMOVE lease_owner, lease_until",
        ConditionExpression="lease_owner = :owner",
        ExpressionAttributeValues=marshal({":owner": owner}),
    )


def expire_token(app_id: str, token: str, *, now: int) -> bool:
    """Compare-and-expire: mark the stored token expired only if it is still ``token`` (the one WeChat just
    rejected). False when a newer token is already stored: a stale failure never expires a fresh token."""
    out = _conditional_update(
        Key=token_key(app_id),
        UpdateExpression="SET expires_at = :zero, expired_at = :now",
        ConditionExpression="access_token = :t",
        ExpressionAttributeValues=marshal({":zero": 0, ":now": now, ":t": token}),
    )
    return out is not None


# --- channels and jobs -------------------------------------------------------------------------------


def mark_channel_closed(app_id: str, openid: str, channel: str, code: int, now: int) -> bool:
    """Note on the identity that ``channel`` (``cs``, ``subscribe:{template_id}``…) refused with errcode
    ``code``: sets ``closed.{channel} = {code, at}``. False when the identity does not exist."""
    key = identity_key(app_id, openid)
    entry = {"code": int(code), "at": int(now)}
    nested = _conditional_update(
        Key=key,
        UpdateExpression="SET #closed.#ch = :entry",
        ConditionExpression="attribute_exists(pk) AND attribute_exists(#closed)",
        ExpressionAttributeNames={"#closed": "closed", "#ch": channel},
        ExpressionAttributeValues=marshal({":entry": entry}),
    )
    if nested is not None:
        return True
    whole = _conditional_update(  # first closed channel: the map does not exist yet
        Key=key,
        UpdateExpression="SET #closed = :map",
        ConditionExpression="attribute_exists(pk) AND attribute_not_exists(#closed)",
        ExpressionAttributeNames={"#closed": "closed"},
        ExpressionAttributeValues=marshal({":map": {channel: entry}}),
    )
    if whole is not None:
        return True
    # Lost a race with another writer creating the map, or no identity: one more nested try decides.
    return _conditional_update(
        Key=key,
        UpdateExpression="SET #closed.#ch = :entry",
        ConditionExpression="attribute_exists(pk) AND attribute_exists(#closed)",
        ExpressionAttributeNames={"#closed": "closed", "#ch": channel},
        ExpressionAttributeValues=marshal({":entry": entry}),
    ) is not None


def subscribe_credit_key(app_id: str, openid: str, template_id: str) -> dict:
    return {"pk": {"S": f"ID#{app_id}#{openid}"}, "sk": {"S": f"SUB#{template_id}"}}


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
        "Item": marshal({"pk": f"ID#{app_id}#{openid}", "sk": f"SUBEV#{event_id}", "at": int(now), "ttl": int(ttl)}),
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
        ddb().transact_write_items(TransactItems=items)
    except ClientError as exc:
        reasons = exc.response.get("CancellationReasons") or [{}]
        if reasons[0].get("Code") == "ConditionalCheckFailed":
            return False  # the marker exists: this event was applied before
        raise RepositoryError(str(exc)) from exc
    except Exception as exc:
        raise RepositoryError(repr(exc)) from exc
    return True


def spend_subscribe_credit(app_id: str, openid: str, template_id: str) -> tuple[str, int]:
    """Take one subscribe-message credit (``SUB#{template_id}``, attribute ``remaining``) before a send.

    Returns (``spent``, the item's ``gen`` for ``refund_subscribe_credit``), (``none_left``, 0) when the
    counter exists at 0, or (``no_counter``, 0) when no counter is kept for this person and template.
    """
    try:
        out = ddb().update_item(
            TableName=table_name(),
            Key=subscribe_credit_key(app_id, openid, template_id),
            UpdateExpression="SET remaining = remaining - :one",
            ConditionExpression="attribute_exists(pk) AND remaining > :zero",
            ExpressionAttributeValues=marshal({":one": 1, ":zero": 0}),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if is_conditional_failure(exc):
            return ("none_left" if exc.response.get("Item") else "no_counter"), 0
        raise RepositoryError(str(exc)) from exc
    except Exception as exc:
        raise RepositoryError(repr(exc)) from exc
    return "spent", int((unmarshal(out.get("Attributes")) or {}).get("gen") or 0)


def refund_subscribe_credit(app_id: str, openid: str, template_id: str, gen: int) -> bool:
    """Give back a credit taken by ``spend_subscribe_credit`` whose send failed, unless the counter was
    reset since (``gen`` changed: a refusal or 43101 set it to 0). Best effort: False when not refunded."""
    if gen:
        condition, values = "gen = :gen", {":one": 1, ":gen": int(gen)}
    else:
        condition, values = "attribute_exists(pk) AND attribute_not_exists(gen)", {":one": 1}
    try:
        return _conditional_update(
            Key=subscribe_credit_key(app_id, openid, template_id),
            UpdateExpression="SET remaining = remaining + :one",
            ConditionExpression=condition,
            ExpressionAttributeValues=marshal(values),
        ) is not None
    except Exception:  # the person then has one credit less than WeChat thinks: a later send finds out
        return False


def zero_subscribe_credit(app_id: str, openid: str, template_id: str, now: int) -> bool:
    """WeChat says there is no credit (43101): set an existing counter to 0 (``gen`` + 1). False when no
    counter is kept (none is created: without one, sends go ahead and WeChat decides)."""
    return _conditional_update(
        Key=subscribe_credit_key(app_id, openid, template_id),
        UpdateExpression="SET remaining = :zero, updated_at = :now ADD gen :one",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeValues=marshal({":zero": 0, ":now": int(now), ":one": 1}),
    ) is not None


def job_key(job_id: str) -> dict:
    return {"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}


def claim_job(job_id: str, ttl: int, *, now: int | None = None, lease_seconds: int = 300) -> bool:
    """Claim a job so that it runs at most once in effect; False when it is done or running elsewhere.

    The claim is a lease: a worker that dies mid-job (timeout, crash) leaves a claim that expires after
    ``lease_seconds``, so SQS's redelivery can run it. ``ttl`` is the epoch at which the item is dropped.
    """
    now = int(time.time()) if now is None else int(now)
    out = _conditional_update(
        Key=job_key(job_id),
        UpdateExpression="SET #state = :running, claimed_at = :now, lease_until = :until, #ttl = :ttl "
        "ADD attempts :one",
        ConditionExpression="attribute_not_exists(pk) OR (#state <> :done AND lease_until < :now)",
        ExpressionAttributeNames={"#state": "state", "#ttl": "ttl"},
        ExpressionAttributeValues=marshal(
            {":running": "running", ":done": "done", ":now": now, ":until": now + lease_seconds, ":ttl": ttl,
             ":one": 1}
        ),
    )
    return out is not None


def release_job(job_id: str) -> None:
    """Give a claim back (the job failed in a retryable way, or was re-queued): the next delivery may run."""
    _conditional_update(
        Key=job_key(job_id),
        UpdateExpression="SET lease_until = :zero",
        ConditionExpression="attribute_exists(pk) AND #state <> :done",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues=marshal({":zero": 0, ":done": "done"}),
    )


def finish_job(job_id: str, outcome: str, *, now: int | None = None) -> None:
    """Mark a claimed job done with its outcome (``ok``, ``closed:45015``, ``failed:40003``…)."""
    _conditional_update(
        Key=job_key(job_id),
        UpdateExpression="SET #state = :done, outcome = :outcome, finished_at = :now",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues=marshal(
            {":done": "done", ":outcome": outcome, ":now": int(time.time()) if now is None else int(now)}
        ),
    )


def get_job(job_id: str) -> dict | None:
    out = ddb().get_item(TableName=table_name(), Key=job_key(job_id), ConsistentRead=True)
    return unmarshal(out.get("Item"))


# --- daily API quotas (45009) ------------------------------------------------------------------------


def quota_key(app_id: str, api: str) -> dict:
    return {"pk": {"S": f"QUOTA#{app_id}"}, "sk": {"S": f"API#{api}"}}


def block_quota(app_id: str, api: str, until: int) -> None:
    """WeChat said 45009 (daily quota of ``api`` used up): no call to it for ``app_id`` before ``until``."""
    ddb().update_item(
        TableName=table_name(),
        Key=quota_key(app_id, api),
        UpdateExpression="SET #until = :until, #ttl = :ttl",
        ExpressionAttributeNames={"#until": "until", "#ttl": "ttl"},
        ExpressionAttributeValues=marshal({":until": int(until), ":ttl": int(until) + 86400}),
    )


def quota_blocked_until(app_id: str, api: str) -> int:
    """Until when ``api`` of ``app_id`` is out of daily quota (0: not blocked, or no longer known)."""
    out = ddb().get_item(TableName=table_name(), Key=quota_key(app_id, api), ProjectionExpression="#u",
                         ExpressionAttributeNames={"#u": "until"})
    return int((unmarshal(out.get("Item")) or {}).get("until") or 0)


class IdentityNotFound(RepositoryError):
    """The (app_id, openid) identity does not exist (yet): the caller may retry later."""


def _cancelled_on_condition(exc: ClientError) -> bool:
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    reasons = exc.response.get("CancellationReasons") or []
    return any(r.get("Code") in ("ConditionalCheckFailed", "TransactionConflict") for r in reasons)


def link_unionid(app_id: str, openid: str, unionid: str, now: int) -> str:
    """Attach ``unionid`` to the person behind (app_id, openid); returns the uid the identity resolves to.

    The union item ``UNION#{unionid}``/``ID`` holds the owning uid. New unionid: the identity's person claims
    it. Owned by another person: that person survives, this identity (and the loser's other openids) is
    repointed to it, the survivor's ``openids`` gains them and the loser gets ``merged_into`` (rules in
    ``wxloop.domain.identity``), all in one transaction. Idempotent: a repeat finds ``same``. Raises
    ``IdentityNotFound`` when the identity does not exist, ``RepositoryError`` when DynamoDB fails.
    """
    from wxloop.domain.identity import decide_link, plan_merge

    table = table_name()
    for _ in range(4):  # each lost race re-reads and decides again
        identity = get_identity(app_id, openid)
        if not identity or not identity.get("uid"):
            raise IdentityNotFound(f"no identity for this openid of {app_id}")  # openids stay out of logs
        uid = identity["uid"]
        union = unmarshal(
            ddb().get_item(TableName=table, Key=union_key(unionid), ConsistentRead=True).get("Item")
        )
        decision = decide_link(uid, union.get("uid") if union else None)
        if decision.action == "same":
            return uid
        if decision.action == "claim":
            items = [
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
            survivor = uid
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
            ddb().transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _cancelled_on_condition(exc):
                continue
            raise RepositoryError(str(exc)) from exc
        except Exception as exc:
            raise RepositoryError(repr(exc)) from exc
        return survivor
    raise RepositoryError(f"unionid link for an openid of {app_id} kept losing races")


def _merge_items(table: str, plan, now: int, *, survivor_has_openids: bool) -> list[dict]:
    """TransactWriteItems for a ``MergePlan`` (at most ~12 identities per person in practice)."""
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
    survivor_update: dict[str, Any] = {
        "TableName": table, "Key": person_key(plan.survivor), "UpdateExpression": "SET " + ", ".join(sets),
        "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(merged_into)",
        "ExpressionAttributeValues": marshal(values),
    }
    if names:
        survivor_update["ExpressionAttributeNames"] = names
    items: list[dict] = [
        {"ConditionCheck": {"TableName": table, "Key": union_key(plan.unionid), "ConditionExpression": "uid = :s",
                            "ExpressionAttributeValues": marshal({":s": plan.survivor})}},
        {"Update": survivor_update},
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


# --- rule sets ---
# Items under pk RULES#{app_id}: one per version (sk v#{version}) and a CURRENT pointer that also carries a
# copy of the document, so the cache loads the live set in one read. The document is stored as a JSON string
# (zlib-compressed binary when large) to stay clear of DynamoDB's nesting limits and of the 400 KB item cap.

RULES_DOC_INLINE_MAX = 200_000  # bytes of JSON kept as a plain string; larger documents are compressed
RULES_DOC_MAX = 350_000  # bytes stored per item (each item holds one copy; DynamoDB's cap is 400 KB)


class RuleVersionConflict(RepositoryError):
    """That version was already stored with different content (push it under a new version)."""


def _rules_key(app_id: str, sk: str) -> dict:
    return {"pk": {"S": f"RULES#{app_id}"}, "sk": {"S": sk}}


def _rules_body(doc: Mapping) -> tuple[dict, str]:
    import hashlib
    import json
    import zlib

    raw = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
    sha = hashlib.sha256(raw).hexdigest()
    if len(raw) <= RULES_DOC_INLINE_MAX:
        return {"doc": raw.decode("utf-8")}, sha
    packed = zlib.compress(raw, 9)
    if len(packed) > RULES_DOC_MAX:
        raise RepositoryError(f"rule set too large to store ({len(packed)} bytes compressed)")
    return {"doc_z": packed}, sha


def _rules_doc(item: Mapping) -> dict:
    import json

    from wxloop.domain.rules.stored import inflate_rules_doc

    if "doc_z" in item:
        return json.loads(inflate_rules_doc(bytes(item["doc_z"])).decode("utf-8"))
    return json.loads(item["doc"])


def put_rule_set(app_id: str, doc: dict, version: str) -> None:
    """Store ``doc`` as rule-set ``version`` of ``app_id`` and make it current, in one transaction.

    Pushing the same version with the same content again is a no-op that re-points CURRENT at it; the same
    version with different content raises ``RuleVersionConflict`` and changes nothing.
    """
    body, sha = _rules_body(doc)
    now = int(time.time())
    version_item = {"version": version, "sha": sha, "stored_at": now, **body}
    current_item = {"version": version, "sha": sha, "updated_at": now, **body}
    try:
        ddb().transact_write_items(
            TransactItems=[
                {"Put": {
                    "TableName": table_name(),
                    "Item": {**_rules_key(app_id, f"v#{version}"), **marshal(version_item)},
                    "ConditionExpression": "attribute_not_exists(pk) OR #sha = :sha",
                    "ExpressionAttributeNames": {"#sha": "sha"},
                    "ExpressionAttributeValues": marshal({":sha": sha}),
                }},
                {"Put": {
                    "TableName": table_name(),
                    "Item": {**_rules_key(app_id, "CURRENT"), **marshal(current_item)},
                }},
            ]
        )
    except ClientError as exc:
        reasons = exc.response.get("CancellationReasons") or []
        if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
            raise RuleVersionConflict(
                f"rule set version {version!r} of {app_id} already exists with different content"
            ) from exc
        raise RepositoryError(str(exc)) from exc


def get_rule_set(app_id: str, version: str | None = None) -> tuple[str, dict] | None:
    """``(version, doc)`` of the given version, or of the current one when ``version`` is None."""
    sk = "CURRENT" if version is None else f"v#{version}"
    out = ddb().get_item(TableName=table_name(), Key=_rules_key(app_id, sk), ConsistentRead=True)
    item = unmarshal(out.get("Item"))
    if not item:
        return None
    return item["version"], _rules_doc(item)


def current_rule_version(app_id: str) -> str | None:
    """The current rule-set version of ``app_id`` (a small eventually consistent read), or None."""
    out = ddb().get_item(
        TableName=table_name(),
        Key=_rules_key(app_id, "CURRENT"),
        ProjectionExpression="#v",
        ExpressionAttributeNames={"#v": "version"},
    )
    item = unmarshal(out.get("Item"))
    return item.get("version") if item else None
