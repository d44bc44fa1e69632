"""The table stream turns each push left on an identity into one journey record (idempotent on replay)."""

from __future__ import annotations

import time

from tests.conftest import OA_AES_KEY, OA_APP, OA_TOKEN, load_handler
from wxloop.local.simulator import Simulator, http_event


def test_given_pushes_when_the_stream_is_processed_then_one_journey_record_each(aws, context):
    hook, stream = load_handler("oa_webhook"), load_handler("stream")
    sim = Simulator(OA_APP, OA_TOKEN, OA_AES_KEY)
    t0 = int(time.time())
    pushes = [sim.subscribe("oJ", "spring", create_time=t0), sim.text("oJ", "shop", create_time=t0 + 1),
              sim.event("oJ", "VIEW", key="https://example.com/x", create_time=t0 + 2)]
    for xml in pushes:
        push = sim.push(xml, "safe")
        hook.lambda_handler(http_event("POST", OA_APP, push.query, push.body), context)
        hook.lambda_handler(http_event("POST", OA_APP, push.query, push.body), context)  # WeChat's retry
    records = aws.stream_records()
    out = stream.lambda_handler({"Records": records}, context)
    assert out == {"batchItemFailures": []}
    uid = next(i["uid"] for i in aws.items() if i["pk"].startswith("ID#"))
    events = sorted((i for i in aws.items() if i["sk"].startswith("EV#")), key=lambda i: i["sk"])
    assert [e["type"] for e in events] == ["oa.event.subscribe", "oa.text", "oa.event.view"]
    assert all(e["pk"] == f"USER#{uid}" for e in events)
    assert events[0]["detail"]["scene"] == "spring" and events[1]["detail"]["rule"] == "shop"
    assert events[2]["detail"]["event_key"] == "https://example.com/x"
    assert all(abs(e["ttl"] - (e["at"] + 180 * 86400)) <= 1 for e in events)
    allowed = {"scene", "rule", "event_key", "Url", "MenuId", "Ticket", "subscriptions"}
    assert all(set(e["detail"]) <= allowed for e in events), "journey records never keep message content"
    # a replay of the same batch (Lambda retries) writes nothing new
    stream.lambda_handler({"Records": records}, context)
    assert len([i for i in aws.items() if i["sk"].startswith("EV#")]) == 3


def test_given_a_failing_record_then_only_it_is_reported_for_retry(aws, context, monkeypatch):
    hook, stream = load_handler("oa_webhook"), load_handler("stream")
    sim = Simulator(OA_APP, OA_TOKEN, OA_AES_KEY)
    for i, who in enumerate(["oA", "oB"]):
        push = sim.push(sim.text(who, "hello"), "plain")
        hook.lambda_handler(http_event("POST", OA_APP, push.query, push.body), context)
    records = [r for r in aws.stream_records() if r["eventName"] == "INSERT" and r["dynamodb"]["Keys"]["sk"]["S"] == "ID"]
    assert len(records) == 2
    from wxloop.adapters import repository

    real = repository.put_journey_event

    def flaky(uid, event, *, ttl):
        if event["uid"] == records[0]["dynamodb"]["NewImage"]["uid"]["S"]:
            raise RuntimeError("throttled")
        return real(uid, event, ttl=ttl)

    monkeypatch.setattr(repository, "put_journey_event", flaky)
    out = stream.lambda_handler({"Records": records}, context)
    assert out == {"batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}
