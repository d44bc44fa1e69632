"""Journey records and follow-up jobs from the table's stream.

Each push leaves its event on the identity item (the hot path writes nothing else); this turns every new
event into a ``USER#{uid}`` / ``EV#…`` item with a TTL, and queues the jobs the event carries (an outbox:
the write that accepted the push is what guarantees them; a failed send fails the stream record, which is
retried, then kept in the stream's failure queue). Job ids are stable and the worker runs each once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from wxloop.adapters import queue, repository
from wxloop.settings import settings


def new_event(record: Mapping) -> tuple[str, dict] | None:
    """The (uid, event) a stream record adds, or None (not an identity item, or no new event)."""
    if record.get("eventName") not in ("INSERT", "MODIFY"):
        return None
    change = record.get("dynamodb") or {}
    new = repository.unmarshal(change.get("NewImage")) or {}
    if not str(new.get("pk", "")).startswith("ID#") or new.get("sk") != "ID":
        return None
    ev, uid = new.get("ev"), new.get("uid")
    if not isinstance(ev, dict) or not ev.get("id") or not uid:
        return None
    old = repository.unmarshal(change.get("OldImage")) or {}
    if isinstance(old.get("ev"), dict) and old["ev"].get("id") == ev["id"]:
        return None
    at = int(ev.get("at") or 0)
    event = {**ev, "uid": uid, "at_iso": datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    return uid, event


def record(stream_record: Mapping) -> tuple[bool, int]:
    """Write the journey event a stream record carries (once) and queue its jobs. Returns (journey record
    written, jobs queued); raises when the jobs could not be queued, so the record is retried."""
    found = new_event(stream_record)
    if found is None:
        return False, 0
    uid, event = found
    jobs = [j for j in event.pop("jobs", None) or [] if isinstance(j, dict)]
    ttl = int(event["at"]) + settings().journey_retention_days * 86400
    written = repository.put_journey_event(uid, event, ttl=ttl)
    if jobs:
        queue.send_many(jobs)
    return written, len(jobs)
