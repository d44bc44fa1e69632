"""The WeChat API client against the fake WeChat API: one shared token, compare-and-expire, errors."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from tests.conftest import MP_APP, OA_APP

pytest_plugins = ["tests.integration.conftest_wechat"]  # fixtures: fake_wechat, atomic_ddb

STABLE = "/cgi-bin/stable_token"
CS = "/cgi-bin/message/custom/send"
TEXT = {"msgtype": "text", "text": {"content": "hi"}}


def _send(client, openid="o-user"):
    return client.post("message/custom/send", data={"touser": openid, **TEXT})


def test_given_10_instances_needing_a_token_at_once_then_wechat_sees_one_fetch(aws, atomic_ddb, fake_wechat):
    """Given ten separate clients (as ten Lambda instances) and a slow token endpoint,
    when all ask for a token at once, then one stable_token fetch is made and all get that token."""
    from wxloop.adapters import wechat

    fake_wechat.slow_next(STABLE, 0.3)
    clients = [wechat.new_client(OA_APP) for _ in range(10)]
    barrier, tokens, errors = threading.Barrier(10), [], []

    def need_token(client):
        barrier.wait()
        try:
            tokens.append(client.access_token)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=need_token, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert len(fake_wechat.calls(STABLE)) == 1
    assert len(tokens) == 10 and len(set(tokens)) == 1
    assert sum(c.store.fetches for c in clients) == 1
    item = wechat.repository.get_token(OA_APP)
    assert item["access_token"] == tokens[0] and item["version"] == 1 and "lease_owner" not in item


def test_given_a_stored_token_then_another_instance_uses_it_without_fetching(aws, fake_wechat):
    from wxloop.adapters import wechat

    first = wechat.new_client(OA_APP).access_token
    second = wechat.new_client(OA_APP).access_token
    assert first == second
    assert len(fake_wechat.calls(STABLE)) == 1
    assert fake_wechat.calls(STABLE)[0]["json"] == {
        "grant_type": "client_credential", "appid": OA_APP, "secret": "demo-oa-secret", "force_refresh": False}


def test_compare_and_expire_never_expires_a_newer_token(aws, fake_wechat):
    """Given a newer token stored, when a stale failure of the old token is reported, then nothing expires;
    when the stored token itself fails, then it is expired."""
    from wxloop.adapters import repository, wechat

    store = wechat.new_client(OA_APP).store
    current = store.token()
    assert store.expire_if("an-older-token") is False
    assert repository.get_token(OA_APP)["expires_at"] > time.time() + 7000
    assert store.expire_if(current) is True
    assert repository.get_token(OA_APP)["expires_at"] == 0


def test_given_the_token_was_invalidated_then_the_call_refreshes_once_and_retries_once(aws, fake_wechat):
    from wxloop.adapters import wechat

    client = wechat.new_client(OA_APP)
    old = client.access_token
    fake_wechat.rotate_token(OA_APP)  # someone force-refreshed: the old token answers 40001
    assert _send(client)["errcode"] == 0
    sends = fake_wechat.calls(CS)
    assert [c["query"]["access_token"] for c in sends][0] == old
    assert len(sends) == 2 and sends[1]["query"]["access_token"] == fake_wechat.current_token(OA_APP)
    assert len(fake_wechat.calls(STABLE)) == 2  # the first fetch, and one refresh


def test_given_two_instances_hit_by_the_same_invalid_token_then_only_one_refreshes(aws, fake_wechat):
    """Given instances A and B holding token T1, when T1 is invalidated and B fails first (expires T1,
    fetches T2), then A's later failure with T1 does not expire T2: A just reads T2 and retries."""
    from wxloop.adapters import wechat

    a, b = wechat.new_client(OA_APP), wechat.new_client(OA_APP)
    t1 = a.access_token
    assert b.access_token == t1
    fake_wechat.rotate_token(OA_APP)  # now the stable token is T2' (fake side); T1 is dead
    fetches_before = len(fake_wechat.calls(STABLE))
    _send(b)
    t2 = wechat.repository.get_token(OA_APP)["access_token"]
    assert t2 != t1
    _send(a)
    assert len(fake_wechat.calls(STABLE)) == fetches_before + 1
    assert wechat.repository.get_token(OA_APP)["access_token"] == t2
    assert [c["query"]["access_token"] for c in fake_wechat.calls(CS)] == [t1, t2, t1, t2]


def test_given_the_token_expired_at_wechat_then_42001_refreshes_too(aws, fake_wechat):
    from wxloop.adapters import wechat

    client = wechat.new_client(OA_APP)
    client.access_token
    fake_wechat.expire_tokens(OA_APP)
    assert _send(client)["errcode"] == 0
    assert len(fake_wechat.calls(STABLE)) == 2


def test_given_the_token_still_refused_after_the_refresh_then_the_error_is_raised_after_one_retry(aws, fake_wechat):
    from wxloop.adapters import wechat

    client = wechat.new_client(OA_APP)
    fake_wechat.fail_next(CS, 40001, times=5)
    with pytest.raises(wechat.WeChatAPIError) as err:
        _send(client)
    assert err.value.errcode == 40001 and err.value.transient and err.value.path == CS
    assert len(fake_wechat.calls(CS)) == 2


def test_given_a_wrong_secret_then_40125_and_the_lease_is_released(aws, fake_wechat):
    from wxloop.adapters import repository, wechat

    with pytest.raises(wechat.WeChatAPIError) as err:
        wechat.new_client(OA_APP, "not-the-secret").access_token
    assert err.value.errcode == 40125 and err.value.transient  # jobs wait (SQS, then DLQ) for a fixed secret
    assert "lease_owner" not in (repository.get_token(OA_APP) or {})
    assert wechat.new_client(OA_APP).access_token  # the next instance can fetch at once


def test_given_another_instance_is_fetching_then_this_one_waits_for_its_token(aws, fake_wechat):
    from wxloop.adapters import repository, wechat

    now = int(time.time())
    assert repository.lease_token(OA_APP, "other", now=now, lease_seconds=10, due_before=now + 300)
    client = wechat.new_client(OA_APP)
    stored_at: list[float] = []

    def other_instance_stores():
        repository.store_token(OA_APP, "TOKEN-FROM-OTHER", expires_at=now + 7200, owner="other", now=now)
        stored_at.append(time.monotonic())

    timer = threading.Timer(0.3, other_instance_stores)
    started = time.monotonic()
    timer.start()
    try:
        token = client.access_token
        returned_at = time.monotonic()
    finally:  # never let the timer write after this test's AWS mock has ended
        timer.cancel()
        timer.join(10)
    assert token == "TOKEN-FROM-OTHER"
    assert stored_at and returned_at >= stored_at[0], "it waited for the other instance's token"
    # it polls (at most 0.5 s apart) rather than sitting out its 12 s wait: generous for a loaded machine
    assert returned_at - started < client.store.wait_seconds / 2
    assert fake_wechat.calls(STABLE) == []


def test_given_a_due_token_and_another_instance_renewing_then_the_current_token_is_used_meanwhile(
        aws, fake_wechat, monkeypatch):
    from wxloop.adapters import repository, wechat
    from wxloop.settings import settings

    # wide windows, so a slow machine cannot turn "due, someone renewing" into "expired" or "lease lapsed":
    # a token is due 600 s before expiry; this one has 300 s left; the other instance's lease lasts 10 min
    monkeypatch.setenv("TOKEN_USE_MARGIN_SECONDS", "600")
    settings.cache_clear()
    now = int(time.time())
    assert repository.lease_token(OA_APP, "seed", now=now, lease_seconds=1, due_before=now + 900)
    assert repository.store_token(OA_APP, "STILL-VALID", expires_at=now + 300, owner="seed", now=now) == 1
    assert repository.lease_token(OA_APP, "other", now=now, lease_seconds=600, due_before=now + 900)
    assert wechat.new_client(OA_APP).access_token == "STILL-VALID"
    assert fake_wechat.calls(STABLE) == []


def test_given_a_due_token_and_no_one_renewing_then_this_instance_renews_it(aws, fake_wechat):
    from wxloop.adapters import repository, wechat

    now = int(time.time())
    assert repository.lease_token(OA_APP, "x", now=now, lease_seconds=10, due_before=now + 10**6)  # seed
    repository.store_token(OA_APP, "ALMOST-EXPIRED", expires_at=now + 45, owner="x", now=now)
    token = wechat.new_client(OA_APP).access_token
    assert token != "ALMOST-EXPIRED" and len(fake_wechat.calls(STABLE)) == 1
    assert repository.get_token(OA_APP)["version"] == 2


@pytest.mark.parametrize("trailing", ["", "/"])
def test_api_base_is_honoured_with_or_without_trailing_slash_also_by_wechatpy_apis_with_hard_coded_hosts(
        aws, fake_wechat, monkeypatch, trailing):
    from wxloop.adapters import wechat
    from wxloop.settings import settings

    monkeypatch.setenv("WECHAT_API_BASE", fake_wechat.base_url + trailing)
    settings.cache_clear()
    wechat.reset()
    assert wechat.api_base() == fake_wechat.base_url + "/"
    client = wechat.api_client(MP_APP)
    assert client.API_BASE_URL == fake_wechat.base_url + "/cgi-bin/"
    png = client.wxa.get_wxa_code_unlimited("scene1", page="pages/index")  # wxa has the real host hard-coded
    assert png.content.startswith(b"\x89PNG")
    client.wxa.send_subscribe_message("o-mp", "tpl-1", {"thing1": {"value": "x"}}, page="pages/a")
    assert [c["path"] for c in fake_wechat.calls()] == [STABLE, "/wxa/getwxacodeunlimit",
                                                         "/cgi-bin/message/subscribe/send"]
    assert wechat.api_client(MP_APP) is client  # cached per container


def test_http_5xx_and_timeouts_are_transient_errors(aws, fake_wechat):
    from wxloop.adapters import wechat

    client = wechat.new_client(OA_APP, timeout=0.2)
    client.access_token
    fake_wechat.fail_next(CS, status=502)
    with pytest.raises(wechat.WeChatAPIError) as err:
        _send(client)
    assert err.value.errcode is None and err.value.http_status == 502 and err.value.transient
    fake_wechat.slow_next(CS, 0.5)
    with pytest.raises(wechat.WeChatAPIError) as err:
        _send(client)
    assert err.value.errcode is None and err.value.transient
    fake_wechat.fail_next(CS, 45015)
    with pytest.raises(wechat.WeChatAPIError) as err:
        _send(client)
    assert err.value.errcode == 45015 and not err.value.transient


def test_jscode2session_needs_no_access_token_and_returns_the_unionid(aws, fake_wechat):
    from wxloop.adapters import wechat

    fake_wechat.add_code(MP_APP, "code-1", "o-mp-1", unionid="un-1")
    out = wechat.code_to_session(MP_APP, "code-1")
    assert out["openid"] == "o-mp-1" and out["unionid"] == "un-1"
    assert out["session_key"] == fake_wechat.session_key(MP_APP, "o-mp-1")
    assert fake_wechat.calls(STABLE) == []
    with pytest.raises(wechat.WeChatAPIError) as err:
        wechat.code_to_session(MP_APP, "code-1")
    assert err.value.errcode == 40163  # a code works once


def test_getuserphonenumber(aws, fake_wechat):
    from wxloop.adapters import wechat

    fake_wechat.add_phone_code(MP_APP, "pc-1", "13900001111")
    info = wechat.get_user_phone_number(MP_APP, "pc-1")
    assert info["purePhoneNumber"] == "13900001111" and info["countryCode"] == "86"
    assert fake_wechat.calls("/wxa/business/getuserphonenumber")[0]["json"] == {"code": "pc-1"}
    with pytest.raises(wechat.WeChatAPIError) as err:
        wechat.get_user_phone_number(MP_APP, "invalid-code")
    assert err.value.errcode == 40029


def test_unknown_account_is_a_config_error(aws, fake_wechat):
    from wxloop.adapters import wechat
    from wxloop.config import ConfigError

    with pytest.raises(ConfigError):
        wechat.api_client("wx00000000000000aa")  # configured, but without an app_secret


# -- the fake itself --------------------------------------------------------------------------------------


def test_fake_token_endpoints_behave_like_wechat(fake_wechat):
    base = fake_wechat.base_url
    stable = lambda **kw: requests.post(f"{base}/cgi-bin/stable_token", json={  # noqa: E731
        "grant_type": "client_credential", "appid": OA_APP, "secret": "demo-oa-secret", **kw}, timeout=2).json()
    first = stable()
    assert first["expires_in"] == 7200
    assert stable()["access_token"] == first["access_token"]  # same token in normal mode
    forced = stable(force_refresh=True)["access_token"]
    assert forced != first["access_token"]
    info = lambda tok: requests.get(f"{base}/cgi-bin/user/info", params={  # noqa: E731
        "access_token": tok, "openid": "o1"}, timeout=2).json()
    assert info(first["access_token"])["errcode"] == 40001  # force_refresh invalidated it
    assert info(forced)["subscribe"] == 1
    assert info("")["errcode"] == 41001
    assert stable(secret="wrong")["errcode"] == 40125
    classic = requests.get(f"{base}/cgi-bin/token", params={
        "grant_type": "client_credential", "appid": OA_APP, "secret": "demo-oa-secret"}, timeout=2).json()
    assert classic["expires_in"] == 7200 and classic["access_token"] != forced
    assert info(forced)["subscribe"] == 1  # the previous token keeps working for 5 minutes
    fake_wechat.expire_tokens()
    assert info(classic["access_token"])["errcode"] == 42001


def test_fake_control_api_over_http(fake_wechat):
    base = fake_wechat.base_url
    ctl = lambda path, doc: requests.post(f"{base}/__fake/{path}", json=doc, timeout=2).json()  # noqa: E731
    token = requests.post(f"{base}/cgi-bin/stable_token", json={
        "grant_type": "client_credential", "appid": OA_APP, "secret": "demo-oa-secret"}, timeout=2).json()["access_token"]
    assert ctl("users", {"app_id": OA_APP, "openid": "o-u", "unionid": "un-9"})["errcode"] == 0
    assert ctl("fail", {"path": CS, "errcode": 45047, "times": 1})["errcode"] == 0
    assert ctl("slow", {"path": "/cgi-bin/user/info", "seconds": 0.05, "times": 1})["errcode"] == 0
    send = lambda: requests.post(f"{base}{CS}", params={"access_token": token}, data=json.dumps(  # noqa: E731
        {"touser": "o-u", **TEXT}), timeout=2).json()
    assert send()["errcode"] == 45047
    assert send()["errcode"] == 0
    user = requests.get(f"{base}/cgi-bin/user/info", params={"access_token": token, "openid": "o-u"}, timeout=2).json()
    assert user["unionid"] == "un-9"
    calls = requests.get(f"{base}/__fake/calls", params={"path": CS}, timeout=2).json()["calls"]
    assert len(calls) == 2 and calls[0]["json"]["touser"] == "o-u"
    assert ctl("reset", {})["errcode"] == 0
    assert requests.get(f"{base}/__fake/calls", timeout=2).json()["calls"] == []


def test_fake_tags_qrcode_menu(fake_wechat):
    base = fake_wechat.base_url
    token = requests.post(f"{base}/cgi-bin/stable_token", json={
        "grant_type": "client_credential", "appid": OA_APP, "secret": "demo-oa-secret"}, timeout=2).json()["access_token"]
    post = lambda path, doc: requests.post(f"{base}{path}", params={"access_token": token}, json=doc,  # noqa: E731
                                           timeout=2).json()
    tag = post("/cgi-bin/tags/create", {"tag": {"name": "vip"}})["tag"]
    assert post("/cgi-bin/tags/members/batchtagging", {"tagid": tag["id"], "openid_list": ["o1"]})["errcode"] == 0
    info = requests.get(f"{base}/cgi-bin/user/info", params={"access_token": token, "openid": "o1"}, timeout=2).json()
    assert info["tagid_list"] == [tag["id"]]
    assert post("/cgi-bin/tags/members/batchuntagging", {"tagid": tag["id"], "openid_list": ["o1"]})["errcode"] == 0
    qr = post("/cgi-bin/qrcode/create", {"action_name": "QR_STR_SCENE", "expire_seconds": 600,
                                         "action_info": {"scene": {"scene_str": "s1"}}})
    assert qr["ticket"] and qr["expire_seconds"] == 600
    assert post("/cgi-bin/menu/create", {"button": [{"type": "click", "name": "a", "key": "k"}]})["errcode"] == 0


def test_workers_leave_the_refresh_window_to_the_refresher(aws, fake_wechat):
    """Given a token 200 s from expiry (inside the refresher's 300 s margin, outside the workers' 60 s),
    when a worker needs it, then it uses it as is: only the refresher (fixed egress IP) renews it."""
    from wxloop.adapters import repository, wechat

    now = int(time.time())
    assert repository.lease_token(OA_APP, "x", now=now, lease_seconds=10, due_before=now + 10**6)  # seed
    repository.store_token(OA_APP, "REFRESHER-WILL-RENEW", expires_at=now + 200, owner="x", now=now)
    assert wechat.new_client(OA_APP).access_token == "REFRESHER-WILL-RENEW"
    assert wechat.refresh_if_due(OA_APP) is True
    assert repository.get_token(OA_APP)["access_token"] != "REFRESHER-WILL-RENEW"
    assert len(fake_wechat.calls(STABLE)) == 1


# --- a fetch that outlives its lease is fenced out -----------------------------------------------------------


def test_a_store_after_the_lease_ran_out_and_another_stored_keeps_the_newer_token(aws):
    """Given instance A leased at t and is still fetching when its lease runs out, and B leased at t+11 and
    stored T2, when A's fetch returns at t+15, then A's T1 is not stored: T2 stays."""
    from wxloop.adapters import repository

    t = 1_700_000_000
    assert repository.lease_token(OA_APP, "A", now=t, lease_seconds=10, due_before=t + 300)
    assert repository.lease_token(OA_APP, "B", now=t + 11, lease_seconds=10, due_before=t + 311)
    assert repository.store_token(OA_APP, "T2", expires_at=t + 7211, owner="B", now=t + 12) == 1
    assert repository.store_token(OA_APP, "T1", expires_at=t + 7215, owner="A", now=t + 15) is None
    item = repository.get_token(OA_APP)
    assert (item["access_token"], item["version"], item["expires_at"]) == ("T2", 1, t + 7211)
    # nor after B gave its lease back without storing
    assert repository.lease_token(OA_APP, "C", now=t + 7200, lease_seconds=10, due_before=t + 7500)
    repository.release_token_lease(OA_APP, "C")
    assert repository.store_token(OA_APP, "T1", expires_at=t + 7215, owner="A", now=t + 7201) is None
    assert repository.get_token(OA_APP)["access_token"] == "T2"


def test_an_instance_whose_fetch_outlived_its_lease_uses_the_newer_stored_token(aws):
    from wxloop.adapters import repository, wechat

    clock = [1_700_000_000.0]

    def slow_fetch():  # while it fetches, its lease runs out and another instance stores a token
        clock[0] += 11
        now = int(clock[0])
        assert repository.lease_token(OA_APP, "B", now=now, lease_seconds=10, due_before=now + 300)
        repository.store_token(OA_APP, "T-NEWER", expires_at=now + 7200, owner="B", now=now)
        return {"access_token": "T-OLDER", "expires_in": 7200}

    store = wechat.DynamoTokenStore(OA_APP, slow_fetch, lease_seconds=10, clock=lambda: clock[0])
    assert store.token() == "T-NEWER"
    assert repository.get_token(OA_APP)["access_token"] == "T-NEWER" and store.fetches == 1
