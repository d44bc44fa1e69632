"""POST /partner/{app_id}/events and /points through the handler: signature, freshness, replay, idempotency,
points never below zero; nothing is written before the signature holds."""

from __future__ import annotations

import json
import secrets
import time

import pytest

from tests.conftest import ACCOUNTS, MP_APP, load_handler
from tests.integration.test_rewards import REWARDS_DOC, person, ref_of

KEY_ID, SECRET = "brand1", "partner-secret-0123456789abcdefghijkl"


@pytest.fixture
def partner(aws, monkeypatch):
    from wxloop.adapters.dynamo import rewards as store
    from wxloop.services import rewards

    monkeypatch.setenv("WECHAT_ACCOUNTS", json.dumps({**ACCOUNTS, "partner_keys": {KEY_ID: SECRET}}))
    store.put_reward_config(REWARDS_DOC, version="1", now=int(time.time()))
    rewards.reset()
    yield load_handler("partner_api")
    rewards.reset()


def signed(path: str, body: dict | str, *, secret: str = SECRET, key_id: str = KEY_ID, ts: int | None = None,
           nonce: str | None = None, idem: str | None = None) -> dict:
    from wxloop.services.partner_api import signature

    raw = body if isinstance(body, str) else json.dumps(body)
    ts_s, nonce = str(int(time.time()) if ts is None else ts), nonce or secrets.token_hex(12)
    idem = idem or secrets.token_hex(8)
    headers = {"x-wxloop-key": key_id, "x-wxloop-timestamp": ts_s, "x-wxloop-nonce": nonce,
               "idempotency-key": idem,
               "x-wxloop-signature": signature(secret, "POST", path, ts_s, nonce, idem, raw.encode())}
    return {"version": "2.0", "rawPath": path, "headers": headers, "body": raw, "isBase64Encoded": False,
            "requestContext": {"http": {"method": "POST", "path": path}, "requestId": "r1"}}


def send(handler, context, event) -> tuple[int, dict]:
    out = handler.lambda_handler(event, context)
    return out["statusCode"], json.loads(out["body"])


EVENTS, POINTS = f"/partner/{MP_APP}/events", f"/partner/{MP_APP}/points"


def test_a_signed_first_order_rewards_the_inviter_and_a_refund_reverses(aws, partner, context):
    a = person("oPA", at=int(time.time()) - 5000)
    b = person("oPB")
    from wxloop.services import rewards

    assert rewards.attribute(MP_APP, b, ref=ref_of(a, "first-order")) == "pending"
    status, doc = send(partner, context, signed(EVENTS, {"event": "first_order", "openid": "oPB"}))
    assert (status, doc) == (200, {"event": "first_order", "outcome": "rewarded"})
    status, doc = send(partner, context, signed(EVENTS, {"event": "order_refunded", "openid": "oPB"}))
    assert doc["outcome"] == "reversed"


def test_bad_signature_stale_timestamp_unknown_key_and_missing_headers_write_nothing(aws, partner, context):
    before = len(aws.items())
    body = {"event": "first_order", "openid": "oNobody"}
    assert send(partner, context, signed(EVENTS, body, secret="x" * 40))[0] == 403
    assert send(partner, context, signed(EVENTS, body, ts=int(time.time()) - 301))[0] == 403
    assert send(partner, context, signed(EVENTS, body, key_id="other"))[0] == 401
    event = signed(EVENTS, body)
    event["body"] = json.dumps({"event": "first_order", "openid": "oSomeoneElse"})  # body swapped in flight
    assert send(partner, context, event)[0] == 403
    event = signed(EVENTS, body)
    del event["headers"]["x-wxloop-signature"]
    status, doc = send(partner, context, event)
    assert status == 401 and doc["error"]["code"] == "unauthorized"
    assert len(aws.items()) == before


def test_a_replayed_nonce_is_409_and_an_idempotency_key_answers_the_same_or_409_for_another_body(aws, partner, context):
    person("oPA2", at=int(time.time()) - 5000)
    event = signed(POINTS, {"openid": "oPA2", "points": 5})
    assert send(partner, context, event)[0] == 409  # not enough points (0)
    status, doc = send(partner, context, event)
    assert status == 409 and doc["error"]["code"] == "replayed"
    idem = "same-key-123"
    first = send(partner, context, signed(POINTS, {"openid": "oPA2", "points": 5}, idem=idem))
    again = send(partner, context, signed(POINTS, {"openid": "oPA2", "points": 5}, idem=idem))
    assert first == again and first[1]["error"]["code"] == "insufficient_points"
    other = send(partner, context, signed(POINTS, {"openid": "oPA2", "points": 6}, idem=idem))
    assert other[0] == 409 and other[1]["error"]["code"] == "idempotency_conflict"


def test_points_debit_is_once_per_key_and_never_below_zero(aws, partner, context):
    from wxloop.adapters.dynamo import rewards as store
    from wxloop.domain.rewards import InviteeEvent
    from wxloop.services import rewards

    a = person("oPA3", at=int(time.time()) - 5000)
    b = person("oPB3")
    assert rewards.attribute(MP_APP, b, ref=ref_of(a, "first-order")) == "pending"
    assert rewards.qualify(InviteeEvent("event", b, int(time.time()), name="first_order")) == "rewarded"
    ok = send(partner, context, signed(POINTS, {"openid": "oPA3", "points": 300, "reason": "coupon"}, idem="debit-0001"))
    assert ok == (200, {"debited": 300, "balance": 200})
    assert send(partner, context, signed(POINTS, {"openid": "oPA3", "points": 300, "reason": "coupon"},
                                         idem="debit-0001")) == ok
    assert send(partner, context, signed(POINTS, {"openid": "oPA3", "points": 201}))[1]["error"]["code"] == \
        "insufficient_points"
    assert store.person_points(a) == (200, 0)


@pytest.mark.parametrize("raw", ['{"event": "first_order"}', "[1]", "not json", '{"points": -1, "openid": "o"}',
                                 '{"event": "share_card", "openid": "o", "x": 1}'])
def test_malformed_bodies_get_4xx_never_a_crash(aws, partner, context, raw):
    path = POINTS if "points" in raw else EVENTS
    status, doc = send(partner, context, signed(path, raw))
    assert 400 <= status < 500 and "error" in doc


def test_an_unknown_app_or_route_is_404(aws, partner, context):
    assert send(partner, context, signed("/partner/wx0000000000000000/events", {}))[0] == 404
    assert send(partner, context, signed(f"/partner/{MP_APP}/other", {}))[0] == 404
