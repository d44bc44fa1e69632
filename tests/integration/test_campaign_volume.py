"""A 20,000-person segment end to end on moto: load the people, plan over four parallel scan segments with
checkpoints, release every hour bucket; each planned person gets exactly one job, and the run's counts add up.

moto is made fast enough for the size, not different: the people are loaded straight into moto's table (the
items ``wxloop demo people`` writes with BatchWriteItem; through the API, moto's request parsing alone takes
~5 ms a person), answers are serialised as plain JSON, and a scan page walks moto's items from the start key
in key order instead of sorting and deep-copying the whole table on every page (a Query walks the same
ordered list), and a projection of top-level names picks them without moto's deep copy. The planner's own calls
(Scan, BatchGetItem, PutItem, UpdateItem, Query, DeleteItem) still go through botocore and moto. The time of
each phase is printed; the test's CPU time must stay under a minute (``CAMPAIGN_VOLUME_PEOPLE`` resizes it).
"""

from __future__ import annotations

import bisect
import json
import os
import time

import pytest

from tests.integration.test_campaigns import NOW, campaign_doc, run_counts

PEOPLE = int(os.environ.get("CAMPAIGN_VOLUME_PEOPLE", "20000"))
BUDGET_SECONDS = 60


@pytest.fixture
def fast_moto(monkeypatch):
    """Plain-JSON answers and key-ordered scan pages (see the module's docstring)."""
    from moto.dynamodb.models.dynamo_type import Item, LimitedSizeDict
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    original_serialized, original_scan = DynamoHandler.serialized, Table.scan

    def serialized(self, action_result):
        result = action_result.result
        if isinstance(result, dict):
            try:
                body = json.dumps(result)
            except TypeError:  # binary attributes, errors: moto's own serializer
                return original_serialized(self, action_result)
            return 200, {"Content-Type": "application/x-amz-json-1.0", **self.response_headers}, body
        return original_serialized(self, action_result)

    def scan(self, filters, limit, exclusive_start_key, filter_expression=None, index_name=None,
             consistent_read=False, projection_expression=None, segments=(None, None)):
        if filters or index_name or not self.range_key_attr:
            return original_scan(self, filters, limit, exclusive_start_key, filter_expression, index_name,
                                 consistent_read, projection_expression, segments=segments)
        keys, items = _ordered(self)
        start = 0
        if exclusive_start_key:
            start = bisect.bisect_right(keys, (exclusive_start_key[self.hash_key_attr]["S"],
                                               exclusive_start_key[self.range_key_attr]["S"]))
        results, scanned, last_key = [], 0, None
        for item in items[start:]:
            if not item.is_within_segment(segments):
                continue
            if limit is not None and scanned == limit:
                break
            scanned += 1
            last_key = item
            if filter_expression is None or filter_expression.expr(item):
                results.append(item)
        else:
            last_key = None  # the segment's end: no LastEvaluatedKey
        lek = None if last_key is None else {self.hash_key_attr: last_key.hash_key,
                                             self.range_key_attr: last_key.range_key}
        if projection_expression:
            results = [r.project(projection_expression) for r in results]
        return results, scanned, lek

    monkeypatch.setattr(DynamoHandler, "serialized", serialized)
    monkeypatch.setattr(Table, "scan", scan)
    monkeypatch.setattr(Table, "all_items", lambda self: list(_ordered(self)[1]))  # what a Query walks
    original_project = Item.project

    def project(self, projection_expressions):
        if any(len(path) != 1 for path in projection_expressions):  # nested paths: moto's own
            return original_project(self, projection_expressions)
        out = Item.__new__(Item)
        out.hash_key, out.range_key, out.attrs = self.hash_key, self.range_key, LimitedSizeDict()
        dict.update(out.attrs, {p[0]: self.attrs[p[0]] for p in projection_expressions if p[0] in self.attrs})
        return out

    monkeypatch.setattr(Item, "project", project)


def _ordered(table) -> tuple[list, list]:
    """The table's items in key order, cached while no item is added or removed."""
    size = sum(map(len, table.items.values()))
    cached = getattr(table, "_wx_ordered", None)
    if cached is None or cached[0] != size:
        pairs = sorted(((h.value, r.value), item) for h, by_range in table.items.items()
                       for r, item in by_range.items())
        cached = (size, [k for k, _ in pairs], [i for _, i in pairs])
        table._wx_ordered = cached
    return cached[1], cached[2]


def load_people(count: int, seed: int) -> None:
    """Put the demo people's items into moto's table as moto stores them (no stream records: the stream is
    not part of this test)."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    from wxloop import demo_people
    from wxloop.adapters.dynamo.codec import marshal

    table = dynamodb_backends["123456789012"]["us-east-1"].get_table(os.environ["TABLE_NAME"])
    for raw in demo_people.generate(count, now=NOW, seed=seed):
        attrs = marshal(raw)
        item = Item.__new__(Item)
        item.hash_key, item.range_key = DynamoType(attrs["pk"]), DynamoType(attrs["sk"])
        item.attrs = LimitedSizeDict()
        dict.update(item.attrs, {k: DynamoType(v) for k, v in attrs.items()})  # sizes checked by the generator
        table.items[item.hash_key][item.range_key] = item


def test_a_20000_person_segment_is_planned_and_released_once_each(aws, fast_moto, monkeypatch):
    from wxloop.adapters import queue
    from wxloop.adapters.dynamo import campaigns as store
    from wxloop.services import campaigns as service

    t0, cpu0 = time.perf_counter(), time.process_time()
    load_people(PEOPLE, seed=11)
    service.push([campaign_doc()], NOW)
    loaded = time.perf_counter()
    tasks: list[dict] = []
    run = service.start("spring", now=NOW, segments=4, enqueue=tasks.extend)
    for task in tasks:
        while service.run_segment("spring", run, task["segment"], time_left=lambda: 1e9) == "more":
            pass
    planned = time.perf_counter()
    queued: list[str] = []
    monkeypatch.setattr(queue, "send_many", lambda jobs, url=None: queued.extend(j["id"] for j in jobs))
    released = service.release_run("spring", run, NOW + 8 * 86400)
    done, cpu = time.perf_counter(), time.process_time() - cpu0
    counts = run_counts("spring", run)
    assert counts["scanned"] == PEOPLE
    assert counts["planned"] + sum(v for k, v in counts.items() if k.startswith("skip_")) == PEOPLE
    assert counts["planned"] > PEOPLE // 4
    assert released == len(queued) == len(set(queued)) == counts["planned"] == counts["released"]
    assert sum(v for k, v in counts.items() if k.startswith("ch_")) == counts["planned"]
    assert sum(v for k, v in counts.items() if k.startswith("h_")) == counts["planned"]
    assert store.get_run("spring", run)["state"] == "done" and not store.has_buckets("spring", run)
    print(f"\n{PEOPLE} people: load {loaded - t0:.1f}s, plan {planned - loaded:.1f}s, "
          f"release {done - planned:.1f}s (wall); {cpu:.1f}s CPU; planned {counts['planned']}")
    assert cpu < BUDGET_SECONDS * PEOPLE / 20000  # CPU: the wall clock of a shared machine measures its neighbours
