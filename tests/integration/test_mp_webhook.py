"""The MP message push webhook through its real handler (moto): official samples in XML and JSON in every
mode, customer-service answers queued as jobs, transfer_customer_service, the MP's own windows, and
subscribe-message events feeding the credit ledger."""

from __future__ import annotations

import json

import pytest
import xmltodict

from devstack.simulator import http_event
from tests.conftest import MP_APP
from tests.integration.mp_webhook_kit import (
    SAMPLES,
    configure,
    cs_jobs,
    identities,
    post,
    sample,
    simulator,
)

pytest_plugins = ["tests.integration.mp_webhook_kit"]  # fixture: mp_app

OPENID = "oMpUser0000000000000000001"
MODES = ("plain", "compat", "safe")


@pytest.fixture
def any_mode(monkeypatch):
    """The MP accepts plain and encrypted pushes (mode plain, with a key): tests post every mode."""
    configure(monkeypatch, mode="plain")


def test_given_a_signed_get_then_echostr_is_echoed(aws, mp_app, context, any_mode):
    sim = simulator()
    out = mp_app.lambda_handler(http_event("GET", MP_APP, sim.verify_query("echo-1"), kind="mp"), context)
    assert (out["statusCode"], out["body"]) == (200, "echo-1")
    forged = {**sim.verify_query("echo-2"), "signature": "0" * 40}
    out = mp_app.lambda_handler(http_event("GET", MP_APP, forged, kind="mp"), context)
    assert out["statusCode"] == 403 and aws.items() == []


def test_an_oa_app_id_is_not_an_mp_endpoint(aws, mp_app, context, any_mode):
    from tests.conftest import OA_APP

    sim = simulator()
    out = mp_app.lambda_handler(http_event("GET", OA_APP, sim.verify_query(), kind="mp"), context)
    assert out["statusCode"] == 404


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.*") if p.suffix in (".xml", ".json")))
def test_given_an_official_sample_in_any_mode_then_success_and_recorded(aws, mp_app, context, any_mode, name, mode):
    sim = simulator("json" if name.endswith(".json") else "xml")
    out, push = post(mp_app, context, sim, sample(name), mode)
    assert out["statusCode"] == 200
    assert out["body"] == "success"  # an MP never answers a message passively (no rule transfers these)
    [identity] = identities(aws)
    kind = name.rsplit(".", 1)[0].removesuffix("_one")
    expected = f"mp.event.{kind}" if kind.startswith(("subscribe_msg", "user_enter")) else f"mp.{kind}"
    assert identity["ev"]["type"] == expected
    assert identity["ev"]["app"] == MP_APP


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_the_same_push_reads_the_same_in_both_formats(aws, mp_app, context, any_mode, fmt):
    from wxloop.protocol import mp_push
    from wxloop.protocol.push import Opened

    inb = mp_push.parse(Opened(sample(f"text.{fmt}").encode(), False, "n", "1"))
    assert (inb.openid, inb.msg_type, inb.msg_id, inb.content, inb.create_time) == (
        "fromUser", "text", "1234567890123456", "this is a test", 1482048670)
    popup = mp_push.parse(Opened(sample(f"subscribe_msg_popup_event.{fmt}").encode(), False, "n", "1"))
    assert [s["template_id"] for s in popup.detail["subscriptions"]] == [
        "hD-ixGOhYmUfjOnI8MCzQMPshzGVeux_2vBDvkvcs", "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc"]
    one = mp_push.parse(Opened(sample(f"subscribe_msg_popup_event_one.{fmt}").encode(), False, "n", "1"))
    assert one.detail["subscriptions"] == [{"template_id": "hD-ixGOhYmUfjOnI8MCzQMPshzGVeux_2vBDvkvcs",
                                            "status": "accept", "popup_scene": "2"}]


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("mode", MODES)
def test_given_a_text_then_the_rule_answer_is_queued_as_an_mp_cs_message(aws, mp_app, context, any_mode, fmt, mode):
    sim = simulator(fmt)
    out, _ = post(mp_app, context, sim, sim.text(OPENID, "shop"), mode)
    assert (out["statusCode"], out["body"]) == (200, "success")
    [identity] = identities(aws)
    assert identity["win_msg_at"] and identity["win_msg_sent"] == 0  # the 48-hour window opened
    [job] = cs_jobs(aws)
    assert (job["platform"], job["app_id"], job["openid"]) == ("mp", MP_APP, OPENID)
    assert job["message"]["msgtype"] == "text" and "data-miniprogram-appid" in job["message"]["text"]["content"]


def test_a_repeated_push_is_answered_once(aws, mp_app, context, any_mode):
    sim = simulator()
    body = sim.text(OPENID, "shop")
    first, _ = post(mp_app, context, sim, body, "safe")
    again, _ = post(mp_app, context, sim, body, "safe")
    assert first["body"] == again["body"] == "success"
    assert len(cs_jobs(aws)) == 1


def test_a_card_rule_is_sent_as_a_miniprogrampage(aws, mp_app, context, any_mode):
    sim = simulator()
    post(mp_app, context, sim, sim.text(OPENID, "card"))
    [job] = cs_jobs(aws)
    assert job["message"]["msgtype"] == "miniprogrampage"
    assert job["message"]["miniprogrampage"]["pagepath"] == "pages/index/index"


def test_a_personal_reply_is_rendered_with_the_persons_values(aws, mp_app, context, any_mode):
    sim = simulator()
    post(mp_app, context, sim, sim.text(OPENID, "hello"))  # a known person first
    aws.jobs()
    post(mp_app, context, sim, sim.text(OPENID, "points"))
    [job] = cs_jobs(aws)
    assert job["message"]["text"]["content"] == "You have 0 points"


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("mode", MODES)
def test_a_transfer_rule_answers_transfer_customer_service_in_the_push_format(
        aws, mp_app, context, any_mode, fmt, mode):
    sim = simulator(fmt)
    out, push = post(mp_app, context, sim, sim.text(OPENID, "human"), mode)
    assert out["statusCode"] == 200
    assert out["headers"]["Content-Type"].startswith(f"application/{fmt}")
    if mode != "plain":  # encrypted, in the push's own envelope
        envelope = json.loads(out["body"]) if fmt == "json" else xmltodict.parse(out["body"])["xml"]
        assert set(envelope) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
    plain = sim.open_reply(out["body"], push)
    reply = json.loads(plain) if fmt == "json" else xmltodict.parse(plain)["xml"]
    assert reply["MsgType"] == "transfer_customer_service"
    assert (reply["ToUserName"], reply["FromUserName"]) == (OPENID, sim.account)
    assert cs_jobs(aws) == []
    again, push2 = post(mp_app, context, sim, sim.text(OPENID, "human", msg_id=int(reply["CreateTime"])), mode)
    assert again["statusCode"] == 200


def test_a_retry_of_a_transferred_push_gets_the_same_answer(aws, mp_app, context, any_mode):
    sim = simulator()
    body = sim.text(OPENID, "human")
    first, push1 = post(mp_app, context, sim, body)
    again, push2 = post(mp_app, context, sim, body)
    assert json.loads(sim.open_reply(again["body"], push2))["MsgType"] == "transfer_customer_service"
    assert first["body"] == again["body"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_entering_the_session_opens_the_short_window_and_asks_the_rules(aws, mp_app, context, any_mode, fmt):
    sim = simulator(fmt)
    out, _ = post(mp_app, context, sim, sim.enter(OPENID, "from-card"), "safe")
    assert out["body"] == "success"
    [identity] = identities(aws)
    assert identity["win_evt_at"] and "win_msg_at" not in identity
    [job] = cs_jobs(aws)
    assert job["message"] == {"msgtype": "text", "text": {"content": "Hi, how can we help?"}}
    post(mp_app, context, sim, sim.enter(OPENID, "elsewhere"), "safe")
    assert cs_jobs(aws) == []  # no rule listens to this session-from: nothing to say


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_subscribe_events_feed_the_credit_ledger(aws, mp_app, context, any_mode, fmt):
    sim = simulator(fmt)
    accept, reject = "TPL_ACCEPT_1", "TPL_REJECT_1"
    post(mp_app, context, sim, sim.subscribe_msg(OPENID, "subscribe_msg_popup_event", [
        {"TemplateId": accept, "SubscribeStatusString": "accept", "PopupScene": "0"},
        {"TemplateId": reject, "SubscribeStatusString": "reject", "PopupScene": "0"}]))
    post(mp_app, context, sim, sim.subscribe_msg(OPENID, "subscribe_msg_popup_event", [
        {"TemplateId": accept, "SubscribeStatusString": "accept", "PopupScene": "0"}], create_time=1))
    aws.run_stream()
    assert _credit(aws, accept) == 2 and _credit(aws, reject) == 0
    post(mp_app, context, sim, sim.subscribe_msg(OPENID, "subscribe_msg_sent_event", [
        {"TemplateId": accept, "MsgID": "170000001", "ErrorCode": "43101", "ErrorStatus": "user refuse to accept"}]))
    aws.run_stream()
    assert _credit(aws, accept) == 0  # 43101: WeChat holds no credit, ours closes too


def _credit(aws, template_id: str) -> int | None:
    for item in aws.items():
        if item["pk"] == f"ID#{MP_APP}#{OPENID}" and item["sk"] == f"SUB#{template_id}":
            return int(item["remaining"])
    return None


@pytest.mark.parametrize("body", [
    lambda sim: sim.message(OPENID, "voice", {"MediaId": "m"}),
    lambda sim: sim.event(OPENID, "wxa_media_check", extra={"isrisky": 0}),
    lambda sim: sim.event(OPENID, "brand_new_event_type"),
])
def test_an_unknown_type_gets_success_and_writes_nothing(aws, mp_app, context, any_mode, body):
    sim = simulator()
    out, _ = post(mp_app, context, sim, body(sim), "safe")
    assert (out["statusCode"], out["body"]) == (200, "success")
    assert aws.items() == []
