"""Job claims (``JOB#{job_id}``/``JOB``: each job runs at most once in effect) and daily API quota blocks
(``QUOTA#{app_id}``/``API#{api}``, after WeChat's 45009)."""

from __future__ import annotations

import time

from wxloop.adapters.dynamo.codec import call, conditional_update, get, marshal
from wxloop.adapters.dynamo.keys import job_key, quota_key


def claim_job(job_id: str, ttl: int, *, now: int | None = None, lease_seconds: int = 300) -> bool:
    """Claim a job so that it runs at most once in effect; False when it is done or running elsewhere.

    The claim is a lease: a worker that dies mid-job (timeout, crash) leaves a claim that expires after
    ``lease_seconds``, so SQS's redelivery can run it. ``ttl`` is the epoch at which the item is dropped.
    """
    now = int(time.time()) if now is None else int(now)
    out = conditional_update(
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
    conditional_update(
        Key=job_key(job_id),
        UpdateExpression="SET lease_until = :zero",
        ConditionExpression="attribute_exists(pk) AND #state <> :done",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues=marshal({":zero": 0, ":done": "done"}),
    )


def finish_job(job_id: str, outcome: str, *, now: int | None = None) -> None:
    """Mark a claimed job done with its outcome (``ok``, ``closed:45015``, ``failed:40003``…)."""
    conditional_update(
        Key=job_key(job_id),
        UpdateExpression="SET #state = :done, outcome = :outcome, finished_at = :now",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues=marshal(
            {":done": "done", ":outcome": outcome, ":now": int(time.time()) if now is None else int(now)}
        ),
    )


def get_job(job_id: str) -> dict | None:
    """The job's claim item, or None; raises ``RepositoryError``."""
    return get(job_key(job_id))


def block_quota(app_id: str, api: str, until: int) -> None:
    """WeChat said 45009 (daily quota of ``api`` used up): no call to it for ``app_id`` before ``until``."""
    call(
        "update_item",
        Key=quota_key(app_id, api),
        UpdateExpression="SET #until = :until, #ttl = :ttl",
        ExpressionAttributeNames={"#until": "until", "#ttl": "ttl"},
        ExpressionAttributeValues=marshal({":until": int(until), ":ttl": int(until) + 86400}),
    )


def quota_blocked_until(app_id: str, api: str) -> int:
    """Until when ``api`` of ``app_id`` is out of daily quota (0: not blocked, or no longer known)."""
    item = get(quota_key(app_id, api), consistent=False, ProjectionExpression="#u",
               ExpressionAttributeNames={"#u": "until"})
    return int((item or {}).get("until") or 0)
