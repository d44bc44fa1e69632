"""GET invite / referrals / points over the MP API: A shares, B logs in through the share path, B binds a
phone, A is rewarded once; listings are paginated and a cursor cannot reach another person's items."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import MP_APP
from tests.integration.mp_api_kit import call, login
from tests.integration.test_rewards import REWARDS_DOC

pytest_plugins = ["tests.integration.conftest_wechat", "tests.integration.mp_api_kit"]


@pytest.fixture
def configured(aws):
    from wxloop.adapters.dynamo import rewards as store
    from wxloop.services import rewards

    store.put_reward_config(REWARDS_DOC, version="1", now=int(time.time()))
    rewards.reset()
    yield
    rewards.reset()


def test_share_arrive_bind_phone_rewards_the_inviter_once(aws, mp_api, context, fake_wechat, configured):
    a = login(mp_api, context, fake_wechat, openid="oShareA")["token"]
    status, invite = call(mp_api, context, "GET", "invite", token=a)
    assert status == 200 and invite["campaign"] == "welcome-phone" and len(invite["code"]) == 10
    ref = parse_qs(urlsplit(invite["path"]).query)["ref"][0]
    b = login(mp_api, context, fake_wechat, openid="oShareB", scene=1007, query={"ref": ref})["token"]
    fake_wechat.add_phone_code(MP_APP, "pcB", "13912345678")
    assert call(mp_api, context, "POST", "phone", {"code": "pcB"}, token=b)[0] == 200
    status, points = call(mp_api, context, "GET", "points", token=a)
    assert status == 200 and points["balance"] == 100 and [e["points"] for e in points["entries"]] == [100]
    status, mine = call(mp_api, context, "GET", "referrals", token=a)
    assert status == 200 and mine["totals"]["rewarded"] == 1 and mine["referrals"][0]["state"] == "rewarded"
    assert "invitee" not in mine["referrals"][0]
    # B re-binding, logging in again through another share, cannot pay anyone again
    fake_wechat.add_phone_code(MP_APP, "pcB2", "13912345679")
    call(mp_api, context, "POST", "phone", {"code": "pcB2"}, token=b)
    assert call(mp_api, context, "GET", "points", token=a)[1]["balance"] == 100


def test_a_code_in_the_scene_attributes_and_listings_paginate_with_own_cursors(
        aws, mp_api, context, fake_wechat, configured):
    a = login(mp_api, context, fake_wechat, openid="oPageA")["token"]
    code = call(mp_api, context, "GET", "invite", token=a)[1]["code"]
    for i in range(3):
        login(mp_api, context, fake_wechat, openid=f"oPageB{i}", scene=1047, query={"scene": code})
    status, page = call(mp_api, context, "GET", "referrals", token=a, query={"limit": "2"})
    assert status == 200 and len(page["referrals"]) == 2 and page["next"]
    status, rest = call(mp_api, context, "GET", "referrals", token=a, query={"limit": "2", "cursor": page["next"]})
    assert status == 200 and len(rest["referrals"]) == 1 and rest["next"] is None
    other = login(mp_api, context, fake_wechat, openid="oPageC")["token"]
    status, doc = call(mp_api, context, "GET", "referrals", token=other, query={"cursor": page["next"]})
    assert status == 400 and doc["error"]["code"] == "bad_request"
    assert call(mp_api, context, "GET", "points", token=other, query={"cursor": "!!"})[0] == 422


def test_no_campaign_means_no_invite(aws, mp_api, context, fake_wechat):
    from wxloop.services import rewards

    rewards.reset()
    a = login(mp_api, context, fake_wechat, openid="oNoCamp")["token"]
    assert call(mp_api, context, "GET", "invite", token=a)[0] == 404
    assert call(mp_api, context, "GET", "invite")[0] == 401
