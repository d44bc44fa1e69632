"""The stream function forwards each batch's journey events to the lake in one call: Firehose (moto) when
deployed, local Parquet under LAKE_PATH for ``make run``; the KPIs then read what it wrote."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from devstack.simulator import Simulator, http_event
from tests.conftest import OA_AES_KEY, OA_APP, OA_TOKEN, load_handler
from wxloop.analytics import lake
from wxloop.analytics.schema import COLUMN_NAMES

pytest_plugins = ["tests.integration.conftest_wechat"]  # fixtures: fake_wechat


@pytest.fixture(autouse=True)
def _fresh_lake():
    lake.reset()
    yield
    lake.reset()


def _pushes(hook, context, t0):
    sim = Simulator(OA_APP, OA_TOKEN, OA_AES_KEY)
    for xml in (sim.subscribe("oJ", "spring", create_time=t0), sim.text("oJ", "my secret words", create_time=t0 + 1),
                sim.text("oK", "hello", create_time=t0 + 2)):
        push = sim.push(xml, "safe")
        hook.lambda_handler(http_event("POST", OA_APP, push.query, push.body), context)


def test_given_a_firehose_stream_when_a_batch_is_processed_then_one_call_carries_every_v1_record(
        aws, context, monkeypatch):
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="wxloop-lake")
    firehose = boto3.client("firehose", region_name="us-east-1")
    firehose.create_delivery_stream(
        DeliveryStreamName="wxloop-journey", DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/fh",
                                            "BucketARN": "arn:aws:s3:::wxloop-lake", "Prefix": "journey/"})
    monkeypatch.setenv("LAKE_STREAM_NAME", "wxloop-journey")
    calls = []
    real = lake.FirehoseWriter._put
    monkeypatch.setattr(lake.FirehoseWriter, "_put", lambda self, blobs: (calls.append(len(blobs)), real(self, blobs)))
    hook, stream = load_handler("oa_webhook"), load_handler("stream")
    _pushes(hook, context, int(time.time()))

    assert stream.lambda_handler({"Records": aws.stream_records()}, context) == {"batchItemFailures": []}

    assert calls == [3]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="wxloop-lake")["Contents"]]
    body = b"".join(s3.get_object(Bucket="wxloop-lake", Key=k)["Body"].read() for k in keys).decode()
    records = [json.loads(line) for line in body.splitlines()]
    assert sorted(r["type"] for r in records) == ["oa.event.subscribe", "oa.text", "oa.text"]
    assert all(set(r) == set(COLUMN_NAMES) and r["platform"] == "oa" and r["by_user"] for r in records)
    assert len({r["person"] for r in records}) == 2
    sub = next(r for r in records if r["type"] == "oa.event.subscribe")
    assert sub["channel"] == "spring" and json.loads(sub["detail"]) == {"scene": "spring"}
    assert "secret" not in body and "oJ" not in body, "never message content nor openids"


def test_given_a_local_lake_when_the_stream_runs_then_the_kpis_read_it(aws, context, monkeypatch, tmp_path):
    pytest.importorskip("duckdb")
    from wxloop.analytics import engines, kpi

    monkeypatch.setenv("LAKE_PATH", str(tmp_path))
    hook, stream = load_handler("oa_webhook"), load_handler("stream")
    _pushes(hook, context, int(time.time()))
    records = aws.stream_records()
    stream.lambda_handler({"Records": records}, context)
    stream.lambda_handler({"Records": records}, context)  # Lambda's retry: written twice, counted once
    assert len(list(tmp_path.glob("journey/dt=*/*.parquet"))) == 2

    today = (datetime.now(UTC) + timedelta(hours=8)).date()
    engine = engines.DuckDBEngine(str(tmp_path))
    params = kpi.KpiParams(today - timedelta(days=1), today)
    weeks = engine.query(kpi.render("cross_platform_share", params))
    assert sum(w["active_persons"] for w in weeks) == 2
    assert engine.query(kpi.render("time_to_conversion", params))[0]["persons"] == 2


def test_given_the_lake_is_down_then_the_batch_still_succeeds_and_the_loss_is_counted(aws, context, monkeypatch):
    import io

    monkeypatch.setenv("LAKE_STREAM_NAME", "wxloop-journey")  # no such stream in moto: every call fails
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    hook, stream = load_handler("oa_webhook"), load_handler("stream")
    out = io.StringIO()
    stream.metrics._stream = out
    _pushes(hook, context, int(time.time()))

    assert stream.lambda_handler({"Records": aws.stream_records()}, context) == {"batchItemFailures": []}

    assert len([i for i in aws.items() if i["sk"].startswith("EV#")]) == 3  # the table keeps the journey
    emf = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    assert [d["LakeRecordsFailed"] for d in emf if "LakeRecordsFailed" in d] in ([3], [[3]])


class _Firehose:
    def __init__(self, fail_first: int) -> None:
        self.fail_first, self.calls = fail_first, []

    def put_record_batch(self, DeliveryStreamName, Records):  # noqa: N803 (botocore's names)
        self.calls.append(len(Records))
        failed = min(self.fail_first, len(Records))
        self.fail_first -= failed
        return {"FailedPutCount": failed,
                "RequestResponses": [{"ErrorCode": "ServiceUnavailableException"} if i < failed else {"RecordId": "x"}
                                     for i in range(len(Records))]}


def _records(n):
    return [{"event_id": f"e{i}", "ts": 1_700_000_000_000} for i in range(n)]


def test_given_records_failed_by_firehose_then_only_they_are_sent_again():
    client = _Firehose(fail_first=2)
    assert lake.FirehoseWriter("s", client).write(_records(5)) == 5
    assert client.calls == [5, 2]


def test_given_firehose_keeps_failing_then_the_batch_fails():
    client = _Firehose(fail_first=10**6)
    with pytest.raises(lake.LakeError, match="not accepted"):
        lake.FirehoseWriter("s", client).write(_records(3))
    assert client.calls == [3, 3, 3]


def test_a_large_batch_is_split_into_calls_firehose_accepts():
    client = _Firehose(fail_first=0)
    lake.FirehoseWriter("s", client).write(_records(1201))
    assert client.calls == [500, 500, 201]


def test_an_event_without_a_platform_is_kept_out_of_the_lake_and_the_rest_goes(tmp_path):
    lake.configure(lake.local_writer(tmp_path))
    sent = lake.forward([("u1", {"id": "a", "type": "partner.first_order", "at": 1_700_000_000}),
                         ("u1", {"id": "b", "type": "mp.launch", "at": 1_700_000_000})])
    assert sent == 1
