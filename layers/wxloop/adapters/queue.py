"""The job queue (SQS): work that calls WeChat's API, or that must not be lost when a write fails.

A job is a JSON object ``{"id": str, "kind": str, "app_id": str, ...}``. ``id`` is stable for the same
piece of work (derived from the push's dedupe key), so the worker runs each job at most once in effect.
Kinds and their fields are listed in ``wxloop.services.jobs``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from wxloop.adapters import aws


class QueueError(RuntimeError):
    """SQS did not take the job."""


def queue_url() -> str:
    url = os.environ.get("QUEUE_URL")
    if not url:
        raise QueueError("QUEUE_URL is not set")
    return url


def send(job: Mapping[str, Any], *, delay_seconds: int = 0) -> None:
    """Put one job on the queue; raises ``QueueError`` when SQS fails."""
    if not job.get("id") or not job.get("kind"):
        raise ValueError("a job needs an id and a kind")
    try:
        aws.client("sqs").send_message(
            QueueUrl=queue_url(),
            MessageBody=json.dumps(job, separators=(",", ":"), ensure_ascii=False),
            DelaySeconds=max(0, min(int(delay_seconds), 900)),
        )
    except QueueError:
        raise
    except Exception as exc:
        raise QueueError(repr(exc)) from exc


def plan_queue_url() -> str:
    """The campaign planner's own queue (``PLAN_QUEUE_URL``): one task per scan segment."""
    url = os.environ.get("PLAN_QUEUE_URL")
    if not url:
        raise QueueError("PLAN_QUEUE_URL is not set")
    return url


def send_many(jobs: list[Mapping[str, Any]], *, url: str | None = None) -> None:
    """Put several jobs on the queue (``url``, default the jobs queue; one request per 10); raises
    ``QueueError`` if any is refused."""
    for start in range(0, len(jobs), 10):
        chunk = jobs[start : start + 10]
        entries = [
            {"Id": str(i), "MessageBody": json.dumps(job, separators=(",", ":"), ensure_ascii=False)}
            for i, job in enumerate(chunk)
        ]
        try:
            out = aws.client("sqs").send_message_batch(QueueUrl=url or queue_url(), Entries=entries)
        except Exception as exc:
            raise QueueError(repr(exc)) from exc
        if out.get("Failed"):
            raise QueueError(f"{len(out['Failed'])} jobs refused: {out['Failed'][0].get('Code')}")
