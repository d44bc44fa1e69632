"""Journey records and follow-up jobs from the table's stream.

Each push leaves its event on the identity item (the hot path writes nothing else); this turns every new
event into a ``USER#{uid}`` / ``EV#…`` item with a TTL, and queues the jobs the event carries (an outbox:
the write that accepted the push is what guarantees them; a failed send fails the stream record, which is
retried, then kept in the stream's failure queue). Job ids are stable and the worker runs each once.

Subscribe-message events also keep the person's one-time send credits (``SUB#{template_id}``, see
``credit_changes``), applied once per event id even when the stream delivers a record twice.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from wxloop.adapters import queue
from wxloop.adapters.dynamo import credits, keys
from wxloop.adapters.dynamo import journey as journey_store
from wxloop.adapters.dynamo.codec import unmarshal
from wxloop.services import loop_stream
from wxloop.settings import settings

POPUP_EVENT, CHANGE_EVENT = "subscribe_msg_popup_event", "subscribe_msg_change_event"
SENT_EVENT, REFUSED_CODE = "subscribe_msg_sent_event", "43101"  # a send WeChat refused: no credit left
CREDIT_MARKER_TTL_SECONDS = 7 * 86400  # longer than the stream keeps a record (24 h) for replays


def new_event(record: Mapping) -> tuple[str, dict] | None:
    """The (uid, event) a stream record adds, or None (not an identity item, or no new event)."""
    if record.get("eventName") not in ("INSERT", "MODIFY"):
        return None
    change = record.get("dynamodb") or {}
    new = unmarshal(change.get("NewImage")) or {}
    if keys.identity_of(new) is None:
        return None
    ev, uid = new.get("ev"), new.get("uid")
    if not isinstance(ev, dict) or not ev.get("id") or not uid:
        return None
    old = unmarshal(change.get("OldImage")) or {}
    if isinstance(old.get("ev"), dict) and old["ev"].get("id") == ev["id"]:
        return None
    at = int(ev.get("at") or 0)
    event = {**ev, "uid": uid, "at_iso": datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    return uid, event


def credit_changes(event: Mapping) -> dict[str, int | None]:
    """The subscribe-message credits an event changes: template id → one-time sends granted, or None when
    refused (the counter goes to 0). A popup's ``accept`` grants one send; ``reject`` in a popup or a change
    event, or a sent event's errcode 43101, refuses. Other events change nothing."""
    name = str(event.get("type") or "").partition(".event.")[2]
    if name not in (POPUP_EVENT, CHANGE_EVENT, SENT_EVENT):
        return {}
    detail = event.get("detail")
    out: dict[str, int | None] = {}
    for item in (detail.get("subscriptions") if isinstance(detail, Mapping) else None) or ():
        if not isinstance(item, Mapping) or not item.get("template_id"):
            continue
        template_id, status = str(item["template_id"]), str(item.get("status") or "").lower()
        if name == SENT_EVENT:
            if str(item.get("error_code") or "") == REFUSED_CODE:
                out[template_id] = None
        elif status == "reject":
            out[template_id] = None
        elif status == "accept" and name == POPUP_EVENT:
            out[template_id] = (out.get(template_id) or 0) + 1
    return out


def _apply_credits(stream_record: Mapping, event: Mapping) -> None:
    changes = credit_changes(event)
    if not changes:
        return
    change = stream_record.get("dynamodb") or {}
    found = keys.identity_of(unmarshal(change.get("Keys") or change.get("NewImage")) or {})
    if found is None:  # checked by new_event
        return
    app_id, openid = found
    credits.apply_subscribe_event(app_id, openid, str(event["id"]), changes, now=int(event["at"]),
                                     ttl=int(time.time()) + CREDIT_MARKER_TTL_SECONDS)


def record(stream_record: Mapping, lake_batch: list | None = None) -> tuple[bool, int]:
    """Write the journey event a stream record carries (once) and queue its jobs. Returns (journey record
    written, jobs queued); raises when the jobs could not be queued, so the record is retried. A journey
    event is also appended as (uid, event) to ``lake_batch``, which the caller sends to the lake at once."""
    found = new_event(stream_record)
    if found is None:
        return False, loop_stream.on_record(stream_record)  # a referral rewarded: tell the inviter
    uid, event = found
    jobs: list[Mapping[str, Any]] = [j for j in event.pop("jobs", None) or [] if isinstance(j, dict)]
    ttl = int(event["at"]) + settings().journey_retention_days * 86400
    # an outbox event (``journey: False``) only carries jobs, e.g. a Mini Program card rendered after the touch
    written = journey_store.put_journey_event(uid, event, ttl=ttl) if event.get("journey", True) else False
    _apply_credits(stream_record, event)
    _mirror_follow(uid, event)
    if event.get("journey", True):
        loop_stream.on_journey_event(uid, event)  # invites, channels, active days
    if jobs:
        queue.send_many(jobs)
    if lake_batch is not None and event.get("journey", True):
        lake_batch.append((uid, event))  # also on a replay: the lake's at-least-once copy is deduped by the KPIs
    return written, len(jobs)


FOLLOW_EVENTS = {"oa.event.subscribe": True, "oa.event.scan": True, "oa.event.unsubscribe": False}


def _mirror_follow(uid: str, event: Mapping) -> None:
    """Keep the OA follow state on the person too (``fol_{oa}``), so the MP API reads it with the person in
    one request; a replayed or older event does not overwrite a newer state."""
    following = FOLLOW_EVENTS.get(str(event.get("type") or ""))
    if following is not None and event.get("app"):
        from wxloop.adapters import mp_store

        mp_store.mirror_follow(uid, str(event["app"]), following, int(event.get("at") or 0))
