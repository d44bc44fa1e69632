"""Points: the ledger (``USER#{uid}``/``LEDGER#{id}``), the balance and debt on the person (``points``,
``points_debt``), the cap counters (``RCAP#{campaign}``: ``TOTAL``, ``INV#{uid}``, ``INV#{uid}#DAY#{date}``)
and the stored reward config (``REWARDS#config``: ``v#{version}`` and ``CURRENT``).

Every change of a balance is ONE ``TransactWriteItems`` that writes its ledger entry under a derived id
(``attribute_not_exists``), so a repeat is a no-op and a ledger always sums to its balance. Caps are
conditional counters inside the reward transaction: concurrent qualifiers cannot overshoot.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wxloop.adapters.dynamo.codec import (
    ConditionFailed,
    TransactionCancelled,
    call,
    get,
    marshal,
    table_name,
    unmarshal,
)
from wxloop.adapters.dynamo.keys import (
    ledger_key,
    person_key,
    referral_key,
    reward_config_key,
    reward_counter_key,
)
from wxloop.adapters.dynamo.referrals import MAX_PAGE, decode_cursor, encode_cursor
from wxloop.domain.rewards import Caps, LedgerEntry, Reversal, Reward


@dataclass(frozen=True, slots=True)
class Outcome:
    """``done`` (written), ``repeat`` (this entry exists already), ``stale`` (the referral or the person
    changed since read: read again and decide again), or a cap that held (``cap_total``, ``cap_per_inviter``,
    ``cap_per_inviter_per_day``)."""

    status: str


def _entry_item(entry: LedgerEntry, kind: str) -> dict:
    return {**ledger_key(entry.uid, entry.entry_id), **marshal({
        "entry_id": entry.entry_id, "uid": entry.uid, "points": entry.points, "reason": entry.reason,
        "campaign": entry.campaign, "invitee": entry.invitee, "at": entry.at, "kind": kind})}


def _counter(campaign: str, counter: str, cap: int) -> dict:
    return {"Update": {"TableName": table_name(), "Key": reward_counter_key(campaign, counter),
                       "UpdateExpression": "SET n = if_not_exists(n, :zero) + :one",
                       "ConditionExpression": "attribute_not_exists(n) OR n < :cap",
                       "ExpressionAttributeValues": marshal({":zero": 0, ":one": 1, ":cap": cap})}}


def _caps(campaign: str, inviter: str, day: str, caps: Caps) -> list[tuple[str, dict]]:
    out = []
    if caps.total is not None:
        out.append(("cap_total", _counter(campaign, "TOTAL", caps.total)))
    if caps.per_inviter is not None:
        out.append(("cap_per_inviter", _counter(campaign, f"INV#{inviter}", caps.per_inviter)))
    if caps.per_inviter_per_day is not None:
        out.append(("cap_per_inviter_per_day", _counter(campaign, f"INV#{inviter}#DAY#{day}", caps.per_inviter_per_day)))
    return out


def _cancelled(exc: TransactionCancelled, names: list[str]) -> Outcome:
    """The first reason a transaction was cancelled, by the name of the item that refused."""
    for name, reason in zip(names, exc.reasons, strict=False):
        if reason == "ConditionalCheckFailed":
            return Outcome("repeat" if name == "ledger" else "stale" if name in ("referral", "person") else name)
    return Outcome("stale")  # TransactionConflict: a concurrent writer; read again


def apply_reward(reward: Reward, *, debt_read: int, caps: Caps, day: str, now: int) -> Outcome:
    """Referral pending → rewarded, the ledger entry, the inviter's balance (+ entry points) and debt
    (− repaid, only if still ``debt_read``), and one counter per configured cap: ONE transaction."""
    entry, table = reward.entry, table_name()
    debt_cond = "points_debt = :debt" if debt_read > 0 else "(attribute_not_exists(points_debt) OR points_debt <= :debt)"
    items: list[tuple[str, dict]] = [
        ("referral", {"Update": {
            "TableName": table, "Key": referral_key(entry.invitee),
            "UpdateExpression": "SET #s = :r, rewarded_at = :now, entry_id = :e, points = :p",
            "ConditionExpression": "#s = :pending AND inviter = :inv AND campaign = :c",
            "ExpressionAttributeNames": {"#s": "state"},
            "ExpressionAttributeValues": marshal({":r": "rewarded", ":now": now, ":e": entry.entry_id,
                                                  ":p": entry.points, ":pending": "pending", ":inv": entry.uid,
                                                  ":c": entry.campaign})}}),
        ("ledger", {"Put": {"TableName": table, "Item": _entry_item(entry, "reward"),
                            "ConditionExpression": "attribute_not_exists(pk)"}}),
        ("person", {"Update": {
            "TableName": table, "Key": person_key(entry.uid),
            "UpdateExpression": "SET points = if_not_exists(points, :zero) + :p, "
                                "points_debt = if_not_exists(points_debt, :zero) - :repaid",
            "ConditionExpression": f"attribute_exists(pk) AND attribute_not_exists(merged_into) AND {debt_cond}",
            "ExpressionAttributeValues": marshal({":zero": 0, ":p": entry.points, ":repaid": reward.debt_repaid,
                                                  ":debt": debt_read})}}),
        *_caps(entry.campaign, entry.uid, day, caps),
    ]
    return _transact(items)


def apply_reversal(reversal: Reversal, *, balance_read: int, now: int) -> Outcome:
    """Referral rewarded → reversed, the compensating entry, the balance (− taken, only if it is still
    ``balance_read``) and the debt (+ shortfall): ONE transaction."""
    entry, table = reversal.entry, table_name()
    items: list[tuple[str, dict]] = [
        ("referral", {"Update": {
            "TableName": table, "Key": referral_key(entry.invitee),
            "UpdateExpression": "SET #s = :rev, reversed_at = :now, reason = :why",
            "ConditionExpression": "#s = :rewarded AND inviter = :inv",
            "ExpressionAttributeNames": {"#s": "state"},
            "ExpressionAttributeValues": marshal({":rev": "reversed", ":now": now, ":why": entry.reason,
                                                  ":rewarded": "rewarded", ":inv": entry.uid})}}),
        ("ledger", {"Put": {"TableName": table, "Item": _entry_item(entry, "reversal"),
                            "ConditionExpression": "attribute_not_exists(pk)"}}),
        ("person", {"Update": {
            "TableName": table, "Key": person_key(entry.uid),
            "UpdateExpression": "SET points = if_not_exists(points, :zero) + :p, "
                                "points_debt = if_not_exists(points_debt, :zero) + :short",
            "ConditionExpression": "attribute_exists(pk) AND "
                                   + ("points = :bal" if balance_read > 0 else
                                      "(attribute_not_exists(points) OR points <= :bal)"),
            "ExpressionAttributeValues": marshal({":zero": 0, ":p": entry.points, ":short": reversal.shortfall,
                                                  ":bal": balance_read})}}),
    ]
    return _transact(items)


def apply_debit(entry: LedgerEntry) -> Outcome:
    """Spend ``-entry.points`` of ``entry.uid``'s balance with its ledger entry, in one transaction; never
    below zero (``insufficient``); ``repeat`` when this entry was written already."""
    table, spend = table_name(), -entry.points
    items: list[tuple[str, dict]] = [
        ("ledger", {"Put": {"TableName": table, "Item": _entry_item(entry, "debit"),
                            "ConditionExpression": "attribute_not_exists(pk)"}}),
        ("insufficient", {"Update": {
            "TableName": table, "Key": person_key(entry.uid),
            "UpdateExpression": "SET points = points - :n",
            "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(merged_into) AND points >= :n",
            "ExpressionAttributeValues": marshal({":n": spend})}}),
    ]
    return _transact(items)


def _transact(items: list[tuple[str, dict]]) -> Outcome:
    try:
        call("transact_write_items", TransactItems=[i for _, i in items])
    except TransactionCancelled as exc:
        return _cancelled(exc, [n for n, _ in items])
    return Outcome("done")


def get_entry(uid: str, entry_id: str) -> dict | None:
    return get(ledger_key(uid, entry_id))


def list_ledger(uid: str, *, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    """One page of ``uid``'s ledger (by entry id) and the next page's cursor (None: last page)."""
    kwargs: dict[str, Any] = {
        "TableName": table_name(), "KeyConditionExpression": "pk = :pk AND begins_with(sk, :l)",
        "ExpressionAttributeValues": marshal({":pk": f"USER#{uid}", ":l": "LEDGER#"}),
        "Limit": max(1, min(limit, MAX_PAGE))}
    start = decode_cursor(cursor, expect={"pk": f"USER#{uid}"})
    if start:
        if not start.get("sk", {}).get("S", "").startswith("LEDGER#"):
            from wxloop.adapters.dynamo.referrals import BadCursor

            raise BadCursor("bad cursor")
        kwargs["ExclusiveStartKey"] = start
    out = call("query", **kwargs)
    return [unmarshal(i) for i in out.get("Items", [])], encode_cursor(out.get("LastEvaluatedKey"))


def counter(campaign: str, name: str) -> int:
    """A cap counter's value (0 when never counted): for reports and tests, never for deciding."""
    return int((get(reward_counter_key(campaign, name), consistent=False) or {}).get("n", 0))


# --- the stored reward config ------------------------------------------------------------------------------


def put_reward_config(doc: Mapping, *, version: str, now: int) -> None:
    """Store the validated rewards document as ``version`` and make it current (one transaction)."""
    body = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    payload = marshal({"doc": body, "version": version, "at": now})
    call("transact_write_items", TransactItems=[
        {"Put": {"TableName": table_name(), "Item": {**reward_config_key(f"v#{version}"), **payload}}},
        {"Put": {"TableName": table_name(), "Item": {**reward_config_key("CURRENT"), **payload}}},
    ])


def get_reward_config() -> tuple[dict, str] | None:
    """(document, version) of the current reward config, or None when none was pushed."""
    item = get(reward_config_key("CURRENT"), consistent=False)
    return (json.loads(item["doc"]), str(item.get("version", ""))) if item else None


def person_points(uid: str) -> tuple[int, int]:
    """(balance, debt) of a person, strongly consistent."""
    item = get(person_key(uid), ProjectionExpression="points, points_debt") or {}
    return int(item.get("points", 0)), int(item.get("points_debt", 0))


__all__ = ["Outcome", "apply_reward", "apply_reversal", "apply_debit", "get_entry", "list_ledger", "counter",
           "put_reward_config", "get_reward_config", "person_points", "ConditionFailed", "unmarshal"]
