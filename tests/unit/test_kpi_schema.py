"""Journey event schema v1: the lake record of a journey event, and the JSON Schema that documents it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wxloop.analytics import schema

ROOT = Path(__file__).resolve().parents[2]
jsonschema = pytest.importorskip("jsonschema")


def _validate(record):
    jsonschema.validate(record, schema.json_schema())


def test_the_committed_json_schema_is_the_one_the_code_writes():
    committed = json.loads((ROOT / "schemas" / "journey-event.v1.json").read_text(encoding="utf-8"))
    assert committed == schema.json_schema(), "regenerate schemas/journey-event.v1.json from schema.json_schema()"


def test_an_oa_push_becomes_a_valid_record_without_content():
    event = {"id": "oJ:123", "type": "oa.event.subscribe", "app": "wx1234567890abcdef", "at": 1_760_000_000,
             "detail": {"scene": "store_12", "content": "private words", "Ticket": "t"}}
    rec = schema.to_record("u1", event)
    _validate(rec)
    assert rec["ts"] == 1_760_000_000_000 and rec["platform"] == "oa" and rec["by_user"] is True
    assert rec["channel"] == "store_12" and json.loads(rec["detail"]) == {"scene": "store_12"}


@pytest.mark.parametrize(("etype", "by_user", "platform"), [
    ("mp.launch", True, "mp"), ("mp.client.add_to_cart", True, "mp"), ("mp.phone_bound", True, "mp"),
    ("mp.send.subscribe", False, "mp"), ("oa.send.cs", False, "oa"), ("reward.granted", False, "mp"),
    ("person.merged", False, "mp"),
])
def test_mini_program_and_system_events(etype, by_user, platform):
    explicit = None if etype.startswith(("oa.", "mp.")) else "mp"  # rewards and merges name their platform
    rec = schema.to_record("u1", {"id": "e", "type": etype, "at": 1, "platform": explicit, "inviter": "u0",
                                  "merged_from": "u9"})
    _validate(rec)
    assert (rec["by_user"], rec["platform"]) == (by_user, platform)


def test_an_explicit_by_user_and_experiment_are_kept():
    rec = schema.to_record("u1", {"id": "e", "type": "mp.page_view", "at_ms": 1_700_000_000_123, "by_user": False,
                                  "experiment": "welcome", "variant": "b", "campaign": "c1"})
    _validate(rec)
    assert (rec["ts"], rec["by_user"], rec["experiment"], rec["variant"]) == (1_700_000_000_123, False, "welcome", "b")


@pytest.mark.parametrize("event", [
    {"type": "oa.text", "at": 1},                                 # no id
    {"id": "e", "type": "oa.text"},                               # no time
    {"id": "e", "type": "oa.text", "at": "soon"},                 # not a time
    {"id": "e", "type": "Robert'); DROP", "at": 1},               # not a type
    {"id": "e", "type": "partner.first_order", "at": 1},          # no platform
    {"id": "e", "type": "x." + "a" * 80, "at": 1},                # too long
])
def test_events_that_cannot_be_records_are_refused(event):
    with pytest.raises(schema.SchemaError):
        schema.to_record("u1", event)


def test_huge_or_odd_values_are_trimmed_or_dropped():
    rec = schema.to_record("u" * 500, {"id": "e" * 500, "type": "mp.launch", "at": 1, "campaign": "c" * 500,
                                       "detail": {"scene": "s" * 600, "nested": {"deep": [1, 2]}}})
    assert len(rec["person"]) == 100 and len(rec["event_id"]) == 200 and len(rec["campaign"]) == 64
    assert rec["detail"] is None  # over the detail budget: dropped, not truncated into invalid JSON
    _validate(rec)
