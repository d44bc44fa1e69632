"""POST session against the fake WeChat API: first contact, return, unionid link, WeChat's refusals."""

from __future__ import annotations

import json

from tests.conftest import MP_APP, OA_APP
from tests.integration.conftest_wechat import new_identity
from tests.integration.mp_api_kit import call, login, people

pytest_plugins = ["tests.integration.conftest_wechat", "tests.integration.mp_api_kit"]  # fixtures: fake_wechat, mp_api


def test_first_login_creates_one_person_with_attribution_and_keeps_the_session_key_sealed(
        aws, mp_api, context, fake_wechat):
    doc = login(mp_api, context, fake_wechat, openid="oMpUser1", scene=1037,
                query={"ch": "poster_a"}, referrer_app="wx0000000000000bbb")
    assert set(doc) == {"token", "expires_at", "person"}
    assert doc["person"]["points"] == 0 and len(doc["person"]["invite_code"]) == 8
    [person] = people(aws)
    assert person["first_touch"]["channel"] == "poster_a"
    assert person["first_touch"]["scene"] == "1037" and person["first_touch"]["ref"] == "wx0000000000000bbb"
    assert person["openids"] == {MP_APP: "oMpUser1"}
    session_key = fake_wechat.session_key(MP_APP, "oMpUser1")
    everything = json.dumps(aws.items(), default=repr)
    assert session_key not in everything and session_key not in json.dumps(doc)
    assert set(person[f"mpsk_{MP_APP}"]) == {"k", "n", "c"}
    aws.run_stream()
    types = [i["type"] for i in aws.items() if i["sk"].startswith("EV#")]
    assert types == ["mp.first_launch"]


def test_returning_login_finds_the_same_person_keeps_first_touch_and_records_the_launch(
        aws, mp_api, context, fake_wechat):
    first = login(mp_api, context, fake_wechat, openid="oMpUser2", scene=1011, query={"ch": "first"})
    aws.run_stream()
    again = login(mp_api, context, fake_wechat, openid="oMpUser2", scene=1089, query={"ch": "second"})
    aws.run_stream()
    [person] = people(aws)
    assert person["first_touch"]["channel"] == "first"
    assert first["person"]["invite_code"] == again["person"]["invite_code"]
    types = sorted(i["type"] for i in aws.items() if i["sk"].startswith("EV#"))
    assert types == ["mp.first_launch", "mp.launch"]


def test_a_unionid_joins_the_mp_login_to_the_oa_follower(aws, mp_api, context, fake_wechat):
    from wxloop.adapters import repository

    oa_uid = new_identity(OA_APP, "oOaFollower")
    repository.link_unionid(OA_APP, "oOaFollower", "uHuman1", 1_700_000_000)
    login(mp_api, context, fake_wechat, openid="oMpSame", unionid="uHuman1")
    live = [p for p in people(aws) if not p.get("merged_into")]
    assert [p["uid"] for p in live] == [oa_uid]
    assert live[0]["openids"] == {OA_APP: "oOaFollower", MP_APP: "oMpSame"}
    identity = repository.get_identity(MP_APP, "oMpSame")
    assert identity["uid"] == oa_uid


def test_wechat_refusals_map_to_stable_codes_and_write_nothing(aws, mp_api, context, fake_wechat):
    status, doc = call(mp_api, context, "POST", "session", {"code": "invalid-code"})
    assert (status, doc["error"]["code"]) == (400, "invalid_code")
    fake_wechat.fail_next("/sns/jscode2session", 45011)
    status, doc = call(mp_api, context, "POST", "session", {"code": "abc"})
    assert (status, doc["error"]["code"]) == (429, "rate_limited")
    fake_wechat.fail_next("/sns/jscode2session", 40226)
    assert call(mp_api, context, "POST", "session", {"code": "abd"})[0] == 403
    fake_wechat.fail_next("/sns/jscode2session", status=502)
    assert call(mp_api, context, "POST", "session", {"code": "abe"})[0] == 503
    assert aws.items() == []


def test_unknown_app_and_bad_bodies(aws, mp_api, context, fake_wechat):
    assert call(mp_api, context, "POST", "session", {"code": "x"}, app_id=OA_APP)[0] == 404
    assert call(mp_api, context, "POST", "session", {"code": "x"}, app_id="wx00000000000000ff")[0] == 404
    status, doc = call(mp_api, context, "POST", "session", {"code": "x", "openid": "oForged"})
    assert status == 422 and doc["error"]["code"] == "invalid"
    assert "oForged" not in json.dumps(doc)
    assert call(mp_api, context, "POST", "session", raw="{not json")[0] in (400, 422)
    assert call(mp_api, context, "POST", "nowhere", {})[0] == 404
    assert aws.items() == []
