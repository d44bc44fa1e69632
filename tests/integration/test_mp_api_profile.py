"""POST phone, POST share-info, POST events, PUT preferences (→ OA tag jobs), and body limits."""

from __future__ import annotations

import base64
import json
import logging
import os
import time

from tests.conftest import MP_APP, OA_APP
from tests.integration.conftest_wechat import pump
from tests.integration.mp_api_kit import call, login, people

pytest_plugins = ["tests.integration.conftest_wechat", "tests.integration.mp_api_kit"]  # fixtures: fake_wechat, mp_api

PHONE = "13912345678"


def _encrypt_share(session_key: str, doc: dict) -> tuple[str, str]:
    """What wx.getShareInfo gives the client: AES-128-CBC with the session_key, PKCS#7."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(doc).encode()) + padder.finalize()
    enc = Cipher(algorithms.AES(base64.b64decode(session_key)), modes.CBC(iv)).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode(), base64.b64encode(iv).decode()


def test_phone_is_sealed_shown_masked_never_logged_and_a_retry_is_idempotent(
        aws, mp_api, context, fake_wechat, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    token = login(mp_api, context, fake_wechat, openid="oPhone")["token"]
    fake_wechat.add_phone_code(MP_APP, "pc1", PHONE)
    first = call(mp_api, context, "POST", "phone", {"code": "pc1"}, token=token)
    again = call(mp_api, context, "POST", "phone", {"code": "pc1"}, token=token)
    assert first == again == (200, {"phone": "139****5678"})
    assert len(fake_wechat.calls("/wxa/business/getuserphonenumber")) == 1
    me = call(mp_api, context, "GET", "me", token=token)[1]
    assert me["phone"] == "139****5678"
    [person] = people(aws)
    assert person["phone_masked"] == "139****5678" and set(person["phone"]) == {"k", "n", "c"}
    from wxloop.adapters import mp_store
    from wxloop.services.mp_api.context import signing_keys
    from wxloop.services.mp_api.profile import phone_aad

    assert mp_store.unseal(person["phone"], phone_aad(person["uid"]), signing_keys()) == PHONE.encode()
    assert mp_store.unseal(person["phone"], phone_aad("f" * 32), signing_keys()) is None  # bound to the person
    captured = capsys.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert logs and PHONE not in logs and PHONE not in json.dumps(aws.items(), default=repr)


def test_a_bad_phone_code_is_400_and_stores_nothing(aws, mp_api, context, fake_wechat):
    token = login(mp_api, context, fake_wechat, openid="oPhone2")["token"]
    status, doc = call(mp_api, context, "POST", "phone", {"code": "invalid-1"}, token=token)
    assert (status, doc["error"]["code"]) == (400, "invalid_code")
    assert "phone" not in people(aws)[0]


def test_share_info_opens_with_the_stored_session_key_and_a_stale_key_is_409(aws, mp_api, context, fake_wechat):
    token = login(mp_api, context, fake_wechat, openid="oShare")["token"]
    key = fake_wechat.session_key(MP_APP, "oShare")
    data, iv = _encrypt_share(key, {"openGId": "tGroup123", "watermark": {"appid": MP_APP, "timestamp": 1}})
    status, doc = call(mp_api, context, "POST", "share-info", {"encryptedData": data, "iv": iv}, token=token)
    assert (status, doc) == (200, {"open_gid": "tGroup123"})
    events = [i for i in aws.items() if i["sk"].startswith("EV#") and i["type"] == "mp.share_open"]
    assert events[0]["detail"] == {"open_gid": "tGroup123"}
    stale, iv2 = _encrypt_share(base64.b64encode(b"0" * 16).decode(), {"openGId": "tOther"})
    status, doc = call(mp_api, context, "POST", "share-info", {"encryptedData": stale, "iv": iv2}, token=token)
    assert (status, doc["error"]["code"]) == (409, "session_stale")
    foreign, iv3 = _encrypt_share(key, {"openGId": "tG", "watermark": {"appid": "wx0000000000000bbb"}})
    assert call(mp_api, context, "POST", "share-info", {"encryptedData": foreign, "iv": iv3}, token=token)[0] == 403


def test_events_are_bounded_checked_and_server_time_wins_beyond_the_skew(aws, mp_api, context, fake_wechat):
    token = login(mp_api, context, fake_wechat, openid="oEvents")["token"]
    now_ms = int(time.time() * 1000)
    batch = [{"name": "view", "page": "pages/a", "ts": now_ms, "session_id": "s1", "props": {"n": i}}
             for i in range(50)]
    batch[1]["ts"] = 1_000_000_000_000  # 2001: far off
    status, doc = call(mp_api, context, "POST", "events", batch, token=token)
    assert (status, doc) == (200, {"accepted": 50})
    assert call(mp_api, context, "POST", "events", batch, token=token) == (200, {"accepted": 50})
    rows = [i for i in aws.items() if i["sk"].startswith("EV#") and i["type"] == "mp.client.view"]
    assert len(rows) == 50
    assert all(abs(r["at"] - now_ms // 1000) <= 5 for r in rows)
    assert any(r["detail"]["client_ts"] == 1_000_000_000_000 for r in rows)
    too_many = batch + [batch[0]]
    nested = [{"name": "x", "ts": now_ms, "props": {"deep": {"a": 1}}}]
    big_props = [{"name": "x", "ts": now_ms, "props": {f"k{i}": "v" * 200 for i in range(10)}}]
    for bad in (too_many, nested, big_props, [{"name": "bad name!", "ts": 1}], {"name": "x"}):
        status, doc = call(mp_api, context, "POST", "events", bad, token=token)
        assert status == 422 and doc["error"]["code"] == "invalid", bad


def test_huge_deep_and_undecodable_bodies_are_refused_before_parsing(aws, mp_api, context, fake_wechat):
    token = login(mp_api, context, fake_wechat, openid="oLimits")["token"]
    before = aws.items()
    huge = json.dumps([{"name": "x", "ts": 1, "page": "p" * 200}] * 1000)
    assert call(mp_api, context, "POST", "events", raw=huge, token=token)[0] == 413
    deep = "[" * 100_000 + "]" * 100_000
    assert call(mp_api, context, "POST", "events", raw=deep[:120_000], token=token)[0] == 422
    assert call(mp_api, context, "POST", "events", raw='[{"a":' * 10 + "1" + "}]" * 10, token=token)[0] == 422
    assert call(mp_api, context, "POST", "events", raw=base64.b64encode(b"\xff\xfe[]").decode(), token=token,
                base64_body=True)[0] == 400
    assert call(mp_api, context, "POST", "events", raw="!!notbase64", token=token, base64_body=True)[0] == 400
    assert aws.items() == before


def test_preferences_become_oa_tags_created_on_demand_and_cached(aws, mp_api, context, fake_wechat):
    from tests.conftest import load_handler
    from tests.integration.conftest_wechat import new_identity
    from wxloop.adapters import repository

    new_identity(OA_APP, "oOaTags")
    repository.link_unionid(OA_APP, "oOaTags", "uTags", int(time.time()))
    token = login(mp_api, context, fake_wechat, openid="oMpTags", unionid="uTags")["token"]
    status, doc = call(mp_api, context, "PUT", "preferences", {"topics": ["咖啡", "新品", "咖啡"]}, token=token)
    assert (status, doc) == (200, {"topics": ["咖啡", "新品"], "synced": True})
    worker = load_handler("worker")
    pump(aws, worker.lambda_handler, context)
    tags = {name: tag_id for tag_id, name in fake_wechat._tags[OA_APP].items()}
    assert set(tags) == {"咖啡", "新品"}
    assert fake_wechat._user_tags[(OA_APP, "oOaTags")] == {tags["咖啡"], tags["新品"]}
    time.sleep(0.002)  # the next version is a later millisecond
    call(mp_api, context, "PUT", "preferences", {"topics": ["新品", "会员"]}, token=token)
    pump(aws, worker.lambda_handler, context)
    tags = {name: tag_id for tag_id, name in fake_wechat._tags[OA_APP].items()}
    assert fake_wechat._user_tags[(OA_APP, "oOaTags")] == {tags["新品"], tags["会员"]}
    assert len(fake_wechat.calls("/cgi-bin/tags/create")) == 3  # cached: never created twice
    assert call(mp_api, context, "GET", "me", token=token)[1]["topics"] == ["新品", "会员"]


def test_a_stale_tag_job_is_skipped(aws, fake_wechat):
    from tests.integration.conftest_wechat import new_identity
    from wxloop.adapters import mp_store
    from wxloop.services import jobs

    uid = new_identity(OA_APP, "oOaStale")
    mp_store.use_person(uid, now=int(time.time()), limit=100, sets={"prefs": {"topics": [], "v": 200}})
    out = jobs.run({"id": "j1", "kind": "tag_topics", "app_id": OA_APP, "openid": "oOaStale", "uid": uid,
                    "version": 100, "topics": ["a"], "remove": []}, sink=None)
    assert (out.status, out.detail) == ("ok", "stale") and fake_wechat.calls("/cgi-bin/tags/create") == []


def test_preferences_without_an_oa_identity_are_kept_not_synced(aws, mp_api, context, fake_wechat):
    token = login(mp_api, context, fake_wechat, openid="oNoOa")["token"]
    assert call(mp_api, context, "PUT", "preferences", {"topics": ["a"]}, token=token) == \
        (200, {"topics": ["a"], "synced": False})
    assert [j for j in aws.jobs() if j["kind"] == "tag_topics"] == []
    assert call(mp_api, context, "PUT", "preferences", {"topics": ["x" * 31]}, token=token)[0] == 422
