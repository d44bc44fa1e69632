"""The EMF metrics provider: what CloudWatch reads from the function's stdout."""

from __future__ import annotations

import io
import json

import pytest
from aws_lambda_powertools.metrics import MetricUnit

from wxloop.metrics import MAX_METRICS, MetricError, OutcomeMetrics


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_flush_writes_one_emf_document_with_every_count():
    out = io.StringIO()
    m = OutcomeMetrics("ns", "svc", stream=out)
    m.add_metric("Replied", "Count", 1)
    m.add_metric("Replied", MetricUnit.Count, 1)
    m.add_metric("Latency", MetricUnit.Milliseconds, 12.5)
    m.flush_metrics()
    [doc] = _lines(out)
    emf = doc["_aws"]["CloudWatchMetrics"][0]
    assert emf["Namespace"] == "ns" and emf["Dimensions"] == [["service"]]
    assert emf["Metrics"] == [{"Name": "Replied", "Unit": "Count"}, {"Name": "Latency", "Unit": "Milliseconds"}]
    assert doc["service"] == "svc" and doc["Replied"] == [1.0, 1.0] and doc["Latency"] == [12.5]
    assert isinstance(doc["_aws"]["Timestamp"], int)
    m.flush_metrics()  # nothing added since: nothing written
    assert len(_lines(out)) == 1


def test_cached_text_matches_the_document_for_changing_sets_and_awkward_names():
    m = OutcomeMetrics("ns", "svc", stream=io.StringIO())
    for names in (["a"], ["a", 'quo"te'], ["a"], ["ünï", "a"]):
        for name in names:
            m.add_metric(name, "Count", 3)
        assert json.loads(m.emf_line(42)) == m.serialize_metric_set(42)
        m.clear_metrics()


def test_more_than_100_names_are_split_across_documents():
    out = io.StringIO()
    m = OutcomeMetrics("ns", "svc", stream=out)
    for i in range(MAX_METRICS + 5):
        m.add_metric(f"m{i}", "Count", 1)
    m.flush_metrics()
    docs = _lines(out)
    assert [len(d["_aws"]["CloudWatchMetrics"][0]["Metrics"]) for d in docs] == [MAX_METRICS, 5]


@pytest.mark.parametrize("name,unit,value", [("", "Count", 1), ("x" * 256, "Count", 1), ("ok", "Parsecs", 1),
                                             ("ok", "Count", "1"), ("ok", "Count", True),
                                             ("ok", "Count", float("nan"))])
def test_invalid_metrics_are_refused(name, unit, value):
    m = OutcomeMetrics("ns", "svc", stream=io.StringIO())
    with pytest.raises(MetricError):
        m.add_metric(name, unit, value)
    assert m.pending == {}


def test_disabled_publishes_nothing(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    out = io.StringIO()
    m = OutcomeMetrics(stream=out)
    m.add_metric("Replied")
    m.flush_metrics()
    assert out.getvalue() == "" and m.pending == {}


def test_log_metrics_flushes_even_when_the_handler_raises():
    out = io.StringIO()
    m = OutcomeMetrics("ns", "svc", stream=out)

    @m.log_metrics
    def handler(event, context):
        m.add_metric("Error")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        handler({}, None)
    assert _lines(out)[0]["Error"] == [1.0]
