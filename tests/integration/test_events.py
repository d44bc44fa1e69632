"""The sample events in events/ (for ``sam local invoke``) against the real handler, moto behind it."""

from __future__ import annotations

import importlib.util
import json
import time

import pytest
import xmltodict
from wechatpy.crypto import WeChatCrypto

from tests.conftest import ROOT, load_handler

EVENTS = ROOT / "events"
ENV_FILE = EVENTS / "env.json"
FUNCTION = "OaWebhookFunction"
SAMPLES = sorted(p.name for p in EVENTS.glob("oa-*.json"))  # mp-*.json: tests/integration/test_mp_events.py


def sam_env(path=ENV_FILE) -> dict:
    """The variables ``sam local invoke --env-vars`` gives the function: "Parameters", then its own."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {**doc.get("Parameters", {}), **doc.get(FUNCTION, {})}


def generator():
    spec = importlib.util.spec_from_file_location("wxloop_events_generate", EVENTS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def invoke(aws, context, monkeypatch):
    """Run one event file through the handler with env.json's variables (moto's table and queue kept)."""
    for name, value in sam_env().items():
        if name not in ("TABLE_NAME", "QUEUE_URL"):
            monkeypatch.setenv(name, value)
    from wxloop import settings

    settings.settings.cache_clear()
    app = load_handler("oa_webhook")

    def run(path):
        event = json.loads(path.read_text(encoding="utf-8"))
        return event, app.lambda_handler(event, context)

    return run


def account() -> tuple[str, dict]:
    accounts = json.loads(sam_env()["WECHAT_ACCOUNTS"])["accounts"]
    app_id = next(k for k, v in accounts.items() if v["kind"] == "oa")
    return app_id, accounts[app_id]


def pushed(event) -> dict:
    """The push inside a POST event, decrypted when it is encrypted."""
    doc = xmltodict.parse(event["body"])["xml"]
    if "Encrypt" not in doc:
        return doc
    app_id, acct = account()
    q = event["queryStringParameters"]
    crypto = WeChatCrypto(acct["token"], acct["encoding_aes_key"], app_id)
    return xmltodict.parse(crypto.decrypt_message(event["body"], q["msg_signature"], q["timestamp"], q["nonce"]))["xml"]


def reply(event, out) -> dict:
    """The passive reply XML, decrypted (its signature checked) when the push was encrypted."""
    assert out["statusCode"] == 200 and out["headers"]["Content-Type"].startswith("application/xml")
    doc = xmltodict.parse(out["body"])["xml"]
    if event["queryStringParameters"].get("encrypt_type") != "aes":
        assert "Encrypt" not in doc
        return doc
    app_id, acct = account()
    crypto = WeChatCrypto(acct["token"], acct["encoding_aes_key"], app_id)
    return xmltodict.parse(crypto.decrypt_message(out["body"], doc["MsgSignature"], doc["TimeStamp"], doc["Nonce"]))["xml"]


def identities(aws):
    return [i for i in aws.items() if i["pk"].startswith("ID#")]


def check_verify(aws, event, out):
    assert event["requestContext"]["http"]["method"] == "GET"
    assert out["statusCode"] == 200
    assert out["body"] == event["queryStringParameters"]["echostr"]
    assert out["headers"]["Content-Type"].startswith("text/plain")
    assert aws.items() == []


def check_shop_text(aws, event, out):
    push = pushed(event)
    assert push["MsgType"] == "text" and push["Content"] == "shop"
    answer = reply(event, out)
    assert answer["MsgType"] == "text"
    assert answer["ToUserName"] == push["FromUserName"] and answer["FromUserName"] == push["ToUserName"]
    assert 'data-miniprogram-appid="wxabcdef1234567890"' in answer["Content"]  # the "shop" rule's Mini Program link
    [ident] = identities(aws)
    assert ident["openid"] == push["FromUserName"] and ident["ev"]["detail"]["rule"] == "shop"


def check_subscribe_scene(aws, event, out):
    push = pushed(event)
    assert push["Event"] == "subscribe" and push["EventKey"] == "qrscene_store_12"
    answer = reply(event, out)
    assert answer["MsgType"] == "text" and answer["ToUserName"] == push["FromUserName"]
    assert answer["Content"] == "Welcome to Demo OA, first time here"  # tests/fixtures/rules.yaml
    [ident] = identities(aws)
    assert ident["openid"] == push["FromUserName"] and ident["following"] is True
    assert ident["last_scene"] == "store_12" and ident["ev"]["detail"]["scene"] == "store_12"
    [person] = [i for i in aws.items() if i["sk"] == "PROFILE"]
    assert person["first_touch"]["scene"] == "store_12"
    assert [j["kind"] for j in aws.jobs()] == ["user_info"]


CHECKS = {
    "oa-verify-get.json": check_verify,
    "oa-text-plain.json": check_shop_text,
    "oa-text-safe.json": check_shop_text,
    "oa-subscribe-scene.json": check_subscribe_scene,
}


def test_every_sample_event_has_a_check():
    assert SAMPLES == sorted(CHECKS)


@pytest.mark.parametrize("name", SAMPLES)
def test_given_a_sample_event_when_invoked_with_env_json_then_the_handler_answers_it(aws, invoke, name):
    event, out = invoke(EVENTS / name)
    assert event["requestContext"]["timeEpoch"] < (time.time() - 86400) * 1000, "samples are old on purpose"
    CHECKS[name](aws, event, out)


def test_safe_mode_samples_are_encrypted():
    for name in ("oa-text-safe.json", "oa-subscribe-scene.json"):
        event = json.loads((EVENTS / name).read_text(encoding="utf-8"))
        q = event["queryStringParameters"]
        assert q["encrypt_type"] == "aes" and q["msg_signature"]
        assert set(xmltodict.parse(event["body"])["xml"]) == {"ToUserName", "Encrypt"}


def test_env_json_is_sam_env_vars_format_with_demo_values_only():
    doc = json.loads(ENV_FILE.read_text(encoding="utf-8"))
    assert set(doc) == {FUNCTION, "MpWebhookFunction", "Parameters"}
    assert all(isinstance(v, str) for section in doc.values() for v in section.values())
    env = sam_env()
    assert env["WECHAT_CLOCK_SKEW_SECONDS"] == "0"
    assert json.loads(env["WECHAT_ACCOUNTS"]) == json.loads((ROOT / "config" / "demo-accounts.json").read_text())


def test_sam_local_passes_every_env_json_variable_to_the_function():
    from devstack.table import load_template

    template = load_template()
    declared = set(template["Globals"]["Function"]["Environment"]["Variables"])
    declared |= set(template["Resources"][FUNCTION]["Properties"].get("Environment", {}).get("Variables", {}))
    assert set(sam_env()) - declared == set()


def test_generate_py_writes_exactly_the_files_in_events(tmp_path):
    written = generator().write(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in EVENTS.glob("*.json"))
    for path in written:
        assert path.read_bytes() == (EVENTS / path.name).read_bytes(), (
            f"events/{path.name} is stale: run python events/generate.py")


# --- the time budget of an event with an old timeEpoch ------------------------------------------------


@pytest.mark.parametrize("age,expected_left", [
    (0.0, 4.0),
    (1.5, 2.5),
    (4.5, -0.5),  # a real request that waited too long: the budget is spent (the push is queued)
    (86400.0 * 365, 4.0),  # a sample or replayed event: counted from now
    (-3600.0, 4.0),  # a clock ahead of ours
    (None, 4.0),
])
def test_deadline_counts_from_timeepoch_unless_it_is_implausible(age, expected_left):
    from wxloop.services.oa_push import deadline_for

    epoch = None if age is None else (time.time() - age) * 1000
    left = deadline_for(epoch) - time.monotonic()
    assert left == pytest.approx(expected_left, abs=0.05)
