"""Running one job: at most once in effect (a claim item ``JOB#{id}``), its WeChat errors settled by the
action ``wxloop.protocol.errcodes`` gives them.

Outcomes: 40001/40014/42001 are handled in the client (compare-and-expire, refresh, one retry); a closed
channel (45015/43101) is recorded for that person (no retry); a per-person cap (45047) re-queues the job
with a growing delay; a used-up daily quota (45009) blocks the API until the quota resets at midnight
China time, and every job for it waits in the queue (re-queued at the longest delay, without calling
WeChat) until then, so nothing is dropped; HTTP 5xx, timeouts, -1 (system busy), answers that are not
JSON, token fetch failures and DynamoDB failures raise so SQS retries (after ``retry_delay_seconds`` of
the receive count, see ``delay_retry``; then the DLQ); any other errcode is recorded, no retry. A job that
can never run raises ``PoisonJob`` every time, so SQS's redrive moves it to the DLQ.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger

from wxloop.adapters import queue, repository
from wxloop.metrics import OutcomeMetrics
from wxloop.protocol import errcodes
from wxloop.protocol.errcodes import Action, action_of
from wxloop.services.jobs import registry, settle, timing
from wxloop.services.jobs.context import JobContext
from wxloop.services.jobs.outcomes import JobBusy, NotSendable, Outcome, PoisonJob
from wxloop.services.jobs.records import Job
from wxloop.services.log_fields import error_fields

logger = Logger(child=True)
metrics = OutcomeMetrics()  # shared with the worker's handler, which flushes it (log_metrics)

JOB_TTL_SECONDS = 7 * 86400
FINISH_TRIES = 3  # marking a job done after WeChat accepted it


def _count(sink: OutcomeMetrics | None, name: str) -> None:
    if sink is not None:
        sink.add_metric(name=name, unit="Count", value=1)


def run(job: Mapping, *, sink: OutcomeMetrics | None = metrics, now: int | None = None) -> Outcome:
    """Run one job at most once in effect; returns its outcome, or raises so SQS retries it.

    Raises ``PoisonJob`` (never runnable), ``JobBusy`` (claimed by a running worker), ``WeChatAPIError``
    (transient: 5xx, timeout, token still refused after one refresh), ``RepositoryError``/``QueueError``.
    """
    kind, record = registry.validate(job)
    now = int(time.time()) if now is None else int(now)
    job_id, name = record.id, kind.name
    if kind.calls_wechat:
        blocked_until = repository.quota_blocked_until(record.app_id, name)
        if blocked_until > now:  # wait for the quota, without calling WeChat and without losing the job
            queue.send(dict(job), delay_seconds=min(timing.BACKOFF_MAX_SECONDS, blocked_until - now))
            _count(sink, f"job.{name}.quota_wait")
            return Outcome("deferred", errcodes.DAILY_QUOTA, f"quota until {blocked_until}")
    if not repository.claim_job(job_id, now + JOB_TTL_SECONDS, now=now, lease_seconds=timing.lease_seconds()):
        if (repository.get_job(job_id) or {}).get("state") != "done":
            raise JobBusy("the job is running elsewhere")
        _count(sink, f"job.{name}.duplicate")
        return Outcome("duplicate")
    try:
        detail = kind.run(record, JobContext(now=now, raw=job))
    except Exception as exc:
        try:
            outcome = _settle_failure(kind, record, job, exc, now)
        except Exception:
            outcome = None  # recording the outcome failed: retry the whole job
        if outcome is None:
            _release(job_id)
            _count(sink, f"job.{name}.retry")
            raise
        _count(sink, f"job.{name}.{outcome.status}")
        logger.info("job settled", extra={"job_id": job_id, "kind": name, "outcome": str(outcome)})
        _tell(kind, record, outcome, now, sink, job)
        return outcome
    _finish_ok(job_id, name, now, sink)
    outcome = Outcome("ok", detail=detail)
    _tell(kind, record, outcome, now, sink, job)
    return outcome


def _tell(kind: registry.JobKind[Any], record: Job, outcome: Outcome, now: int, sink: OutcomeMetrics | None,
          job: Mapping) -> None:
    """Tell the kind its final outcome; when that fails, queue a ``job_settle`` job that tells it again (the job
    is settled: retrying it would send twice)."""
    if kind.on_outcome is None:
        return
    try:
        kind.on_outcome(record, outcome, now)
        return
    except Exception as exc:
        logger.warning("job outcome not recorded, queued to record again",
                       extra={"job_id": record.id, "kind": kind.name, **error_fields(exc)})
    try:
        queue.send(settle.settle_job(dict(job), outcome, now))
        _count(sink, f"job.{kind.name}.settle_queued")
    except Exception as exc:  # the last resort: the outcome stays unrecorded, and is counted and logged
        logger.error("job outcome not recorded", extra={"job_id": record.id, "kind": kind.name, **error_fields(exc)})
        _count(sink, f"job.{kind.name}.unrecorded")


def _finish_ok(job_id: str, name: str, now: int, sink: OutcomeMetrics | None) -> None:
    for attempt in range(FINISH_TRIES):  # it was done: acknowledged even if the mark fails, never retried
        try:
            repository.finish_job(job_id, "ok", now=now)
            break
        except Exception as exc:  # left unmarked, only a copy of the job arriving after the lease could rerun it
            if attempt == FINISH_TRIES - 1:
                logger.error("job done but not marked done", extra={"job_id": job_id, **error_fields(exc)})
                _count(sink, f"job.{name}.unmarked")
    _count(sink, f"job.{name}.ok")


def _settle_failure(kind: registry.JobKind[Any], record: Job, job: Mapping, exc: Exception,
                    now: int) -> Outcome | None:
    """Record the outcome of an errcode that retrying will not fix; None means: let SQS retry."""
    if isinstance(exc, NotSendable):  # nothing was sent: WeChat would refuse it
        repository.finish_job(record.id, f"closed:{exc.reason}", now=now)
        return Outcome("closed", None, exc.reason)
    from wxloop.adapters.wechat import WeChatAPIError  # only loaded when a WeChat call failed

    if not isinstance(exc, WeChatAPIError) or exc.transient:
        return None
    code, action = exc.errcode, action_of(exc.errcode)
    openid = getattr(record, "openid", None)
    if action is Action.QUOTA_BLOCK:
        until = timing.quota_reset_after(now)
        repository.block_quota(record.app_id, kind.name, until)
        _release(record.id)  # the re-queued copy (same id) must be able to claim
        queue.send(dict(job), delay_seconds=timing.BACKOFF_MAX_SECONDS)
        return Outcome("deferred", code, f"quota until {until}")
    if action is Action.BACKOFF and record.deferrals < timing.MAX_DEFERRALS:
        # Release first: the re-queued copy (same id) must be able to claim. If the send fails, the
        # exception propagates and SQS retries this delivery instead.
        _release(record.id)
        delay = timing.backoff_seconds(record.deferrals)
        queue.send({**job, "deferrals": record.deferrals + 1}, delay_seconds=delay)
        return Outcome("deferred", code, f"in {delay}s")
    if action is Action.BACKOFF:
        outcome = Outcome("gave_up", code)
    elif action is Action.CHANNEL_CLOSED and openid and code is not None:
        channel = kind.channel_of(record)
        repository.mark_channel_closed(record.app_id, openid, channel, code, now)
        outcome = Outcome("closed", code, channel)
    else:
        outcome = Outcome("failed", code, exc.errmsg[:100])
    repository.finish_job(record.id, str(outcome), now=now)
    return outcome


def _release(job_id: str) -> None:
    try:
        repository.release_job(job_id)
    except Exception:  # the claim then expires on its own after lease_seconds()
        logger.warning("job claim not released", extra={"job_id": job_id})


def handle_message(body: str | bytes, *, sink: OutcomeMetrics | None = metrics, message_id: str = "") -> Outcome:
    """Parse and run one SQS message (the worker's record handler). Poison messages are counted and
    logged without their body, then re-raised so that redrive moves them to the DLQ."""
    try:
        job = registry.parse(body)
    except PoisonJob as exc:
        _count(sink, "job.poison")
        logger.error("poison job", extra={"message_id": message_id, "reason": str(exc)})
        raise
    return run(job, sink=sink)


def delay_retry(record: Mapping) -> int | None:
    """Hide a failed SQS record (Lambda event shape) for ``retry_delay_seconds`` of its receive count,
    instead of the queue's fixed visibility timeout. Best effort: a failure is logged, never raised (the
    record then comes back after the visibility timeout). Returns the delay set."""
    receipt = record.get("receiptHandle")
    source = record.get("eventSourceARN") or ""
    if not receipt or queue.queue_url_of(source) is None:
        return None
    delay = timing.retry_delay_seconds((record.get("attributes") or {}).get("ApproximateReceiveCount"))
    try:
        queue.change_visibility(source, receipt, delay)
    except Exception as exc:
        logger.warning("retry delay not set", extra={"message_id": record.get("messageId"), **error_fields(exc)})
        return None
    return delay
