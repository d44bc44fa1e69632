"""The job queue (SQS): work that calls WeChat's API, or that must not be lost when a write fails.

A job is a JSON object ``{"id": str, "kind": str, "app_id": str, ...}``. ``id`` is stable for the same
piece of work (derived from the push's dedupe key), so the worker runs each job at most once in effect.
Kinds and their fields are the records in ``wxloop.services.jobs.registry``. Every SQS call of the job
queue lives here: sending (one or in batches of 10) and the visibility of a received message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from wxloop.adapters import aws

MAX_VISIBILITY_SECONDS = 12 * 3600  # SQS's limit for ChangeMessageVisibility


class QueueError(RuntimeError):
    """SQS did not take the job."""


def _why(exc: Exception) -> str:
    # the type and SQS's error code: an exception's text may quote the message body
    code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
    return f"{type(exc).__name__}: {code}" if code else type(exc).__name__


def queue_url() -> str:
    url = os.environ.get("QUEUE_URL")
    if not url:
        raise QueueError("QUEUE_URL is not set")
    return url


def queue_url_of(source_arn: str) -> str | None:
    """The URL of the queue ``arn:partition:sqs:region:account:name`` (``QUEUE_URL`` when it names that
    queue, else built on the SQS client's endpoint), or None for anything else."""
    parts = str(source_arn or "").split(":")
    if len(parts) != 6 or parts[2] != "sqs" or not parts[5]:
        return None
    account, name = parts[4], parts[5]
    configured = os.environ.get("QUEUE_URL", "").rstrip("/")
    if configured.endswith(f"/{account}/{name}"):
        return configured
    return f"{aws.client('sqs').meta.endpoint_url.rstrip('/')}/{account}/{name}"


def change_visibility(source_arn: str, receipt_handle: str, seconds: int) -> None:
    """Hide a received message of the queue ``source_arn`` for ``seconds`` (at most ``MAX_VISIBILITY_SECONDS``) from now; raises
    ``QueueError`` when SQS refuses or the ARN names no queue."""
    url = queue_url_of(source_arn)
    if url is None:
        raise QueueError("not an SQS queue ARN")
    try:
        aws.client("sqs").change_message_visibility(QueueUrl=url, ReceiptHandle=receipt_handle,
                                                    VisibilityTimeout=max(0, min(int(seconds), MAX_VISIBILITY_SECONDS)))
    except Exception as exc:
        raise QueueError(_why(exc)) from exc


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
        raise QueueError(_why(exc)) from exc


def plan_queue_url() -> str:
    """The campaign planner's own queue (``PLAN_QUEUE_URL``): one task per scan segment."""
    url = os.environ.get("PLAN_QUEUE_URL")
    if not url:
        raise QueueError("PLAN_QUEUE_URL is not set")
    return url


def send_many(jobs: Sequence[Mapping[str, Any]], *, url: str | None = None) -> None:
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
            raise QueueError(_why(exc)) from exc
        if out.get("Failed"):
            raise QueueError(f"{len(out['Failed'])} jobs refused: {out['Failed'][0].get('Code')}")
