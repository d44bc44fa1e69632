"""Erasure (PIPL Art. 47): everything held about a person goes from the table at once, from WeChat's tags
through jobs, and from the lake through the erasure list and the next compaction.

``erase(uid)`` opens the request (a work item and an audit record, ``wxloop.adapters.dynamo.erasure``) and
runs it; ``resume()`` runs what a crash left open and sweeps finished ones. Every step is idempotent, so a
run that dies anywhere is completed by the next. A sweep some minutes later deletes what in-flight writes
(the stream's journey records of a push accepted just before) put back under the old uid. Anyone writing
after the identity went is met as a new person. Log lines carry the request id and counts, never an
identifier.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger

from wxloop.adapters.dynamo import campaigns as campaign_store
from wxloop.adapters.dynamo import erasure as store
from wxloop.adapters.dynamo import privacy as data
from wxloop.services.privacy import lake
from wxloop.settings import settings

logger = Logger(child=True)
_CONDITIONAL = ("ID#", "UNION#")  # items a new person may own by now: deleted only while still the erased one's
# runs older than this hold no item naming anyone: sends expire 90 days after they happen, within days of the start
CAMPAIGN_LOOKBACK_SECONDS = campaign_store.SEND_KEEP_SECONDS + 30 * 86400


def sweep_delay_seconds() -> int:
    """``ERASURE_SWEEP_SECONDS`` (900): when the sweep after an erasure runs (0: at once)."""
    return settings().erasure_sweep_seconds


def erase(uid: str, *, source: str, now: int | None = None, sweep_after: int | None = None) -> dict:
    """Erase the person ``uid`` (and persons merged into it). Returns ``{request_id, state}``: ``done``,
    ``sweep_due`` (table erased, a sweep follows), ``queued`` (``PRIVACY_QUEUE_URL``: the privacy function
    runs it within seconds) or ``gone`` (no such person: nothing to do). A second
    request for a person being erased returns the first request's id. Raises ``RepositoryError`` (the work
    item stays; ``resume`` completes it)."""
    now = int(time.time()) if now is None else now
    request_id = store.start(uuid.uuid4().hex, uid, source=source, now=now)
    if request_id is None:
        return {"request_id": None, "state": "gone"}
    logger.info("erasure started", extra={"request_id": request_id, "source": source})
    if queue_url := settings().privacy_queue_url:  # deployed: the privacy function erases (its role may, this one not)
        from wxloop.adapters import aws

        aws.client("sqs").send_message(QueueUrl=queue_url,
                                       MessageBody=json.dumps({"kind": "erase", "request_id": request_id}))
        return {"request_id": request_id, "state": "queued"}
    return {"request_id": request_id, "state": run(request_id, now=now, sweep_after=sweep_after)}


def run(request_id: str, *, now: int, sweep_after: int | None = None) -> str:
    """Run (or continue) one erasure from its work item; returns its state afterwards."""
    work = store.work(request_id)
    if work is None:
        return "done"
    if work.get("step") == "sweep":
        return sweep(request_id, now=now) if now >= int(work.get("sweep_at") or 0) else "sweep_due"
    holding = data.holdings(str(work["uid"]))
    partitions = sorted(set(work.get("partitions") or ()) | set(holding["items"]))
    identifiers = sorted(set(work.get("identifiers") or ()) | _identifiers(holding))
    # kept on the work item first: once the person item is gone its identities cannot be found again
    uids = sorted(set(work.get("uids") or ()) | set(holding["uids"]))
    store.advance(request_id, step="deleting", partitions=partitions, identifiers=identifiers, uids=uids)
    jobs = _untag_jobs(request_id, holding)
    _delete_exports(holding)
    unlinked = sum(store.unlink(pk, identifiers) for pk in data.linked_partitions(holding))
    unlinked += _forget_campaigns(uids, identifiers, now)
    deleted = _delete_partitions(partitions, uids)
    delay = sweep_delay_seconds() if sweep_after is None else sweep_after
    store.advance(request_id, step="sweep", sweep_at=now + delay, deleted=deleted, unlinked=unlinked, jobs=jobs)
    if delay <= 0:
        return sweep(request_id, now=now)
    return "sweep_due"


def sweep(request_id: str, *, now: int) -> str:
    """Delete what came back under the erased person's partitions since, then close the request."""
    work = store.work(request_id)
    if work is None:
        return "done"
    lake.current().add(list(work.get("uids") or ()), now)  # the KPIs exclude them from now on
    late = _delete_partitions(list(work.get("partitions") or ()), list(work.get("uids") or ()))
    late += _forget_campaigns(list(work.get("uids") or ()), list(work.get("identifiers") or ()), now)
    counts = {"deleted": int(work.get("deleted") or 0) + late, "unlinked": int(work.get("unlinked") or 0),
              "tag_jobs": int(work.get("jobs") or 0), "persons": len(work.get("uids") or ())}
    store.finish(request_id, counts=counts, now=now)
    logger.info("erasure done", extra={"request_id": request_id, **counts})
    return "done"


def resume(*, now: int | None = None) -> dict:
    """Continue every open erasure (after a crash) and run the sweeps that are due; returns counts."""
    now = int(time.time()) if now is None else now
    states: dict[str, int] = {}
    for work in store.pending():
        try:
            state = run(str(work["sk"]), now=now)
        except Exception:  # one erasure failing must not hold up the others; the next run retries it
            logger.exception("erasure run failed", extra={"request_id": str(work["sk"])})
            state = "failed"
        states[state] = states.get(state, 0) + 1
    return states


def _identifiers(holding: Mapping) -> set[str]:
    out = set(holding["uids"]) | set(holding["unionids"]) | set(holding["codes"])
    out |= {openid for _, openid in holding["identities"]}
    return {i for i in out if i}


def _forget_campaigns(uids: list[str], identifiers: list[str], now: int) -> int:
    """Campaign items naming the person: its ``SEND#{run}#{uid}`` items and its entries in unreleased hour
    buckets, per campaign and recent run (queries of the campaign's partition, never a scan)."""
    changed = 0
    for campaign_id in campaign_store.campaign_ids():
        runs = campaign_store.recent_runs(campaign_id, now - CAMPAIGN_LOOKBACK_SECONDS)
        changed += campaign_store.drop_sends(campaign_id, runs, uids)
        changed += sum(campaign_store.drop_from_buckets(campaign_id, run, identifiers) for run in runs)
    return changed


def _delete_partitions(partitions: list[str], uids: list[str]) -> int:
    """Every item of ``partitions``; identity and union items only while still the erased person's, the
    person items last (until then a crashed run can still be resumed from them)."""
    deleted = 0
    profiles = []
    for pk in partitions:
        keys = []
        for item in data.query_partition(pk):
            sk = str(item["sk"])
            if pk.startswith(_CONDITIONAL) and sk in ("ID",):
                deleted += store.delete_if_owned(pk, sk, uids)
            elif pk.startswith("USER#") and sk == "PROFILE":
                profiles.append((pk, sk))
            else:
                keys.append((pk, sk))
        deleted += store.delete_keys(keys)
    return deleted + store.delete_keys(profiles)


def _untag_jobs(request_id: str, holding: Mapping) -> int:
    """Queue one ``untag_all`` job per OA identity: WeChat keeps the tags we set until we take them off."""
    from wxloop.adapters import queue
    from wxloop.config import load_config

    config = load_config()
    jobs: list[Mapping[str, Any]] = [{"id": f"erase:{request_id}:untag:{app}", "kind": "untag_all", "app_id": app, "openid": openid}
            for app, openid in holding["identities"]
            if (account := config.account(app)) is not None and account.kind == "oa"]
    if jobs:
        queue.send_many(jobs)
    return len(jobs)


def _delete_exports(holding: Mapping) -> None:
    """Exported copies go with the person (the S3 object or local file named on each export item)."""
    from wxloop.services.privacy import export

    for pk, items in holding["items"].items():
        for item in items:
            if pk.startswith("USER#") and str(item.get("sk", "")).startswith("EXPORT#") and item.get("object"):
                export.delete_object(str(item["object"]))
