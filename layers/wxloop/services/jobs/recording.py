"""The ``touch`` job kind: a push the webhook queued instead of recording it in time (its write failed or
its budget ran out); the worker records it later (``wxloop.services.oa_push.record_later``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from wxloop.services.jobs.context import JobContext
from wxloop.services.jobs.records import Job


class Touch(Job):
    """``inbound``: the dict form of ``wxloop.domain.inbound.Inbound``; ``at``: when it was received."""

    inbound: Annotated[dict[str, Any], Field(min_length=1)]
    at: int | None = None


def touch(job: Touch, ctx: JobContext) -> str:
    from wxloop.services import oa_push  # the push service: only for this kind

    return str(oa_push.record_later(ctx.raw))
