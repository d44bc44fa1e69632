"""The table stream turns each push left on an identity into one journey record (idempotent on replay)."""

from __future__ import annotations

import time

from devstack.simulator import Simulator, http_event
from tests.conftest import OA_AES_KEY, OA_APP, OA_TOKEN, load_handler

pytest_plugins = ["tests.integration.conftest_wechat"]  # fixtures: fake_wechat


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
    from wxloop.adapters.dynamo import journey as journey_store

    real = journey_store.put_journey_event

    def flaky(uid, event, *, ttl):
        if event["uid"] == records[0]["dynamodb"]["NewImage"]["uid"]["S"]:
            raise RuntimeError("throttled")
        return real(uid, event, ttl=ttl)

    monkeypatch.setattr(journey_store, "put_journey_event", flaky)
    out = stream.lambda_handler({"Records": records}, context)
    assert out == {"batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}


def _subscribe_msg(sim, openid, items, *, create_time, event="subscribe_msg_popup_event"):
    container = {"subscribe_msg_popup_event": "SubscribeMsgPopupEvent",
                 "subscribe_msg_change_event": "SubscribeMsgChangeEvent"}[event]
    lists = "".join(f"<List><TemplateId><![CDATA[{t}]]></TemplateId><SubscribeStatusString><![CDATA[{s}]]>"
                    f"</SubscribeStatusString></List>" for t, s in items)
    return sim.event(openid, event, create_time=create_time).replace("</xml>", f"<{container}>{lists}</{container}></xml>")


def _credits(aws, openid):
    return {i["sk"][4:]: i["remaining"] for i in aws.items() if i["pk"] == f"ID#{OA_APP}#{openid}"
            and i["sk"].startswith("SUB#")}


def test_given_subscribe_message_events_then_credits_are_kept_once_per_event(aws, context):
    """A popup's accept adds one send per template, a reject (popup or settings change) sets it to 0, and a
    stream record delivered again changes nothing."""
    hook, stream = load_handler("oa_webhook"), load_handler("stream")
    sim = Simulator(OA_APP, OA_TOKEN, OA_AES_KEY)
    t0 = int(time.time())

    def push(xml):
        sent = sim.push(xml, "safe")
        hook.lambda_handler(http_event("POST", OA_APP, sent.query, sent.body), context)

    push(_subscribe_msg(sim, "oS", [("T1", "accept"), ("T2", "reject")], create_time=t0))
    aws.run_stream()
    assert _credits(aws, "oS") == {"T1": 1, "T2": 0}
    push(_subscribe_msg(sim, "oS", [("T1", "accept"), ("T3", "accept")], create_time=t0 + 1))
    aws.run_stream()
    assert _credits(aws, "oS") == {"T1": 2, "T2": 0, "T3": 1}
    # Lambda delivers the whole batch again (e.g. after a timeout): nothing is counted twice
    out = stream.lambda_handler({"Records": aws.stream_records()}, context)
    assert out == {"batchItemFailures": []}
    assert _credits(aws, "oS") == {"T1": 2, "T2": 0, "T3": 1}
    push(_subscribe_msg(sim, "oS", [("T1", "reject"), ("T3", "accept")], create_time=t0 + 2,
                        event="subscribe_msg_change_event"))
    aws.run_stream()
    assert _credits(aws, "oS") == {"T1": 0, "T2": 0, "T3": 1}  # a change event's accept grants nothing
    assert len([i for i in aws.items() if i["sk"].startswith("EV#")]) == 3


def test_given_credits_from_a_popup_then_the_worker_spends_them(aws, fake_wechat, context):
    from wxloop.services import jobs

    hook = load_handler("oa_webhook")
    sim = Simulator(OA_APP, OA_TOKEN, OA_AES_KEY)
    sent = sim.push(_subscribe_msg(sim, "oS", [("T1", "accept")], create_time=int(time.time())), "safe")
    hook.lambda_handler(http_event("POST", OA_APP, sent.query, sent.body), context)
    aws.run_stream()
    job = {"id": "j-s1", "kind": "subscribe_send", "app_id": OA_APP, "openid": "oS", "template_id": "T1",
           "data": {"thing1": {"value": "x"}}}
    assert jobs.run(job, sink=None).detail == "sent"
    second = jobs.run({**job, "id": "j-s2"}, sink=None)
    assert (second.status, second.detail) == ("closed", "credit")
    assert len(fake_wechat.calls("/cgi-bin/message/subscribe/send")) == 1
    assert _credits(aws, "oS") == {"T1": 0}
