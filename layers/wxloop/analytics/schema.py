"""Journey event schema v1: one flat record for both platforms, as the lake stores it.

The JSON Schema ``schemas/journey-event.v1.json`` documents the same columns. A record never holds message
content or personal data: ``person`` is the pseudonymous uid, ``detail`` keeps only the small whitelisted
fields below. ``ts`` is UTC; the KPIs count days in Asia/Shanghai (UTC+8, no daylight saving).

Vocabulary the KPIs rely on (other types are stored and ignored by them):

- ``{oa|mp}.*`` with ``by_user`` true: the person did something on that platform (activity), e.g.
  ``oa.text``, ``oa.event.subscribe``, ``mp.launch`` (scene in detail), ``mp.client.<name>`` (client events),
  ``mp.phone_bound`` / ``mp.registered`` (registration), ``mp.order_paid`` (the default conversion);
- sends (``oa.send.cs``, ``mp.send.subscribe``), ``reward.*`` and other system events: ``by_user`` false
  (never counted as activity); ``platform`` is the kind of the app involved;
- ``referral.attributed``: the person arrived through ``inviter``'s invitation;
- ``person.merged``: ``merged_from``'s events belong to ``person`` from now on (UnionID merge);
- registration and conversion types are parameters of the report (defaults in ``wxloop.analytics.kpi``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = 1
PLATFORMS = ("oa", "mp")
SYSTEM_PREFIXES = ("reward.", "person.", "outbox")
DETAIL_KEYS = ("scene", "key", "kind", "page", "name", "status", "template_id", "amount", "points", "reason")
DETAIL_MAX_BYTES = 512
TEXT_MAX = 64
_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")

# (column, Glue/Athena type, Arrow type name): one list drives the Parquet writer, the Glue table and the docs.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("event_id", "string", "string"),
    ("person", "string", "string"),
    ("platform", "string", "string"),
    ("app", "string", "string"),
    ("type", "string", "string"),
    ("ts", "timestamp", "timestamp_ms"),
    ("by_user", "boolean", "bool"),
    ("channel", "string", "string"),
    ("campaign", "string", "string"),
    ("experiment", "string", "string"),
    ("variant", "string", "string"),
    ("inviter", "string", "string"),
    ("merged_from", "string", "string"),
    ("detail", "string", "string"),
    ("v", "int", "int32"),
)
COLUMN_NAMES = tuple(c[0] for c in COLUMNS)
PARTITION = "dt"  # yyyy-MM-dd (UTC arrival day), Firehose's prefix and the Glue projection


class SchemaError(ValueError):
    """A journey event that cannot become a v1 lake record (no id, person, time or platform)."""


def _text(value: Any, limit: int = TEXT_MAX) -> str | None:
    if value is None or value == "":
        return None
    return str(value)[:limit]


def is_by_user(event_type: str) -> bool:
    """Whether an event type is the person's own action (activity) rather than something the system did:
    sends (``oa.send.cs``), rewards, merges and outbox entries are not."""
    parts = event_type.split(".")
    return not (event_type.startswith(SYSTEM_PREFIXES) or "send" in parts[1:] or "reward" in parts)


def _detail(raw: Any) -> str | None:
    if not isinstance(raw, Mapping):
        return None
    kept = {k: raw[k] for k in DETAIL_KEYS if k in raw and isinstance(raw[k], (str, int, float, bool))}
    if not kept:
        return None
    text = json.dumps(kept, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return text if len(text.encode("utf-8")) <= DETAIL_MAX_BYTES else None


def _platform(event: Mapping[str, Any], event_type: str) -> str:
    explicit = event.get("platform")
    if explicit in PLATFORMS:
        return str(explicit)
    prefix = event_type.split(".", 1)[0]
    if prefix in PLATFORMS:
        return prefix
    raise SchemaError(f"event {event.get('id')!r} of type {event_type!r} names no platform (oa or mp)")


def to_record(uid: str, event: Mapping[str, Any]) -> dict[str, Any]:
    """The v1 lake record of a journey event (the dict the stream writes to DynamoDB, plus its uid).

    ``ts`` is epoch milliseconds (what Firehose's Hive JSON reader parses as ``millis``). Raises
    SchemaError when the event has no id, time, a valid type or a platform; drops detail fields that are
    not whitelisted (never message content)."""
    event_id, event_type = _text(event.get("id"), 200), str(event.get("type") or "")
    if not event_id or not uid or not _TYPE_RE.match(event_type) or len(event_type) > TEXT_MAX:
        raise SchemaError(f"event {event_id!r} has no id, person or valid type")
    try:
        ts_ms = int(float(event.get("at_ms") or 0)) or int(float(event["at"]) * 1000)
    except (KeyError, TypeError, ValueError):
        raise SchemaError(f"event {event_id!r} has no time") from None
    raw_detail = event.get("detail")
    detail: Mapping[str, Any] = raw_detail if isinstance(raw_detail, Mapping) else {}
    channel = event.get("channel") or detail.get("channel") or (
        detail.get("scene") if event_type.endswith(("subscribe", "scan", "launch")) else None)
    by_user = event.get("by_user")
    return {
        "event_id": event_id,
        "person": _text(uid, 100),
        "platform": _platform(event, event_type),
        "app": _text(event.get("app"), 40),
        "type": event_type,
        "ts": ts_ms,
        "by_user": bool(by_user) if isinstance(by_user, bool) else is_by_user(event_type),
        "channel": _text(channel),
        "campaign": _text(event.get("campaign")),
        "experiment": _text(event.get("experiment"), 100),  # rule:{app}:{rule id} fits whole
        "variant": _text(event.get("variant")),
        "inviter": _text(event.get("inviter"), 100),
        "merged_from": _text(event.get("merged_from"), 100),
        "detail": _detail(detail),
        "v": SCHEMA_VERSION,
    }


def partition_of(ts_ms: int) -> str:
    """The ``dt`` partition (UTC day) a record with this time lands in."""
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d")


def json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a v1 record as the stream sends it to Firehose."""
    kinds: dict[str, dict[str, object]] = {"string": {"type": ["string", "null"], "maxLength": TEXT_MAX},
             "timestamp": {"type": "integer", "minimum": 0, "description": "epoch milliseconds, UTC"},
             "boolean": {"type": "boolean"}, "int": {"type": "integer", "const": SCHEMA_VERSION}}
    props: dict[str, dict[str, object]] = {name: dict(kinds[glue]) for name, glue, _ in COLUMNS}
    props["event_id"] = {"type": "string", "minLength": 1, "maxLength": 200}
    props["person"] = {"type": "string", "minLength": 1, "maxLength": 100,
                       "description": "pseudonymous person uid at write time (never an openid or PII)"}
    props["platform"] = {"enum": list(PLATFORMS)}
    props["app"] = {"type": ["string", "null"], "maxLength": 40, "description": "app id of the account"}
    props["type"] = {"type": "string", "pattern": _TYPE_RE.pattern, "maxLength": TEXT_MAX}
    for name in ("inviter", "merged_from", "experiment"):
        props[name] = {"type": ["string", "null"], "maxLength": 100}
    props["detail"] = {"type": ["string", "null"], "maxLength": DETAIL_MAX_BYTES,
                       "description": f"JSON object with only these keys: {', '.join(DETAIL_KEYS)}"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "journey-event.v1.json",
        "title": "wxloop journey event v1",
        "description": (__doc__ or "").strip(),
        "type": "object",
        "additionalProperties": False,
        "required": ["event_id", "person", "platform", "type", "ts", "by_user", "v"],
        "properties": props,
    }
