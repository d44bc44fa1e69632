"""Campaigns (``CAMPAIGN#{id}``): the stored document, runs, per-person sends and the hour buckets that hold
planned sends until their hour.

| sk | holds |
|---|---|
| ``DEF`` | ``doc`` (the campaign's document as JSON), ``sha``, ``updated_at`` |
| ``RUN#{run}`` | ``state`` (planning, planned, done, cancelled), ``segments``, ``seg_done``, ``sg`` (per segment: pages ``p``, LastEvaluatedKey ``k`` as JSON, ``d`` done), ``paused_until``, counters ``n_*`` |
| ``SEND#{run}#{uid}`` | one person's send in a run, written once by the worker: ``state`` (its outcome), ``channel``, ``done_at`` |
| ``DUE#{run}#{hour}#{seg}#{page}`` | the sends of one scanned page due at ``hour`` (epoch s), released by the tick |

``CAMPAIGN#~`` holds the catalogue (``CATALOG``: stored ids) and ``ACTIVE`` (runs the tick looks at). Counters
are top-level numbers ``n_{name}`` (``n_scanned``, ``n_ch_oa_cs``, ``n_skip_cap_per_day``, ``n_h_10``,
``n_released``, ``n_sent``…), so one UpdateItem adds a page's counts whatever names it brings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from wxloop.adapters.dynamo import people
from wxloop.adapters.dynamo.codec import (
    ConditionFailed,
    RepositoryError,
    TransactionCancelled,
    call,
    conditional_update,
    get,
    marshal,
    table_name,
    unmarshal,
)
from wxloop.adapters.dynamo.keys import CAMPAIGN_CATALOG, campaign_key, campaign_pk, person_key

BATCH_GET_MAX = 100
SEND_KEEP_SECONDS = 90 * 86400  # a send's outcome names a person: kept for the campaign's reports, then dropped
BUCKET_KEEP_SECONDS = 7 * 86400
_COUNTER = re.compile(r"[a-z0-9_]{1,60}")


class RunExists(RepositoryError):
    """A run with this id was started before (its segments continue from their checkpoints)."""


# --- campaign documents --------------------------------------------------------------------------------


def put_campaign(campaign_id: str, doc: Mapping[str, Any], sha: str, now: int) -> None:
    """Store a campaign's document (replacing the previous one) and list it in the catalogue."""
    call("put_item", Item={**campaign_key(campaign_id, "DEF"), **marshal(
        {"doc": json.dumps(doc, sort_keys=True, ensure_ascii=False, default=str), "sha": sha, "updated_at": now})})
    call("update_item", Key=campaign_key(CAMPAIGN_CATALOG, "CATALOG"), UpdateExpression="ADD ids :id",
         ExpressionAttributeValues={":id": {"SS": [campaign_id]}})


def get_campaign_doc(campaign_id: str) -> dict | None:
    """The stored document of a campaign, or None."""
    item = get(campaign_key(campaign_id, "DEF"))
    return json.loads(item["doc"]) if item else None


def campaign_ids() -> list[str]:
    """The ids of every stored campaign, sorted."""
    return sorted((get(campaign_key(CAMPAIGN_CATALOG, "CATALOG")) or {}).get("ids") or ())


# --- runs ------------------------------------------------------------------------------------------------


def start_run(campaign_id: str, run: str, *, segments: int, now: int, plan_at: int) -> None:
    """Create the run item (every segment at page 0) and list the run as active. ``plan_at``: the moment the
    run plans for (send times are at or after it). Raises ``RunExists`` when this run was started before."""
    sg = {f"s{i}": {"p": 0, "k": "", "d": False} for i in range(segments)}
    try:
        call("put_item", Item={**campaign_key(campaign_id, f"RUN#{run}"), **marshal(
            {"campaign": campaign_id, "run": run, "state": "planning", "segments": segments, "seg_done": 0,
             "sg": sg, "started_at": now, "plan_at": plan_at})},
             ConditionExpression="attribute_not_exists(pk)")
    except ConditionFailed:
        raise RunExists(f"run {run} of {campaign_id} exists") from None
    call("update_item", Key=campaign_key(CAMPAIGN_CATALOG, "ACTIVE"), UpdateExpression="ADD runs :r",
         ExpressionAttributeValues={":r": {"SS": [f"{campaign_id}#{run}"]}})


def get_run(campaign_id: str, run: str) -> dict | None:
    """The run item, or None."""
    return get(campaign_key(campaign_id, f"RUN#{run}"))


def latest_run(campaign_id: str) -> dict | None:
    """The newest run item of a campaign (run ids sort by time), or None."""
    out = call("query", KeyConditionExpression="pk = :pk AND begins_with(sk, :run)", ScanIndexForward=False,
               Limit=1, ExpressionAttributeValues=marshal({":pk": campaign_pk(campaign_id), ":run": "RUN#"}))
    items = out.get("Items") or []
    return unmarshal(items[0]) if items else None


def active_runs() -> list[tuple[str, str]]:
    """(campaign id, run) of every run the release tick should look at."""
    runs = (get(campaign_key(CAMPAIGN_CATALOG, "ACTIVE")) or {}).get("runs") or ()
    return sorted((r.split("#", 1)[0], r.split("#", 1)[1]) for r in runs if "#" in r)


def drop_active(campaign_id: str, run: str) -> None:
    call("update_item", Key=campaign_key(CAMPAIGN_CATALOG, "ACTIVE"), UpdateExpression="DELETE runs :r",
         ExpressionAttributeValues={":r": {"SS": [f"{campaign_id}#{run}"]}})


def _counter_updates(counts: Mapping[str, int], names: dict, values: dict) -> list[str]:
    sets = []
    if counts:
        values[":zero"] = 0
    for i, (name, n) in enumerate(sorted(counts.items())):
        if not _COUNTER.fullmatch(name):
            raise ValueError(f"bad counter name {name!r}")
        names[f"#c{i}"], values[f":c{i}"] = f"n_{name}", int(n)
        sets.append(f"#c{i} = if_not_exists(#c{i}, :zero) + :c{i}")
    return sets


def checkpoint(campaign_id: str, run: str, segment: int, page: int, last_key: Mapping | None,
               counts: Mapping[str, int]) -> bool:
    """Record that ``page`` (1-based) of ``segment`` is planned: its LastEvaluatedKey (None: the segment is
    done) and its counts, in one write conditional on the segment being at ``page - 1`` and the run not
    cancelled. False when that does not hold (a duplicate task did this page, or the run was cancelled)."""
    names: dict[str, str] = {"#s": f"s{segment}", "#state": "state"}
    values: dict[str, Any] = {":prev": page - 1, ":p": page, ":k": json.dumps(last_key) if last_key else "",
                              ":d": last_key is None, ":cancelled": "cancelled"}
    sets = ["sg.#s.p = :p", "sg.#s.k = :k", "sg.#s.d = :d", *_counter_updates(counts, names, values)]
    if last_key is None:
        values[":one"] = 1
        sets.append("seg_done = seg_done + :one")
    return conditional_update(
        Key=campaign_key(campaign_id, f"RUN#{run}"), UpdateExpression="SET " + ", ".join(sets),
        ConditionExpression="sg.#s.p = :prev AND #state <> :cancelled",
        ExpressionAttributeNames=names, ExpressionAttributeValues=marshal(values),
    ) is not None


def add_counts(campaign_id: str, run: str, counts: Mapping[str, int], *, sets: Mapping[str, Any] | None = None,
               condition_state: str | None = None) -> bool:
    """Add to a run's counters (and set plain attributes, e.g. ``state``); with ``condition_state``, only
    while the run is in that state. False when the condition fails."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    updates = _counter_updates(counts, names, values)
    for i, (name, value) in enumerate(sorted((sets or {}).items())):
        names[f"#v{i}"], values[f":v{i}"] = name, value
        updates.append(f"#v{i} = :v{i}")
    condition = "attribute_exists(pk)"
    if condition_state:
        names["#state"], values[":want"] = "state", condition_state
        condition += " AND #state = :want"
    if not updates:
        return True
    return conditional_update(
        Key=campaign_key(campaign_id, f"RUN#{run}"), UpdateExpression="SET " + ", ".join(updates),
        ConditionExpression=condition, ExpressionAttributeNames=names,
        **({"ExpressionAttributeValues": marshal(values)} if values else {}),
    ) is not None


def pause_run(campaign_id: str, run: str, until: int) -> None:
    """Hold the run's releases until ``until`` (WeChat's 45009: the account's daily quota is used up)."""
    conditional_update(Key=campaign_key(campaign_id, f"RUN#{run}"),
                       UpdateExpression="SET paused_until = :u", ConditionExpression="attribute_exists(pk)",
                       ExpressionAttributeValues=marshal({":u": int(until)}))


# --- people --------------------------------------------------------------------------------------------


def _projection(attributes: Iterable[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``ProjectionExpression`` for ``attributes`` (every name through a placeholder: some are reserved words)."""
    if attributes:
        names = {f"#p{i}": name for i, name in enumerate(attributes)}
        kwargs["ProjectionExpression"] = ", ".join(names)
        kwargs["ExpressionAttributeNames"] = {**kwargs.get("ExpressionAttributeNames", {}), **names}
    return kwargs


def scan_people(segment: int, segments: int, start_key: Mapping | None, limit: int,
                attributes: Iterable[str] | None = None) -> tuple[list[dict], dict | None]:
    """One page of a parallel scan (``segment`` of ``segments``) over the table, keeping person items that were
    not merged into another, with only ``attributes`` when given (less to transfer and decode; the read units
    are the same). Returns (person items, LastEvaluatedKey or None at the segment's end)."""
    kwargs: dict[str, Any] = _projection(attributes, {
        "TableName": table_name(), "Segment": segment, "TotalSegments": segments, "Limit": limit,
        "FilterExpression": "sk = :profile AND begins_with(pk, :user) AND attribute_not_exists(merged_into)",
        "ExpressionAttributeValues": marshal({":profile": "PROFILE", ":user": "USER#"}),
    })
    if start_key:
        kwargs["ExclusiveStartKey"] = dict(start_key)
    out = call("scan", **kwargs)
    return [unmarshal(i) or {} for i in out.get("Items") or ()], out.get("LastEvaluatedKey")


def get_items(keys: Iterable[tuple[str, str]], attributes: Iterable[str] | None = None, *,
              consistent: bool = False) -> dict[tuple[str, str], dict]:
    """The items at (pk, sk) ``keys`` (BatchGetItem, 100 a request, unprocessed keys retried), with only
    ``attributes`` (plus the keys) when given; missing ones are absent from the result."""
    wanted = sorted(set(keys))
    found: dict[tuple[str, str], dict] = {}
    table = table_name()
    projection = _projection(("pk", "sk", *attributes) if attributes else None, {})
    if consistent:
        projection["ConsistentRead"] = True
    for start in range(0, len(wanted), BATCH_GET_MAX):
        pending: dict = {table: {"Keys": [{"pk": {"S": pk}, "sk": {"S": sk}}
                                          for pk, sk in wanted[start:start + BATCH_GET_MAX]], **projection}}
        for _ in range(5):
            out = call("batch_get_item", RequestItems=pending)
            for raw in (out.get("Responses") or {}).get(table, ()):
                item = unmarshal(raw) or {}
                found[(item["pk"], item["sk"])] = item
            pending = out.get("UnprocessedKeys") or {}
            if not pending:
                break
        if pending:
            raise RepositoryError("batch read left keys unprocessed")
    return found


# --- sends and hour buckets --------------------------------------------------------------------------


def bucket_sk(run: str, hour_at: int, segment: int, page: int) -> str:
    return f"DUE#{run}#{hour_at:010d}#{segment:04d}#{page:06d}"


def put_bucket(campaign_id: str, run: str, hour_at: int, segment: int, page: int,
               entries: list[list[str]]) -> None:
    """Hold a page's sends due at ``hour_at``: ``entries`` are [uid, channel, app_id, openid]. The key is the
    same for the same page, so a retried page overwrites its own bucket. A bucket never released (its run
    cancelled) expires ``BUCKET_KEEP_SECONDS`` after its hour: it names people."""
    call("put_item", Item={**campaign_key(campaign_id, bucket_sk(run, hour_at, segment, page)),
                           **marshal({"hour_at": hour_at, "entries": entries, "ttl": hour_at + BUCKET_KEEP_SECONDS})})


def due_buckets(campaign_id: str, run: str, now: int, *, limit: int = 50) -> list[dict]:
    """Buckets of a run whose hour has come (``hour_at`` ≤ ``now``), oldest first."""
    out = call("query", KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi", Limit=limit,
               ExpressionAttributeValues=marshal({":pk": campaign_pk(campaign_id), ":lo": f"DUE#{run}#",
                                                  ":hi": f"DUE#{run}#{int(now):010d}#~"}))
    return [unmarshal(i) or {} for i in out.get("Items") or ()]


def has_buckets(campaign_id: str, run: str) -> bool:
    """Whether any bucket of the run is still held (released buckets are deleted)."""
    out = call("query", KeyConditionExpression="pk = :pk AND begins_with(sk, :due)", Limit=1,
               ExpressionAttributeValues=marshal({":pk": campaign_pk(campaign_id), ":due": f"DUE#{run}#"}))
    return bool(out.get("Items"))


def drop_bucket(campaign_id: str, sk: str) -> None:
    """Delete a released bucket."""
    call("delete_item", Key=campaign_key(campaign_id, sk))


def record_send_result(campaign_id: str, run: str, uid: str, state: str, channel: str, now: int, *,
                       push_at: int | None = None) -> bool:
    """The worker's outcome of one send (``sent``, ``closed:45015``…) as ``SEND#{run}#{uid}`` and, with
    ``push_at``, the push time on the person (the planner's frequency caps), in one transaction, only while the
    person exists and is not being erased (an erasure must not find the item recreated); then the run's counter
    (``n_sent``, ``n_closed``, ``n_failed``). Told again (a replayed outcome), it changes nothing but a count
    that did not happen: the counter is a plain update of the run item, outside the transaction (every worker
    adds to that one item: inside transactions they would cancel each other), and the SEND item is marked
    ``counted`` after it. True when this call wrote the SEND item."""
    table = table_name()
    send_key = campaign_key(campaign_id, f"SEND#{run}#{uid}")
    person: dict[str, Any] = {"TableName": table, "Key": person_key(uid),
                              "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(erasing)"}
    if push_at is not None:
        person.update(UpdateExpression=people.PUSH_APPEND, ExpressionAttributeValues=marshal(people.push_values(push_at)))
    items = [
        {"Update": {"TableName": table, "Key": send_key,
                    "UpdateExpression": "SET #state = :s, channel = :ch, done_at = :now, #ttl = :ttl",
                    "ConditionExpression": "attribute_not_exists(pk)",
                    "ExpressionAttributeNames": {"#state": "state", "#ttl": "ttl"},
                    "ExpressionAttributeValues": marshal({":s": state, ":ch": channel, ":now": now,
                                                          ":ttl": now + SEND_KEEP_SECONDS})}},
        {"Update" if push_at is not None else "ConditionCheck": person},
    ]
    try:
        call("transact_write_items", TransactItems=items)
        written = True
    except TransactionCancelled as exc:
        if not exc.any_of("ConditionalCheckFailed"):
            raise
        written = False
    if written and push_at is not None:
        try:
            people.trim_pushes(uid)
        except RepositoryError:  # a list one or two longer for a while is harmless; the next push trims it
            pass
    if not written:  # told again: count it if the first telling wrote the item but failed before its count
        send = get(send_key, ProjectionExpression="#s, counted", ExpressionAttributeNames={"#s": "state"})
        if not send or send.get("counted"):
            return False  # no SEND item (an erased person), or counted already
        state = str(send["state"])
    _count_send(campaign_id, run, send_key, state)
    return written


def _count_send(campaign_id: str, run: str, send_key: dict, state: str) -> None:
    """Add a send to the run's counter, then mark the SEND item ``counted``: a failure in between counts it
    again when the outcome is told again (once more at most), never not at all."""
    add_counts(campaign_id, run, {state.split(":", 1)[0]: 1})
    conditional_update(Key=send_key, UpdateExpression="SET counted = :t", ConditionExpression="attribute_exists(pk)",
                       ExpressionAttributeValues=marshal({":t": True}))


def get_send(campaign_id: str, run: str, uid: str) -> dict | None:
    return get(campaign_key(campaign_id, f"SEND#{run}#{uid}"))


# --- people who are erased ----------------------------------------------------------------------------


def live_people(uids: Iterable[str]) -> set[str]:
    """Those of ``uids`` whose person item exists and is not being erased (the release skips the others);
    strongly consistent reads, so an erasure that has begun is always seen."""
    found = get_items([(f"USER#{u}", "PROFILE") for u in uids], ("erasing",), consistent=True)
    return {pk.removeprefix("USER#") for (pk, _), item in found.items() if not item.get("erasing")}


def recent_runs(campaign_id: str, since: int) -> list[str]:
    """The runs of a campaign started at or after ``since``: the only ones whose items may still name a person
    (sends expire ``SEND_KEEP_SECONDS`` after they happen, buckets ``BUCKET_KEEP_SECONDS`` after their hour)."""
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :run)", "FilterExpression": "started_at >= :since",
        "ProjectionExpression": "#run", "ExpressionAttributeNames": {"#run": "run"},
        "ExpressionAttributeValues": marshal({":pk": campaign_pk(campaign_id), ":run": "RUN#", ":since": since})}
    runs: list[str] = []
    while True:
        out = call("query", **kwargs)
        runs += [str((unmarshal(i) or {}).get("run")) for i in out.get("Items") or ()]
        if not out.get("LastEvaluatedKey"):
            return runs
        kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]


def drop_sends(campaign_id: str, runs: Iterable[str], uids: Iterable[str]) -> int:
    """Delete the ``SEND#{run}#{uid}`` items of ``uids`` in ``runs``; returns how many existed."""
    dropped = 0
    for run in runs:
        for uid in uids:
            out = call("delete_item", Key=campaign_key(campaign_id, f"SEND#{run}#{uid}"), ReturnValues="ALL_OLD")
            dropped += bool(out.get("Attributes"))
    return dropped


def _buckets(campaign_id: str, run: str) -> list[dict]:
    """Every bucket of a run still held (due or not), all pages."""
    kwargs: dict[str, Any] = {"KeyConditionExpression": "pk = :pk AND begins_with(sk, :due)", "ConsistentRead": True,
                              "ExpressionAttributeValues": marshal({":pk": campaign_pk(campaign_id),
                                                                    ":due": f"DUE#{run}#"})}
    items: list[dict] = []
    while True:
        out = call("query", **kwargs)
        items += [unmarshal(i) or {} for i in out.get("Items") or ()]
        if not out.get("LastEvaluatedKey"):
            return items
        kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]


def drop_from_buckets(campaign_id: str, run: str, names: Iterable[str]) -> int:
    """Remove from the run's unreleased buckets every entry whose uid or openid is one of ``names``: each
    bucket rewritten only while it still holds what was read (one left empty is deleted); a bucket released
    or replaced meanwhile is left alone (the release skips erased people). Returns the entries removed."""
    wanted = {n for n in names if n}
    removed = 0
    for bucket in _buckets(campaign_id, run):
        entries = bucket.get("entries") or []
        keep = [e for e in entries if not (e and (e[0] in wanted or e[-1] in wanted))]
        if len(keep) == len(entries):
            continue
        values = {":n": len(entries)}
        guard = "attribute_exists(pk) AND size(entries) = :n"
        key = campaign_key(campaign_id, str(bucket["sk"]))
        try:
            if keep:
                call("update_item", Key=key, UpdateExpression="SET entries = :keep", ConditionExpression=guard,
                     ExpressionAttributeValues=marshal({**values, ":keep": keep}))
            else:
                call("delete_item", Key=key, ConditionExpression=guard, ExpressionAttributeValues=marshal(values))
        except ConditionFailed:
            continue
        removed += len(entries) - len(keep)
    return removed
