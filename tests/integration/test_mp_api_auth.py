"""Every route but session needs a valid token of this app; GET me; the follow prompt; rate limits."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import ACCOUNTS, MP_APP, OA_APP
from tests.integration.mp_api_kit import call, login, people
from wxloop.domain import session

pytest_plugins = ["tests.integration.conftest_wechat", "tests.integration.mp_api_kit"]  # fixtures: fake_wechat, mp_api

ROUTES = [("GET", "me", None), ("POST", "me/prompt", {"action": "shown"}), ("POST", "phone", {"code": "c1"}),
          ("POST", "share-info", {"encryptedData": "A" * 24, "iv": "A" * 22 + "=="}),
          ("POST", "events", []), ("PUT", "preferences", {"topics": ["x"]})]


def _token(uid: str, *, app_id: str = MP_APP, expires_in: int = 3600, key: bytes | None = None) -> str:
    key = key or ACCOUNTS["session_keys"][0].encode()
    now = int(time.time())
    return session.issue(session.SessionClaims(app_id, uid, 1011, now, now + expires_in), [key])


def _uid(aws) -> str:
    [person] = people(aws)
    return person["uid"]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_refuses_missing_forged_expired_and_foreign_tokens(aws, mp_api, context, fake_wechat,
                                                                      method, path, body):
    good = login(mp_api, context, fake_wechat, openid="oAuth")["token"]
    before = aws.items()
    uid = _uid(aws)
    version, payload, mac = good.split(".")
    cases = {
        None: 401,
        "garbage": 401,
        f"{version}.{payload}.{mac[::-1]}": 401,
        _token(uid, expires_in=-1): 401,
        _token(uid, key=b"some-other-key-0123456789"): 401,
        _token(uid, app_id=OA_APP): 403,
    }
    for token, expected in cases.items():
        status, doc = call(mp_api, context, method, path, body, token=token)
        assert (status, doc["error"]["code"]) == (expected, {401: "unauthorized", 403: "forbidden"}[expected]) \
            or (status == 401 and doc["error"]["code"] == "session_expired"), (token, status, doc)
    assert aws.items() == before  # nothing written (rate counters included)


def test_get_me_shows_the_person_never_their_ids(aws, mp_api, context, fake_wechat):
    token = login(mp_api, context, fake_wechat, openid="oMe", unionid="uMe", scene=1011)["token"]
    status, me = call(mp_api, context, "GET", "me", token=token)
    assert status == 200
    assert set(me) == {"points", "invite_code", "phone", "topics", "follow", "prompt"}
    text = json.dumps(me)
    assert "oMe" not in text and "uMe" not in text and _uid(aws) not in text
    assert me["follow"] == {"oa_app_id": OA_APP, "following": None}
    assert me["prompt"] == {"mode": "component", "reason": "scene"}


def test_session_keys_rotate(aws, mp_api, context, fake_wechat, monkeypatch):
    old = login(mp_api, context, fake_wechat, openid="oRot")["token"]
    rotated = {**ACCOUNTS, "session_keys": ["a-brand-new-session-key-00000001", ACCOUNTS["session_keys"][0]]}
    monkeypatch.setenv("WECHAT_ACCOUNTS", json.dumps(rotated))
    assert call(mp_api, context, "GET", "me", token=old)[0] == 200
    new = login(mp_api, context, fake_wechat, openid="oRot")["token"]
    dropped = {**ACCOUNTS, "session_keys": ["a-brand-new-session-key-00000001"]}
    monkeypatch.setenv("WECHAT_ACCOUNTS", json.dumps(dropped))
    assert call(mp_api, context, "GET", "me", token=new)[0] == 200
    assert call(mp_api, context, "GET", "me", token=old)[0] == 401


def test_rate_limit_per_person(aws, mp_api, context, fake_wechat, monkeypatch):
    from wxloop.services.mp_api import context as mp_context

    token = login(mp_api, context, fake_wechat, openid="oBusy")["token"]
    other = login(mp_api, context, fake_wechat, openid="oCalm")["token"]
    monkeypatch.setenv("MP_RATE_LIMIT_PER_MINUTE", "3")
    mp_context.mp_settings.cache_clear()
    minute = int(time.time()) // 60
    statuses = [call(mp_api, context, "GET", "me", token=token)[0] for _ in range(4)]
    if int(time.time()) // 60 == minute:  # the counter is per minute: only judge a run inside one minute
        assert statuses[-1] == 429 and statuses.count(200) <= 3
        status, doc = call(mp_api, context, "GET", "me", token=token)
        assert (status, doc["error"]["code"]) == (429, "rate_limited")
    assert call(mp_api, context, "GET", "me", token=other)[0] == 200


def test_a_stale_counter_slot_restarts_instead_of_blocking(aws):
    from tests.integration.conftest_wechat import new_identity
    from wxloop.adapters import mp_store

    uid = new_identity(MP_APP, "oSlot")
    now = 1_800_000_000
    for _ in range(3):
        assert mp_store.use_person(uid, now=now, limit=3).status == "ok"
    assert mp_store.use_person(uid, now=now, limit=3).status == "limited"
    later = now + 16 * 60  # the same slot, 16 minutes on: its count is stale
    assert mp_store.use_person(uid, now=later, limit=3).status == "ok"
    slots = {k: v for k, v in mp_store.use_person(uid, now=later, limit=3).item.items() if k.startswith("rl_")}
    assert list(slots.values()) == [(later // 60) * 1000 + 2]


def test_follow_prompt_through_the_api(aws, mp_api, context, fake_wechat):
    from wxloop.adapters import mp_store

    token = login(mp_api, context, fake_wechat, openid="oPrompt", scene=1011)["token"]
    assert call(mp_api, context, "GET", "me", token=token)[1]["prompt"]["mode"] == "component"
    hot = call(mp_api, context, "GET", "me", token=token, query={"scene": "1089", "hot": "true"})[1]
    assert hot["prompt"]["mode"] == "component"  # a hot start keeps the cold start's state
    cold = call(mp_api, context, "GET", "me", token=token, query={"scene": "1089", "hot": "false"})[1]
    assert cold["prompt"]["mode"] == "cs_message"
    status, after = call(mp_api, context, "POST", "me/prompt", {"action": "dismissed"}, token=token)
    assert status == 200 and after["prompt"] == {"mode": "none", "reason": "dismissed"}
    assert call(mp_api, context, "POST", "me/prompt", {"action": "maybe"}, token=token)[0] == 422
    uid = _uid(aws)
    mp_store.mirror_follow(uid, OA_APP, True, int(time.time()))
    me = call(mp_api, context, "GET", "me", token=token)[1]
    assert me["follow"]["following"] is True and me["prompt"]["reason"] == "follower"


def test_a_launch_without_the_component_queues_the_follow_card_once(aws, mp_api, context, fake_wechat):
    login(mp_api, context, fake_wechat, openid="oCard", scene=1089)
    login(mp_api, context, fake_wechat, openid="oCard", scene=1001)
    jobs = [j for j in aws.jobs() if j["kind"] == "cs_send"]
    assert len(jobs) == 1
    assert jobs[0]["app_id"] == MP_APP and jobs[0]["openid"] == "oCard"


def test_an_oa_subscribe_mirrors_the_follow_state_for_get_me(aws, mp_api, context, fake_wechat):
    """Follow the OA by a QR scene, then log in to the MP as the same human: the MP sees a follower."""
    from devstack.simulator import Simulator
    from tests.conftest import OA_AES_KEY, OA_TOKEN, load_handler
    from tests.integration.oa_webhook_kit import post
    from wxloop.adapters import repository

    oa, sim = load_handler("oa_webhook"), Simulator(OA_APP, OA_TOKEN, OA_AES_KEY)
    out, _ = post(oa, context, sim, sim.subscribe("oOaFan", "poster_7"), "safe")
    assert out["statusCode"] == 200
    repository.link_unionid(OA_APP, "oOaFan", "uFan", int(time.time()))  # as the worker's user/info job does
    aws.run_stream()
    token = login(mp_api, context, fake_wechat, openid="oMpFan", unionid="uFan", scene=1011)["token"]
    me = call(mp_api, context, "GET", "me", token=token)[1]
    assert me["follow"]["following"] is True and me["prompt"]["mode"] == "none"
    [person] = [p for p in people(aws) if not p.get("merged_into")]
    assert person["first_touch"]["channel"] == "oa" and person["openids"] == {OA_APP: "oOaFan", MP_APP: "oMpFan"}
    post(oa, context, sim, sim.event("oOaFan", "unsubscribe", key=""), "safe")
    aws.run_stream()
    me = call(mp_api, context, "GET", "me", token=token)[1]
    assert me["follow"]["following"] is False and me["prompt"]["mode"] == "component"


def test_request_budgets_get_me_one_and_a_returning_login_two(aws, mp_api, context, fake_wechat):
    from collections import Counter

    from wxloop.adapters import aws as aws_clients

    login(mp_api, context, fake_wechat, openid="oBudget", scene=1011)
    calls: Counter = Counter()
    aws_clients.client("dynamodb").meta.events.register("before-call", lambda model, **_: calls.update([model.name]))
    token = login(mp_api, context, fake_wechat, openid="oBudget", scene=1011, consents=())["token"]
    assert sum(calls.values()) == 2, calls
    calls.clear()
    assert call(mp_api, context, "GET", "me", token=token)[0] == 200
    assert dict(calls) == {"UpdateItem": 1}
