"""Retention (PIPL Art. 19): people inactive for ``RETENTION_INACTIVE_DAYS`` (365) are erased, on a
schedule. Journey events expire by the table's TTL (``JOURNEY_RETENTION_DAYS``) and the lake's S3
lifecycle; log groups keep ``LogRetentionDays``; exports expire after a day."""

from __future__ import annotations

import time

from aws_lambda_powertools import Logger

from wxloop.adapters.dynamo import privacy as data
from wxloop.services.privacy import erasure
from wxloop.settings import settings

logger = Logger(child=True)
MAX_PER_RUN = 500  # a backlog is worked off over several runs, within the function's timeout


def inactive_days() -> int:
    """``RETENTION_INACTIVE_DAYS`` (365); at least 30 so a typo cannot erase active people."""
    return max(30, settings().retention_inactive_days)


def purge(*, now: int | None = None, days: int | None = None, dry_run: bool = False) -> dict:
    """Erase every person whose latest activity is older than ``days``; returns counts (``inactive``,
    ``erased``). ``dry_run`` only counts."""
    now = int(time.time()) if now is None else now
    cutoff = now - (inactive_days() if days is None else days) * 86400
    stale = sorted(uid for uid, at in data.last_activity_by_person().items() if at < cutoff)
    erased = 0
    if not dry_run:
        for uid in stale[:MAX_PER_RUN]:
            out = erasure.erase(uid, source="retention", now=now)
            erased += out["state"] != "gone"
    logger.info("retention purge", extra={"inactive": len(stale), "erased": erased})
    return {"inactive": len(stale), "erased": erased}
