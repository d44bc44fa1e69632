"""The scheduled token refresher: renews due tokens through the same lease as the workers."""

from __future__ import annotations

import time

import pytest

from tests.conftest import MP_APP, OA_APP, load_handler

pytest_plugins = ["tests.integration.conftest_wechat"]  # fixtures: fake_wechat

STABLE = "/cgi-bin/stable_token"


@pytest.fixture
def refresher():
    return load_handler("token_refresher")


def test_missing_tokens_are_fetched_for_every_account_with_a_secret(aws, fake_wechat, refresher, context, capsys):
    from wxloop.adapters import repository

    out = refresher.lambda_handler({"source": "aws.scheduler"}, context)
    assert out == {"accounts": {OA_APP: "refreshed", MP_APP: "refreshed"}}  # the plain OA has no secret
    assert sorted(c["json"]["appid"] for c in fake_wechat.calls(STABLE)) == sorted([OA_APP, MP_APP])
    for app in (OA_APP, MP_APP):
        item = repository.get_token(app)
        assert item["access_token"] == fake_wechat.current_token(app)
        assert item["expires_at"] > time.time() + 7000
    assert '"token.refreshed"' in capsys.readouterr().out


def test_fresh_tokens_are_left_alone(aws, fake_wechat, refresher, context):
    refresher.lambda_handler({}, context)
    out = refresher.lambda_handler({}, context)
    assert out == {"accounts": {OA_APP: "unchanged", MP_APP: "unchanged"}}
    assert len(fake_wechat.calls(STABLE)) == 2


def test_a_token_within_the_margin_is_renewed_and_workers_see_it(aws, fake_wechat, refresher, context):
    from wxloop.adapters import repository, wechat

    refresher.lambda_handler({}, context)
    now = int(time.time())
    item = repository.get_token(OA_APP)
    assert repository.lease_token(OA_APP, "x", now=now, lease_seconds=10, due_before=now + 10**6)  # seed
    repository.store_token(OA_APP, item["access_token"], expires_at=now + 200, owner="x", now=now)
    out = refresher.lambda_handler({}, context)
    assert out["accounts"] == {OA_APP: "refreshed", MP_APP: "unchanged"}
    assert repository.get_token(OA_APP)["expires_at"] > now + 1000
    assert wechat.new_client(OA_APP).access_token == repository.get_token(OA_APP)["access_token"]
    assert len(fake_wechat.calls(STABLE)) == 3


def test_an_instance_already_fetching_is_not_doubled(aws, fake_wechat, refresher, context):
    from wxloop.adapters import repository

    now = int(time.time())
    assert repository.lease_token(OA_APP, "a-worker", now=now, lease_seconds=10, due_before=now + 300)
    out = refresher.lambda_handler({}, context)
    assert out["accounts"][OA_APP] == "unchanged"
    assert [c["json"]["appid"] for c in fake_wechat.calls(STABLE)] == [MP_APP]


def test_one_failing_account_does_not_stop_the_others(aws, fake_wechat, refresher, context, capsys):
    from wxloop.adapters import repository

    fake_wechat.add_account(OA_APP, "rotated-secret")  # the config still has the old one: 40125
    out = refresher.lambda_handler({}, context)
    assert out == {"accounts": {OA_APP: "failed", MP_APP: "refreshed"}}
    assert "lease_owner" not in (repository.get_token(OA_APP) or {})  # the lease was given back
    assert '"token.failed"' in capsys.readouterr().out
