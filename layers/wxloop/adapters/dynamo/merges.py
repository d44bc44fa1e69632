"""The merge of two people found to be one human, in ONE ``TransactWriteItems`` (the rules of what moves and
how values combine are in ``wxloop.domain.identity``; this module only turns a ``MergePlan`` into writes).

The transaction, every part conditional so that it lands whole or not at all:

- the union item names the survivor (checked, or moved there when it still named a merged person);
- the survivor: ``unionid``, the loser's openids, the combined attributes, ``ADD points`` (commutative, so a
  reward written meanwhile is kept), ``ADD topics_seen``, the phone re-sealed for its uid; it must be live
  and every attribute the plan computed from must still hold the value read (``survivor_guard``);
- the loser: ``merged_into``/``merged_at``, its balance set to 0 and its phone removed (a merged person's
  husk keeps no PII), under the same kind of guard: a write to the loser after the read fails the merge,
  which reads again, so nothing written meanwhile is lost;
- each identity re-pointed (condition: it still names the person read); the triggering identity also
  carries the ``person.merged`` journey event for the stream, with the ``tag_topics`` jobs that mirror the
  combined topics onto the OA (an outbox: the stream queues them);
- the merge log ``USER#{survivor}``/``MERGE#{loser}`` and, when points move, a ledger entry on each side
  (``LEDGER#merge-in#{loser}`` / ``LEDGER#merge-out#{survivor}``): each ledger still sums to its balance;
- consent records the survivor takes (``CONSENT#{purpose}``), each conditional on the records read.

A transaction holds at most ``MAX_TRANSACTION_ITEMS`` (DynamoDB's limit, 100). A real person has one
identity per app (an OA and up to 10 linked MPs), a few consent purposes and two ledger entries: about 20
items. A merge that would need more raises ``MergeTooLarge`` and writes nothing: the job fails (after its
retries it rests in the DLQ) and the two people stay apart until an operator splits the work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wxloop.adapters.dynamo.codec import RepositoryError, call, marshal, table_name, unmarshal
from wxloop.adapters.dynamo.identities import get_identity
from wxloop.adapters.dynamo.keys import identity_key, person_key, union_key
from wxloop.domain.identity import MergePlan, merge_event, tag_sync_jobs
from wxloop.domain.phone import sealed_phone_aad

MAX_TRANSACTION_ITEMS = 100
CONSENT_PREFIX = "CONSENT#"


class MergeTooLarge(RepositoryError):
    """The merge needs more writes than one transaction takes: nothing was written."""


def consent_of(uid: str) -> dict[str, dict]:
    """The person's consent records (``USER#{uid}``/``CONSENT#{purpose}``) by purpose."""
    out: dict[str, dict] = {}
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :c)", "ConsistentRead": True,
        "ExpressionAttributeValues": marshal({":pk": f"USER#{uid}", ":c": CONSENT_PREFIX})}
    while True:
        page = call("query", **kwargs)
        for raw in page.get("Items") or ():
            item = unmarshal(raw) or {}
            out[str(item["sk"])[len(CONSENT_PREFIX):]] = item
        if not page.get("LastEvaluatedKey"):
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class _Expr:
    """Names and values of one update or condition expression, numbered so they never clash."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attr: str) -> str:
        ref = f"#n{len(self.names)}"
        self.names[ref] = attr
        return ref

    def value(self, value: Any) -> str:
        ref = f":v{len(self.values)}"
        self.values[ref] = value
        return ref

    def guards(self, guard: Mapping[str, Any]) -> list[str]:
        """One clause per attribute: still the value read (compared whole, maps and sets included)."""
        return [f"attribute_not_exists({self.name(a)})" if v is None else f"{self.name(a)} = {self.value(v)}"
                for a, v in guard.items()]

    def update(self, key: dict, expression: str, condition: str) -> dict:
        out = {"TableName": table_name(), "Key": key, "UpdateExpression": expression,
               "ConditionExpression": condition, "ExpressionAttributeValues": marshal(self.values)}
        if self.names:
            out["ExpressionAttributeNames"] = self.names
        return {"Update": out}


def _survivor_update(plan: MergePlan, survivor: Mapping, phone: Any) -> dict:
    e = _Expr()
    sets = [f"unionid = {e.value(plan.unionid)}"]
    if plan.openids and isinstance(survivor.get("openids"), Mapping):
        sets += [f"openids.{e.name(app)} = {e.value(oid)}" for app, oid in sorted(plan.openids.items())]
    elif plan.openids:
        sets.append(f"openids = {e.value(dict(plan.openids))}")
    changes = dict(plan.sets)
    if plan.first_touch is not None:
        changes["first_touch"] = dict(plan.first_touch)
    if phone is not None:
        changes["phone"] = phone
    sets += [f"{e.name(attr)} = {e.value(value)}" for attr, value in sorted(changes.items())]
    adds = []
    if plan.points:
        adds.append(f"points {e.value(plan.points)}")
    if plan.topics_seen:
        adds.append(f"topics_seen {e.value(set(plan.topics_seen))}")
    expression = "SET " + ", ".join(sets) + (" ADD " + ", ".join(adds) if adds else "")
    condition = " AND ".join(["attribute_exists(pk)", "attribute_not_exists(merged_into)",
                              *e.guards(plan.survivor_guard)])
    return e.update(person_key(plan.survivor), expression, condition)


def _loser_update(plan: MergePlan, now: int) -> dict:
    e = _Expr()
    sets = [f"merged_into = {e.value(plan.survivor)}", f"merged_at = {e.value(now)}"]
    if plan.points:
        sets.append(f"points = {e.value(0)}")
    expression = "SET " + ", ".join(sets) + " REMOVE phone, phone_masked, phone_at"
    condition = " AND ".join(["attribute_exists(pk)", "attribute_not_exists(merged_into)",
                              *e.guards(plan.loser_guard)])
    return e.update(person_key(plan.loser), expression, condition)


def _union_item(plan: MergePlan, union_uid: str) -> dict:
    """The union must name the survivor; one that still names a merged person is moved to it."""
    if union_uid == plan.survivor:
        return {"ConditionCheck": {"TableName": table_name(), "Key": union_key(plan.unionid),
                                   "ConditionExpression": "uid = :s",
                                   "ExpressionAttributeValues": marshal({":s": plan.survivor})}}
    e = _Expr()
    return e.update(union_key(plan.unionid), f"SET uid = {e.value(plan.survivor)}", f"uid = {e.value(union_uid)}")


def _identity_items(plan: MergePlan, trigger_uid: str, event: Mapping) -> list[dict]:
    items = []
    for i, (app, oid) in enumerate(plan.repoint):
        e = _Expr()
        expression = f"SET uid = {e.value(plan.survivor)}, unionid = {e.value(plan.unionid)}"
        if i == 0:  # the identity that revealed the unionid carries the merge's journey event
            expression += f", ev = {e.value(dict(event))}"
            condition = f"uid = {e.value(trigger_uid)}"
        elif (get_identity(app, oid) or {}).get("uid") != plan.loser:
            continue  # an openid listed on the loser whose identity is gone or already elsewhere
        else:
            condition = f"uid = {e.value(plan.loser)}"
        items.append(e.update(identity_key(app, oid), expression, condition))
    return items


def _put(pk: str, sk: str, item: Mapping, condition: str = "attribute_not_exists(pk)",
         values: Mapping | None = None, names: Mapping | None = None) -> dict:
    put: dict[str, Any] = {"TableName": table_name(), "Item": marshal({**item, "pk": pk, "sk": sk}),
                           "ConditionExpression": condition}
    if values:
        put["ExpressionAttributeValues"] = marshal(values)
    if names:
        put["ExpressionAttributeNames"] = dict(names)
    return {"Put": put}


def _ledger_items(plan: MergePlan, now: int) -> list[dict]:
    """The balance move, written on both ledgers (entry ids fixed per merge: a repeat cannot write twice)."""
    if not plan.points:
        return []
    s, gone, p = plan.survivor, plan.loser, plan.points
    return [
        _put(f"USER#{s}", f"LEDGER#merge-in#{gone}", {"entry_id": f"merge-in#{gone}", "uid": s, "points": p,
                                                         "reason": "merge", "from": gone, "at": now}),
        _put(f"USER#{gone}", f"LEDGER#merge-out#{s}", {"entry_id": f"merge-out#{s}", "uid": gone, "points": -p,
                                                          "reason": "merge", "to": s, "at": now}),
    ]


def _consent_items(plan: MergePlan, survivor_consent: Mapping, loser_consent: Mapping) -> list[dict]:
    """The survivor's new consent records, each written only if the survivor's record (and the loser's it
    comes from) is still the one read; the loser's records stay as they are."""
    items = []
    for purpose, record in sorted(plan.consent.items()):
        sk = f"{CONSENT_PREFIX}{purpose}"
        kept = {k: v for k, v in record.items() if k not in ("pk", "sk")}
        mine = survivor_consent.get(purpose)
        if mine is None:
            items.append(_put(f"USER#{plan.survivor}", sk, {**kept, "merged_from": plan.loser}))
        else:
            items.append(_put(f"USER#{plan.survivor}", sk, {**kept, "merged_from": plan.loser},
                              "#st = :st AND #at = :at", {":st": mine.get("state"), ":at": mine.get("at")},
                              {"#st": "state", "#at": "at"}))
        theirs = loser_consent.get(purpose) or {}
        items.append({"ConditionCheck": {
            "TableName": table_name(), "Key": {"pk": {"S": f"USER#{plan.loser}"}, "sk": {"S": sk}},
            "ConditionExpression": "#st = :st AND #at = :at", "ExpressionAttributeNames": {"#st": "state", "#at": "at"},
            "ExpressionAttributeValues": marshal({":st": theirs.get("state"), ":at": theirs.get("at")})}})
    return items


def _kinds(app_id: str) -> tuple[str, frozenset[str]]:
    """The platform of ``app_id`` (``oa`` when unknown) and the configured OAs."""
    from wxloop.config import load_config

    accounts = load_config().accounts
    account = accounts.get(app_id)
    return (account.kind if account is not None else "oa",
            frozenset(a for a, acct in accounts.items() if acct.kind == "oa"))


def _resealed_phone(plan: MergePlan, loser: Mapping) -> Any:
    """The loser's phone sealed for the survivor (the ciphertext is bound to its person); None when it no
    longer opens (sealed with a retired key): it is then dropped, never moved unreadable."""
    if not plan.phone_from_loser:
        return None
    from wxloop.adapters import mp_store
    from wxloop.config import load_config

    keys = tuple(k.get_secret_value().encode("utf-8") for k in load_config().session_keys)
    plain = mp_store.unseal(loser.get("phone"), sealed_phone_aad(plan.loser), keys) if keys else None
    return None if plain is None else mp_store.seal(plain, sealed_phone_aad(plan.survivor), keys)


def merge_items(plan: MergePlan, survivor: Mapping, loser: Mapping, *, trigger_uid: str, union_uid: str,
                app_id: str, now: int, survivor_consent: Mapping | None = None,
                loser_consent: Mapping | None = None) -> list[dict]:
    """The TransactWriteItems of ``plan`` (see the module docstring). ``trigger_uid``: the triggering
    identity's uid as read; ``union_uid``: the union item's uid as read. Raises ``MergeTooLarge``."""
    phone = _resealed_phone(plan, loser)
    if plan.phone_from_loser and phone is None:
        plan = _without_phone(plan)
    platform, oa_apps = _kinds(app_id)
    event = merge_event(plan, app_id=app_id, platform=platform, now=now,
                        jobs=tag_sync_jobs(plan, survivor, oa_apps))
    items = [_union_item(plan, union_uid), _survivor_update(plan, survivor, phone), _loser_update(plan, now),
             *_identity_items(plan, trigger_uid, event),
             _put(f"USER#{plan.survivor}", f"MERGE#{plan.loser}", {
                 "uid": plan.survivor, "merged": plan.loser, "at": now, "why": "unionid", "unionid": plan.unionid,
                 "app_id": app_id, "moved": plan.summary()}),
             *_ledger_items(plan, now), *_consent_items(plan, survivor_consent or {}, loser_consent or {})]
    if len(items) > MAX_TRANSACTION_ITEMS:
        raise MergeTooLarge(f"merge {plan.loser} -> {plan.survivor} needs {len(items)} writes")
    return items


def _without_phone(plan: MergePlan) -> MergePlan:
    from dataclasses import replace

    sets = {k: v for k, v in plan.sets.items() if k not in ("phone_masked", "phone_at")}
    guard = {k: v for k, v in plan.survivor_guard.items() if k not in ("phone", "phone_masked", "phone_at")}
    return replace(plan, sets=sets, phone_from_loser=False, survivor_guard=guard)
