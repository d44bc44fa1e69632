"""When jobs run again: the backoff after a per-person cap, the daily quota reset, the retry delay of a
failed delivery, and how long a claim blocks other deliveries."""

from __future__ import annotations

import os
from typing import Any

CHINA_UTC_OFFSET = 8 * 3600  # WeChat's daily quotas reset at midnight China time (no DST)
BACKOFF_FIRST_SECONDS = 60
BACKOFF_MAX_SECONDS = 900  # SQS DelaySeconds cap
MAX_DEFERRALS = 5
RETRY_FIRST_SECONDS = 30  # a failed delivery is hidden 30 s after its first receive, doubling per receive
RETRY_MAX_SECONDS = 900


def backoff_seconds(deferrals: int) -> int:
    """Delay before the ``deferrals``-th re-run of a throttled job: 60, 120, 240, 480, 900, 900…"""
    return min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** min(max(0, deferrals), 10))


def quota_reset_after(now: int) -> int:
    """The next midnight in China (UTC+8) after ``now``: when WeChat's daily API quotas reset."""
    return ((now + CHINA_UTC_OFFSET) // 86400 + 1) * 86400 - CHINA_UTC_OFFSET


def retry_delay_seconds(receive_count: Any) -> int:
    """How long a delivery that failed stays hidden before SQS hands it out again, from its
    ``ApproximateReceiveCount``: 30, 60, 120, 240, 480, then 900 s."""
    try:
        received = max(1, int(receive_count))
    except (TypeError, ValueError):
        received = 1
    return min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** min(received - 1, 10))


def lease_seconds() -> int:
    """How long a claim blocks other deliveries; longer than the worker's timeout, shorter than the
    queue's visibility timeout (so a crashed run is retried by SQS's redelivery)."""
    return int(os.environ.get("JOB_LEASE_SECONDS", "60"))
