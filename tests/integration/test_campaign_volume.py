"""A large segment end to end on moto: seed, plan over parallel scan segments, release every hour bucket; each
planned person gets exactly one job. Size with ``CAMPAIGN_VOLUME_PEOPLE``: the default (1,000) keeps
``make test`` quick; ``CAMPAIGN_VOLUME_PEOPLE=20000`` is the issue's size (moto's scan walks the whole table
on every page, so its time grows with the square of the table: minutes at 20,000; the time is printed, not asserted, as it depends on the machine)."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.integration.test_campaigns import NOW, campaign_doc, run_counts

PEOPLE = int(os.environ.get("CAMPAIGN_VOLUME_PEOPLE", "1000"))


@pytest.fixture
def fast_moto_json(monkeypatch):
    """moto 5.2 serialises DynamoDB answers through its generic, model-driven serializer at ~10 µs per
    attribute: scanning 20,000 people would take minutes. Answers without binary values are plain JSON
    (moto's own items are already in DynamoDB's wire form), so dump them directly; anything else (errors,
    binary attributes) takes moto's path."""
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.serialized

    def serialized(self, action_result):
        result = action_result.result
        if isinstance(result, dict):
            try:
                body = json.dumps(result)
            except TypeError:
                return original(self, action_result)
            return 200, {"Content-Type": "application/x-amz-json-1.0", **self.response_headers}, body
        return original(self, action_result)

    monkeypatch.setattr(DynamoHandler, "serialized", serialized)


def test_a_20000_person_segment_is_planned_and_released_once_each(aws, fast_moto_json, monkeypatch):
    from devstack import demo_people
    from wxloop.adapters import queue
    from wxloop.adapters.dynamo import campaigns as store
    from wxloop.services import campaigns as service

    monkeypatch.setattr(service, "PAGE_LIMIT", 4000)  # fewer pages: each moto scan call walks the whole table
    t0 = time.perf_counter()
    demo_people.seed(PEOPLE, now=NOW, seed=11)
    service.push([campaign_doc()], NOW)
    seeded = time.perf_counter()
    tasks: list[dict] = []
    run = service.start("spring", now=NOW, segments=4, enqueue=tasks.extend)
    for task in tasks:
        while service.run_segment("spring", run, task["segment"], time_left=lambda: 1e9) == "more":
            pass
    planned = time.perf_counter()
    counted: list[int] = []
    monkeypatch.setattr(queue, "send_many", lambda jobs, url=None: counted.append(len({j["id"] for j in jobs})))
    released = service.release_run("spring", run, NOW + 8 * 86400)
    done = time.perf_counter()
    counts = run_counts("spring", run)
    assert counts["scanned"] == PEOPLE
    assert counts["planned"] + sum(v for k, v in counts.items() if k.startswith("skip_")) == PEOPLE
    assert counts["planned"] > PEOPLE // 4
    assert released == sum(counted) == counts["planned"] == counts["released"]
    assert store.get_run("spring", run)["state"] == "done"
    print(f"\n{PEOPLE} people: seed {seeded - t0:.1f}s, plan {planned - seeded:.1f}s, release {done - planned:.1f}s; "
          f"planned {counts['planned']}")
