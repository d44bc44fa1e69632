"""The push path under attack (issue 8): downgrades, replayed plain queries, colliding or slipping dedupe
keys, a first contact deciding twice, forged identifiers, deep nesting, and the budget checked first."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest

from tests.conftest import ACCOUNTS, OA_APP
from tests.integration.oa_webhook_kit import identities, post
from devstack.simulator import http_event

pytest_plugins = ["tests.integration.oa_webhook_kit"]  # fixtures: app, sim

OPENID = "oUserH000000000000000000001"


@pytest.fixture
def safe_account(monkeypatch):
    """The test OA as configured in production: a key and no ``mode`` (so safe)."""
    doc = json.loads(json.dumps(ACCOUNTS))
    doc["accounts"][OA_APP].pop("mode", None)
    monkeypatch.setenv("WECHAT_ACCOUNTS", json.dumps(doc))


@pytest.mark.parametrize("strip", [("encrypt_type", "msg_signature"), ("msg_signature",)])
def test_given_a_safe_account_when_a_push_comes_unencrypted_then_403_and_nothing_written(
        aws, app, context, sim, safe_account, strip):
    forged = sim.push(sim.event("oForged0000000000000000001", "unsubscribe", key=""), "plain")
    query = {k: v for k, v in forged.query.items() if k not in strip}
    out = app.lambda_handler(http_event("POST", OA_APP, query, forged.body), context)
    assert out["statusCode"] == 403 and aws.items() == []
    raw = {**query, "encrypt_type": "raw"}
    assert app.lambda_handler(http_event("POST", OA_APP, raw, forged.body), context)["statusCode"] == 403
    assert aws.items() == []


def test_given_a_safe_account_then_an_encrypted_push_is_still_answered(aws, app, context, sim, safe_account):
    out, _ = post(app, context, sim, sim.text(OPENID, "shop"), "safe")
    assert out["statusCode"] == 200 and identities(aws)


def test_given_a_repeated_query_parameter_then_400_and_nothing_written(aws, app, context, sim, safe_account):
    push = sim.push(sim.text(OPENID, "shop"), "safe")
    event = http_event("POST", OA_APP, push.query, push.body)
    event["rawQueryString"] = urlencode(push.query) + "&encrypt_type=raw"
    event["queryStringParameters"]["encrypt_type"] = "aes,raw"  # how API Gateway joins repeats
    out = app.lambda_handler(event, context)
    assert out["statusCode"] == 400 and aws.items() == []


def test_a_mode_that_needs_a_key_is_refused_at_start():
    from wxloop.config import ConfigError, parse_config

    doc = json.loads(json.dumps(ACCOUNTS))
    doc["accounts"][OA_APP]["mode"] = "bogus"
    with pytest.raises(ConfigError, match="mode"):
        parse_config(doc)
    plain = {"kind": "oa", "token": "abcdef", "mode": "safe"}
    with pytest.raises(ConfigError, match="needs an encoding_aes_key"):
        parse_config({"accounts": {OA_APP: plain}})


def test_signatures_are_compared_in_constant_time(sim, monkeypatch):
    import hmac

    from wxloop.protocol import push as push_mod

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(push_mod.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    endpoint = push_mod.PushEndpoint(OA_APP, sim.token, sim.aes_key)
    p = sim.push(sim.text(OPENID, "hi"), "safe")
    endpoint.open(p.query, p.body.encode())
    assert len(calls) == 2  # signature and msg_signature


# --- plain mode: a signed query carries one body ------------------------------------------------------


def test_given_plain_mode_when_a_captured_query_carries_another_body_then_403_and_no_write(aws, app, context, sim):
    push = sim.push(sim.text(OPENID, "hi", msg_id=1), "plain")
    assert app.lambda_handler(http_event("POST", OA_APP, push.query, push.body), context)["statusCode"] == 200
    before = aws.items()
    forged = sim.text("oForged0000000000000000002", "hi", msg_id=2)
    out = app.lambda_handler(http_event("POST", OA_APP, push.query, forged), context)
    assert out["statusCode"] == 403
    assert [i for i in aws.items() if not i["pk"].startswith("PUSHQ#")] == \
        [i for i in before if not i["pk"].startswith("PUSHQ#")]
    retry = app.lambda_handler(http_event("POST", OA_APP, push.query, push.body), context)
    assert retry["statusCode"] == 200  # the same body again is WeChat's retry


# --- dedupe keys --------------------------------------------------------------------------------------


def _change_event(sim, template: str, status: str, create_time: int) -> str:
    return sim.event(OPENID, "subscribe_msg_change_event", create_time=create_time).replace("</xml>", (
        f"<SubscribeMsgChangeEvent><List><TemplateId><![CDATA[{template}]]></TemplateId>"
        f"<SubscribeStatusString><![CDATA[{status}]]></SubscribeStatusString></List>"
        "</SubscribeMsgChangeEvent></xml>"))


def test_two_different_events_in_the_same_second_are_both_recorded(aws, app, context, sim):
    t = int(time.time())
    post(app, context, sim, sim.text(OPENID, "hi"), "safe")
    post(app, context, sim, _change_event(sim, "T1", "reject", t), "safe")
    post(app, context, sim, _change_event(sim, "T2", "reject", t), "safe")
    [ident] = identities(aws)
    keys = set().union(*(ident.get(f"dd{i}") or set() for i in range(3)))
    assert len(keys) == 3


def test_event_keys_cover_every_field_in_any_order():
    from wxloop.domain.inbound import event_dedupe_key

    a = {"FromUserName": "o1", "CreateTime": "1", "List": [{"TemplateId": "T1", "S": "a"}]}
    b = {"List": [{"S": "a", "TemplateId": "T1"}], "CreateTime": "1", "FromUserName": "o1"}
    assert event_dedupe_key(a) == event_dedupe_key(b)
    assert event_dedupe_key(a) != event_dedupe_key({**a, "FromUserName": "o2"})
    assert event_dedupe_key(a) != event_dedupe_key({**a, "List": [{"TemplateId": "T2", "S": "a"}]})


def test_rotation_never_clears_a_key_younger_than_the_keep_window_whatever_the_clocks():
    from wxloop.adapters.dynamo.identities import DEDUPE_KEEP_SECONDS, dedupe_rotation

    base = 1_800_000_000 // 3600 * 3600
    for written_at in range(base - 3600, base + 7200, 37):
        written = dedupe_rotation(written_at)[0]
        for lag in range(-(DEDUPE_KEEP_SECONDS - 1), 3600, 41):  # a writer behind or ahead of the first
            assert dedupe_rotation(written_at + lag)[1] != written, (written_at, lag)


def test_wechat_ahead_of_lambda_across_the_hour_then_the_retry_is_still_a_duplicate(aws, monkeypatch):
    from wxloop.adapters.dynamo import identities as store
    from wxloop.domain.inbound import Inbound

    hour = (int(time.time()) // 3600 + 1) * 3600
    clock = {"now": hour - 5}
    monkeypatch.setattr(store.time, "time", lambda: clock["now"])

    def deliver(create_time, msg_id):
        inb = Inbound(openid=OPENID, to_user="gh_test", msg_type="text", create_time=create_time,
                      msg_id=str(msg_id))
        kw = {"now": clock["now"], "event": {"id": inb.dedupe_key}, "reply": None}
        touch = store.touch_identity(OA_APP, inb, **kw)
        if touch.status == "unknown":
            touch = store.create_identity(OA_APP, inb, first_touch={"channel": "oa"}, **kw)
        return touch.status

    assert deliver(hour + 5, 1) == "recorded"  # WeChat's CreateTime 10 s ahead, across the hour
    clock["now"] = hour - 4
    assert deliver(hour - 4, 2) == "recorded"  # a newer push, stamped before the hour
    clock["now"] = hour + 10
    assert deliver(hour + 5, 1) == "duplicate"  # WeChat's retry of the first


# --- identifiers, nesting -----------------------------------------------------------------------------


@pytest.mark.parametrize("openid", ["o]]><x>", "o user", "o" * 65, "o\u00e9"])
def test_a_forged_openid_gets_success_and_nothing_written(aws, app, context, sim, openid):
    xml = sim.text("oPlaceholder", "hi").replace("oPlaceholder", openid)
    out, _ = post(app, context, sim, xml, "safe")
    assert (out["statusCode"], out["body"]) == (200, "success") and aws.items() == []


def test_a_push_nested_2000_deep_gets_success_and_nothing_written(aws, app, context, sim):
    deep = "<a>" * 2000 + "x" + "</a>" * 2000
    xml = sim.event(OPENID, "VIEW", key="https://example.com").replace("</xml>", f"<Url>{deep}</Url></xml>")
    out, _ = post(app, context, sim, xml, "safe")
    assert (out["statusCode"], out["body"]) == (200, "success") and aws.items() == []


# --- deciding: once for a first contact, and only within the budget -----------------------------------


@pytest.fixture
def decisions(monkeypatch):
    from wxloop.services import rules_cache

    calls = []
    real = rules_cache.current

    class Counting:
        def __init__(self, rules):
            self._rules = rules

        def decide(self, *a, **k):
            calls.append(k.get("first_time"))
            return self._rules.decide(*a, **k)

    monkeypatch.setattr(rules_cache, "current", lambda app_id: Counting(real(app_id)))
    return calls


def test_a_first_contact_text_is_decided_once(aws, app, context, sim, decisions):
    out, _ = post(app, context, sim, sim.text(OPENID, "shop"), "safe")
    assert out["statusCode"] == 200 and decisions == [False]


def test_a_first_follow_is_decided_again_for_its_first_welcome(aws, app, context, sim, decisions):
    post(app, context, sim, sim.subscribe(OPENID), "safe")
    assert decisions == [False, True]


def test_past_the_budget_no_rule_is_matched(aws, app, context, sim, decisions):
    push = sim.push(sim.text(OPENID, "shop"), "safe")
    late = http_event("POST", OA_APP, push.query, push.body, time_epoch_ms=int(time.time() * 1000) - 4500)
    out = app.lambda_handler(late, context)
    assert (out["statusCode"], out["body"]) == (200, "success") and decisions == []
    assert [j["kind"] for j in aws.jobs()] == ["touch"]
