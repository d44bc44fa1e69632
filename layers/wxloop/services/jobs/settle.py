"""``job_settle``: a job's final outcome told again, when telling it right after the run failed.

A kind's ``on_outcome`` (a campaign's SEND item and counters, a mass send's batch) runs after the job's claim
is marked done, so a failure there must not retry the job (that would send twice). The runner queues this job
instead: the original job and its outcome. Running it calls the kind's ``on_outcome`` again, which is
idempotent (a conditional write or transaction); a failure raises, so SQS retries it and then keeps it in the
DLQ, where an operator can redrive it. Nothing accepted is lost.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import Field

from wxloop.services.jobs.context import JobContext
from wxloop.services.jobs.outcomes import Outcome, PoisonJob
from wxloop.services.jobs.records import Job

KIND = "job_settle"
MAX_AGE_SECONDS = 14 * 86400  # SQS keeps a message 14 days at most
CLOCK_SKEW_SECONDS = 300
Status = Literal["ok", "duplicate", "closed", "deferred", "gave_up", "failed"]


class JobSettle(Job):
    """``job``: the job as it was queued; ``status``/``errcode``/``detail``: its outcome; ``at``: when."""

    job: dict[str, Any]
    status: Status
    errcode: int | None = None
    detail: str = Field(default="", max_length=200)
    at: int = Field(ge=0)


def settle_job(job: dict[str, Any], outcome: Outcome, now: int) -> dict[str, Any]:
    """The ``job_settle`` job that tells ``job``'s kind its ``outcome`` (reached at ``now``) again; its id is
    one per job, outcome and time (a hash: job ids may be long)."""
    digest = hashlib.sha256(f"{job['id']}|{outcome.status}|{now}".encode()).hexdigest()[:32]
    return {"id": f"settle:{digest}", "kind": KIND, "app_id": job["app_id"], "job": dict(job),
            "status": outcome.status, "errcode": outcome.errcode, "detail": outcome.detail[:200], "at": now}


def job_settle(record: JobSettle, ctx: JobContext) -> str:
    from wxloop.services.jobs import registry  # the registry lists this kind: import it when running

    kind, original = registry.validate(record.job)
    if kind.on_outcome is None or kind.name == KIND or original.app_id != record.app_id:
        raise PoisonJob(f"{KIND} job names a job whose outcome is not recorded")
    if not ctx.now - MAX_AGE_SECONDS <= record.at <= ctx.now + CLOCK_SKEW_SECONDS:
        raise PoisonJob(f"{KIND} job's time is not a recent past")  # it would date a push or a pause wrongly
    kind.on_outcome(original, Outcome(record.status, record.errcode, record.detail), record.at)
    return f"settled {kind.name}"
