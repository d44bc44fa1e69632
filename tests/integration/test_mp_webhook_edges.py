"""The MP push path under attack and under pressure: downgrades, forged signatures and app ids, replayed
plain queries, clock skew, huge, deeply nested or non-UTF-8 bodies, forged ids, the other wire format, the
deadline guard, and the worker spending the MP's own customer-service windows."""

from __future__ import annotations

import json

import pytest

from devstack.simulator import MpSimulator, http_event
from tests.conftest import MP_APP, OA_AES_KEY, OA_APP
from tests.integration.mp_webhook_kit import (
    MP_AES_KEY,
    MP_TOKEN,
    configure,
    cs_jobs,
    identities,
    post,
    simulator,
)

pytest_plugins = ["tests.integration.mp_webhook_kit", "tests.integration.conftest_wechat"]

OPENID = "oMpEdge000000000000000001"


def _send(app, context, query, body):
    return app.lambda_handler(http_event("POST", MP_APP, query, body, kind="mp"), context)


@pytest.mark.parametrize("mode", ["safe", "compat", None])
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_given_an_encrypting_account_when_a_push_comes_unencrypted_then_403_and_nothing_written(
        aws, mp_app, context, monkeypatch, mode, fmt):
    configure(monkeypatch, mode=mode, push_format=fmt)  # None: the default with a key, safe
    sim = simulator(fmt)
    forged = sim.push(sim.text(OPENID, "shop"), "plain")
    assert _send(mp_app, context, forged.query, forged.body)["statusCode"] == 403
    raw = {**forged.query, "encrypt_type": "raw"}
    assert _send(mp_app, context, raw, forged.body)["statusCode"] == 403
    genuine = sim.push(sim.text(OPENID, "shop"), "safe")
    no_msg_signature = {k: v for k, v in genuine.query.items() if k != "msg_signature"}
    assert _send(mp_app, context, no_msg_signature, genuine.body)["statusCode"] == 403
    assert aws.items() == []
    assert _send(mp_app, context, genuine.query, genuine.body)["statusCode"] == 200


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_forged_signatures_other_apps_and_other_tokens_are_refused(aws, mp_app, context, monkeypatch, fmt):
    configure(monkeypatch, mode="safe", push_format=fmt)
    sim = simulator(fmt)
    wrong_token = sim.push(sim.text(OPENID, "shop"), "safe", token="mptoken-of-someone-else")
    assert _send(mp_app, context, wrong_token.query, wrong_token.body)["statusCode"] == 403
    other_app = MpSimulator(OA_APP, MP_TOKEN, MP_AES_KEY, fmt=fmt)  # ciphertext sealed for another app id
    push = other_app.push(other_app.text(OPENID, "shop"), "safe")
    assert _send(mp_app, context, push.query, push.body)["statusCode"] == 403
    other_key = MpSimulator(MP_APP, MP_TOKEN, OA_AES_KEY, fmt=fmt)
    push = other_key.push(other_key.text(OPENID, "shop"), "safe")
    assert _send(mp_app, context, push.query, push.body)["statusCode"] in (200, 403)
    tampered = sim.push(sim.text(OPENID, "shop"), "safe")
    body = tampered.body.replace(tampered.body[-20:-10], "A" * 10)
    assert _send(mp_app, context, tampered.query, body)["statusCode"] in (200, 403)
    assert identities(aws) == []


def test_a_stale_timestamp_is_refused(aws, mp_app, context, monkeypatch):
    configure(monkeypatch, mode="safe")
    sim = simulator()
    push = sim.push(sim.text(OPENID, "shop"), "safe", timestamp=1_000_000_000)
    assert _send(mp_app, context, push.query, push.body)["statusCode"] == 403 and aws.items() == []


def test_a_huge_body_is_413(aws, mp_app, context, monkeypatch):
    configure(monkeypatch, mode="plain")
    sim = simulator()
    out, _ = post(mp_app, context, sim, sim.text(OPENID, "x" * 70_000))
    assert out["statusCode"] == 413 and aws.items() == []


def test_plain_mode_binds_the_signed_query_to_its_first_body(aws, mp_app, context, monkeypatch):
    configure(monkeypatch, mode="plain", key=False)
    sim = simulator()
    push = sim.push(sim.text(OPENID, "hello"), "plain")
    assert _send(mp_app, context, push.query, push.body)["statusCode"] == 200
    before = identities(aws)
    other = sim.text("oSomeoneElse00000000000001", "hello")
    assert _send(mp_app, context, push.query, other)["statusCode"] == 403
    assert identities(aws) == before
    assert _send(mp_app, context, push.query, push.body)["statusCode"] == 200  # WeChat's own retry


@pytest.mark.parametrize("body", [
    b"{not json",
    b"[1, 2, 3]",
    b"\xff\xfe{\x00",
    b'{"a":' * 50 + b"1" + b"}" * 50,
    b"[" * 20000 + b"]" * 20000,
    json.dumps({"ToUserName": "gh_x", "FromUserName": "o]]><evil/>", "CreateTime": 1, "MsgType": "text",
                "Content": "hi", "MsgId": 1}).encode(),
    json.dumps({"ToUserName": "gh_x", "FromUserName": "oUser", "CreateTime": "soon", "MsgType": "text",
                "MsgId": 1}).encode(),
    json.dumps({"ToUserName": "gh_x", "FromUserName": "oUser", "CreateTime": 1, "MsgType": "event",
                "Event": "subscribe_msg_popup_event", "List": [{"TemplateId": str(i)} for i in range(1200)]}).encode(),
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><xml><FromUserName>&a;</FromUserName></xml>',
])
def test_a_signed_but_unreadable_body_gets_success_and_writes_nothing(aws, mp_app, context, monkeypatch, body):
    configure(monkeypatch, mode="plain")
    sim = simulator()
    push = sim.push("", "plain")
    out = _send(mp_app, context, push.query, body.decode("latin-1"))
    assert (out["statusCode"], out["body"]) == (200, "success")
    assert identities(aws) == []


@pytest.mark.parametrize("configured, sent", [("json", "xml"), ("xml", "json")])
def test_a_push_in_the_other_format_is_still_read_and_answered_in_its_own(
        aws, mp_app, context, monkeypatch, configured, sent):
    configure(monkeypatch, mode="safe", push_format=configured)
    sim = simulator(sent)
    out, push = post(mp_app, context, sim, sim.text(OPENID, "human"), "safe")
    assert out["headers"]["Content-Type"].startswith(f"application/{sent}")
    assert "transfer_customer_service" in sim.open_reply(out["body"], push)


def test_when_the_budget_is_gone_the_push_is_queued_and_the_worker_records_it_as_mp(
        aws, mp_app, context, monkeypatch):
    configure(monkeypatch, mode="plain")
    monkeypatch.setenv("PUSH_BUDGET_SECONDS", "1.0")  # below the write reserve: never time to write
    sim = simulator()
    out, _ = post(mp_app, context, sim, sim.text(OPENID, "shop"))
    assert out["body"] == "success" and identities(aws) == []
    [job] = aws.jobs()
    assert (job["kind"], job["platform"]) == ("touch", "mp")
    from wxloop.services.recording import record_later

    assert record_later(job) == "recorded"
    [identity] = identities(aws)
    assert identity["ev"]["type"] == "mp.text"
    assert not any(j.get("kind") == "user_info" for j in identity["ev"].get("jobs", []))  # no OA user/info for an MP


def test_the_worker_spends_the_mp_short_window_two_messages_a_minute(aws, fake_wechat, mp_app, context, monkeypatch):
    from wxloop.services import jobs

    configure(monkeypatch, mode="plain")
    sim = simulator()
    post(mp_app, context, sim, sim.enter(OPENID, "from-card"))
    [job] = cs_jobs(aws)
    outcomes = [str(jobs.run({**job, "id": f"{job['id']}-{n}"}, sink=None)) for n in range(3)]
    assert outcomes == ["ok", "ok", "closed"]  # the MP's session window carries 2, not the OA's 3
    sends = fake_wechat.calls("/cgi-bin/message/custom/send")
    assert len(sends) == 2 and {c["json"]["touser"] for c in sends} == {OPENID}
