"""DynamoDB storage of the Mini Program client API (keys and conditional writes; no business rules).

Everything a signed-in request needs sits on the person item ``USER#{uid}``/``PROFILE``, so one
``UpdateItem`` both counts the request against the person's rate limit and returns the whole person:

| attribute | holds |
|---|---|
| ``mpsk_{mp}`` | the MP's latest ``session_key``, sealed (AES-GCM, see ``seal``) |
| ``mpscene_{mp}`` | the scene of the last cold start (hot starts keep it) |
| ``fol_{oa}`` | ``{f: following, at}``: the OA follow state, mirrored from the OA identity by the stream |
| ``fps_{oa}`` / ``fpd_{oa}`` / ``fpc_{oa}`` | follow prompt last shown / dismissed / follow card queued (epoch s) |
| ``phone`` / ``phone_masked`` | the phone number sealed, and masked for display |
| ``prefs`` / ``topics_seen`` | ``{topics, v, at}`` and every topic ever chosen (to untag on the OA) |
| ``rl_{0..15}`` | request counter of the current minute: ``minute * 1000 + count`` in slot ``minute % 16`` |

Other items: the MP identity ``ID#{mp}#{openid}``/``ID`` (created through ``repository.create_identity``;
a launch leaves its journey event there for the stream), journey events ``USER#{uid}``/``EV#…`` and the OA
tag-id cache ``TAGS#{oa}``/``TAG#{name}``.

Sealed values are ``{k: key id, n: nonce, c: ciphertext}``; the AES key is HKDF-derived from each of the
config's ``session_keys`` (the first seals, any opens, so keys rotate) and the associated data binds the
value to its person and purpose, so a sealed value copied to another item does not open.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from botocore.exceptions import ClientError

from wxloop.adapters import repository
from wxloop.adapters.dynamo.codec import (
    RepositoryError,
    ddb,
    is_conditional_failure,
    marshal,
    table_name,
    unmarshal,
)
from wxloop.adapters.dynamo.codec import conditional_update as _conditional_update
from wxloop.adapters.dynamo.keys import person_key

RATE_WINDOW_SECONDS = 60
RATE_SLOTS = 16  # each request clears the other slots: a stale count is only met after 16k idle minutes
MAX_MERGE_HOPS = 3
_RATE_SLOT_NAMES = tuple(f"rl_{i}" for i in range(RATE_SLOTS))


# --- sealing (AES-GCM, cryptography) -----------------------------------------------------------------


@lru_cache(maxsize=8)
def _derived(secrets: tuple[bytes, ...]) -> tuple[tuple[str, bytes], ...]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    out = []
    for secret in secrets:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"wxloop/mp-at-rest/v1").derive(secret)
        out.append((hashlib.sha256(key).hexdigest()[:8], key))
    return tuple(out)


def seal(plain: bytes, aad: str, secrets: Sequence[bytes]) -> dict:
    """``plain`` encrypted with the key derived from ``secrets[0]``, bound to ``aad``."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    kid, key = _derived(tuple(secrets))[0]
    nonce = os.urandom(12)
    return {"k": kid, "n": nonce, "c": AESGCM(key).encrypt(nonce, plain, aad.encode("utf-8"))}


def unseal(box: Any, aad: str, secrets: Sequence[bytes]) -> bytes | None:
    """The plaintext of a sealed value, or None: absent, malformed, sealed with a key no longer configured,
    or bound to other associated data."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not isinstance(box, Mapping) or not isinstance(box.get("c"), bytes) or not isinstance(box.get("n"), bytes):
        return None
    for kid, key in _derived(tuple(secrets)):
        if kid == box.get("k"):
            try:
                return AESGCM(key).decrypt(box["n"], box["c"], aad.encode("utf-8"))
            except (InvalidTag, ValueError):
                return None
    return None


# --- the person: one request per call ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonUse:
    """``status``: ``ok`` (counted; ``item`` is the person after the write, or before it with
    ``return_old``), ``limited`` (over the rate limit: nothing written) or ``missing`` (no such person)."""

    status: str
    uid: str = ""
    item: Mapping[str, Any] = field(default_factory=dict)


def use_person(uid: str, *, now: int, limit: int, sets: Mapping[str, Any] | None = None,
               adds: Mapping[str, set] | None = None, return_old: bool = False, count: bool = True) -> PersonUse:
    """Count one request of the person against ``limit`` per minute, apply ``sets`` (attribute → value) and
    ``adds`` (attribute → strings added to a string set), in ONE conditional UpdateItem that also returns
    the person. A merged person's request lands on the survivor (``merged_into``, a few hops at most).
    ``count=False``: a further step of a request counted already (changes only; a read when there are none).
    Raises ``RepositoryError``."""
    if not count and not sets and not adds:
        from wxloop.adapters.dynamo import people

        item = people.resolve_person(uid)
        return PersonUse("ok", str(item.get("uid") or uid), item) if item else PersonUse("missing", uid)
    for _ in range(MAX_MERGE_HOPS + 1):
        out = _use_once(uid, now=now, limit=limit, sets=sets or {}, adds=adds or {}, return_old=return_old,
                        count=count)
        if isinstance(out, PersonUse):
            return out
        uid = out  # merged: follow to the survivor
    raise RepositoryError("merge chain too long")


def _rate_parts(now: int, limit: int, fresh: bool) -> tuple[str, str, dict, dict, str]:
    """Update and condition fragments of the rate counter (see the module table)."""
    minute = now // RATE_WINDOW_SECONDS
    slot = minute % RATE_SLOTS
    names = {"#rl": _RATE_SLOT_NAMES[slot]}
    names.update({f"#r{i}": n for i, n in enumerate(_RATE_SLOT_NAMES) if i != slot})
    values = {":rlbase": minute * 1000, ":rlcap": minute * 1000 + limit, ":one": 1}
    if fresh:  # the slot holds a count of an older minute: start it again
        set_clause, cond = "#rl = :rlone", "(attribute_not_exists(#rl) OR #rl < :rlbase)"
        values[":rlone"] = minute * 1000 + 1
        del values[":one"], values[":rlcap"]
    else:
        set_clause = "#rl = if_not_exists(#rl, :rlbase) + :one"
        cond = "(attribute_not_exists(#rl) OR (#rl >= :rlbase AND #rl < :rlcap))"
    remove = ", ".join(f"#r{i}" for i in range(RATE_SLOTS) if i != slot)
    return set_clause, remove, names, values, cond


def _use_once(uid: str, *, now: int, limit: int, sets: Mapping[str, Any], adds: Mapping[str, set],
              return_old: bool, count: bool = True, fresh: bool = False) -> PersonUse | str:
    if count:
        set_clause, remove, names, values, rate_cond = _rate_parts(now, limit, fresh)
    else:
        set_clause, remove, names, values, rate_cond = "", "", {}, {}, ""
    clauses = [set_clause] if set_clause else []
    for i, (attr, value) in enumerate(sets.items()):
        names[f"#s{i}"] = attr
        values[f":s{i}"] = value
        clauses.append(f"#s{i} = :s{i}")
    added = []
    for i, (attr, value) in enumerate(adds.items()):
        names[f"#a{i}"] = attr
        values[f":a{i}"] = set(value)
        added.append(f"#a{i} :a{i}")
    try:
        out = ddb().update_item(
            TableName=table_name(), Key=person_key(uid),
            UpdateExpression=(("SET " + ", ".join(clauses)) if clauses else "") + (" REMOVE " + remove if remove else "")
            + (" ADD " + ", ".join(added) if added else ""),
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(merged_into)"
            + (" AND " + rate_cond if rate_cond else ""),
            ExpressionAttributeNames=names, ExpressionAttributeValues=marshal(values),
            ReturnValues="ALL_OLD" if return_old else "ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if not is_conditional_failure(exc):
            raise RepositoryError(str(exc)) from exc
        old = unmarshal(exc.response.get("Item"))
        if not old:
            return PersonUse("missing", uid)
        if old.get("merged_into"):
            return str(old["merged_into"])
        if not count:
            return PersonUse("missing", uid)  # exists and not merged, yet the condition failed: gone meanwhile
        slot = old.get(names["#rl"])
        if isinstance(slot, int) and slot < values[":rlbase"] and not fresh:  # a stale slot: rare
            return _use_once(uid, now=now, limit=limit, sets=sets, adds=adds, return_old=return_old, fresh=True)
        return PersonUse("limited", uid)
    except Exception as exc:  # timeouts, connection errors
        raise RepositoryError(repr(exc)) from exc
    return PersonUse("ok", uid, unmarshal(out.get("Attributes")) or {})


def set_once_per(uid: str, attr: str, *, now: int, every_seconds: int) -> bool:
    """Stamp ``attr`` = ``now`` on the person unless it was stamped less than ``every_seconds`` ago; True
    when this call stamped (so exactly one caller per period goes on)."""
    return _conditional_update(
        Key=person_key(uid), UpdateExpression="SET #a = :now",
        ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(#a) OR #a <= :before)",
        ExpressionAttributeNames={"#a": attr},
        ExpressionAttributeValues=marshal({":now": int(now), ":before": int(now) - int(every_seconds)}),
    ) is not None


def mirror_follow(uid: str, oa_app_id: str, following: bool, at: int) -> bool:
    """Keep the OA follow state on the person (``fol_{oa}``) unless a newer one is there already."""
    return _conditional_update(
        Key=person_key(uid), UpdateExpression="SET #f = :v",
        ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(#f) OR #f.#at <= :at)",
        ExpressionAttributeNames={"#f": f"fol_{oa_app_id}", "#at": "at"},
        ExpressionAttributeValues=marshal({":v": {"f": bool(following), "at": int(at)}, ":at": int(at)}),
    ) is not None


# --- the MP identity ---------------------------------------------------------------------------------


def touch_mp_identity(app_id: str, openid: str, *, now: int, event: Mapping) -> dict | None:
    """A launch of a known MP user: leave ``event`` (its journey record) on the identity and return the
    identity (with ``uid``); None when the identity does not exist yet."""
    out = _conditional_update(
        Key=repository.identity_key(app_id, openid),
        UpdateExpression="SET ev = :ev, last_launch_at = :now",
        ConditionExpression="attribute_exists(uid)",
        ExpressionAttributeValues=marshal({":ev": dict(event), ":now": int(now)}),
        ReturnValues="ALL_NEW",
    )
    return None if out is None else unmarshal(out.get("Attributes"))


def create_mp_identity(app_id: str, openid: str, *, now: int, event: Mapping, first_touch: Mapping) -> str:
    """First contact of an MP user: person + identity in one transaction (``repository.create_identity``);
    returns the uid (that of a concurrent first launch when it won the race)."""
    from wxloop.domain.inbound import Inbound

    launch = Inbound(openid=openid, to_user=app_id, msg_type="event", create_time=now, event="mp_session",
                     event_key=str(event.get("id", "")))
    touch = repository.create_identity(app_id, launch, now=now, event=event, reply=None, first_touch=first_touch)
    return touch.uid or (repository.get_identity(app_id, openid) or {}).get("uid", "")


# --- journey events from the client ------------------------------------------------------------------


def put_journey_events(uid: str, events: Sequence[Mapping[str, Any]], *, ttl: int) -> None:
    """Write journey events (``id``, ``at_iso`` each) with BatchWriteItem, 25 a request; a repeat of the same
    event (same time and id) overwrites itself. Raises ``RepositoryError`` when some stay unprocessed."""
    requests = [{"PutRequest": {"Item": marshal(
        {"pk": f"USER#{uid}", "sk": f"EV#{e['at_iso']}#{e['id']}", "ttl": int(ttl), **e})}} for e in events]
    for start in range(0, len(requests), 25):
        pending = {table_name(): requests[start:start + 25]}
        for _ in range(4):
            try:
                out = ddb().batch_write_item(RequestItems=pending)
            except Exception as exc:
                raise RepositoryError(repr(exc)) from exc
            pending = out.get("UnprocessedItems") or {}
            if not pending:
                break
        if pending:
            raise RepositoryError("journey events left unprocessed")


# --- OA tag ids --------------------------------------------------------------------------------------


def tag_key(oa_app_id: str, name: str) -> dict:
    return {"pk": {"S": f"TAGS#{oa_app_id}"}, "sk": {"S": f"TAG#{name}"}}


def get_tag_id(oa_app_id: str, name: str) -> int | None:
    """The cached OA tag id of ``name``, or None."""
    try:
        out = ddb().get_item(TableName=table_name(), Key=tag_key(oa_app_id, name))
    except Exception as exc:
        raise RepositoryError(repr(exc)) from exc
    item = unmarshal(out.get("Item")) or {}
    return int(item["tag_id"]) if "tag_id" in item else None


def put_tag_id(oa_app_id: str, name: str, tag_id: int) -> None:
    """Cache the OA tag id of ``name`` (WeChat's id for a name never changes while the tag exists)."""
    try:
        ddb().put_item(TableName=table_name(), Item={**tag_key(oa_app_id, name),
                                                     **marshal({"name": name, "tag_id": int(tag_id)})})
    except Exception as exc:
        raise RepositoryError(repr(exc)) from exc
