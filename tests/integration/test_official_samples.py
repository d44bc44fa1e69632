"""WeChat's own sample pushes (from its developer docs) and a published safe-mode test vector, through the
real handler: accepted, recorded and answered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xmltodict

from devstack.simulator import Simulator, _sign, http_event
from tests.conftest import OA_AES_KEY, OA_APP, OA_TOKEN, load_handler

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "official"


@pytest.fixture
def no_skew(monkeypatch):
    monkeypatch.setenv("WECHAT_CLOCK_SKEW_SECONDS", "0")  # the samples carry timestamps from 2012-2014


@pytest.mark.parametrize("name", sorted(p.stem for p in SAMPLES.glob("*.xml")))
@pytest.mark.parametrize("mode", ["plain", "safe"])
def test_given_an_official_sample_push_then_it_is_accepted_and_recorded(aws, context, no_skew, name, mode):
    app = load_handler("oa_webhook")
    sim = Simulator(OA_APP, OA_TOKEN, OA_AES_KEY)
    xml = (SAMPLES / f"{name}.xml").read_text(encoding="utf-8")
    push = sim.push(xml, mode)
    out = app.lambda_handler(http_event("POST", OA_APP, push.query, push.body), context)
    assert out["statusCode"] == 200
    ident = [i for i in aws.items() if i["pk"].startswith("ID#")]
    assert len(ident) == 1 and ident[0]["openid"] in ("fromUser", "FromUser")
    if out["body"] != "success":
        reply = xmltodict.parse(sim.open_reply(out["body"], push))["xml"]
        assert reply["ToUserName"] == ident[0]["openid"] and reply["FromUserName"] == "toUser"
    if name == "subscribe_qrscene":
        assert ident[0]["last_scene"] == "123123" and ident[0]["following"] is True
    if name == "text":
        assert reply["Content"] == "Default reply: try 'shop'"


def test_given_the_published_safe_mode_vector_then_it_decrypts_and_is_answered_encrypted(aws, context, no_skew, monkeypatch):
    sample = json.loads((SAMPLES / "safe_mode_sample.json").read_text(encoding="utf-8"))
    accounts = {"accounts": {sample["app_id"]: {"kind": "oa", "token": sample["token"],
                                                "encoding_aes_key": sample["encoding_aes_key"]}}}
    monkeypatch.setenv("WECHAT_ACCOUNTS", json.dumps(accounts))
    app = load_handler("oa_webhook")
    query = {"signature": _sign(sample["token"], sample["timestamp"], sample["nonce"]), "timestamp": sample["timestamp"],
             "nonce": sample["nonce"], "encrypt_type": "aes", "msg_signature": sample["msg_signature"]}
    out = app.lambda_handler(http_event("POST", sample["app_id"], query, sample["body"]), context)
    assert out["statusCode"] == 200
    [ident] = [i for i in aws.items() if i["pk"].startswith("ID#")]
    assert ident["openid"] == sample["expected"]["FromUserName"]
    assert "<Encrypt>" in out["body"]
    sim = Simulator(sample["app_id"], sample["token"], sample["encoding_aes_key"])
    from devstack.simulator import Push

    reply = xmltodict.parse(sim.open_reply(out["body"], Push(query, sample["body"], True)))["xml"]
    assert reply["ToUserName"] == "messense" and reply["MsgType"] == "text"
    # one bit off in the signature: rejected, nothing more written
    query["msg_signature"] = sample["msg_signature"][:-1] + "e"
    before = aws.items()
    out = app.lambda_handler(http_event("POST", sample["app_id"], query, sample["body"]), context)
    assert out["statusCode"] == 403 and aws.items() == before
