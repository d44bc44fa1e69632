"""The worker's daily schedule renews channel links before they lapse: one job per channel due, each link
replaced once however often the schedule (or its retry) runs, WeChat's quota error deferring the job."""

from __future__ import annotations

import time

from tests.conftest import MP_APP, OA_APP, load_handler
from tests.integration.conftest_wechat import pump

pytest_plugins = ["tests.integration.conftest_wechat"]  # fake_wechat

SCHEDULE = {"action": "renew_channels"}  # the template's RenewChannels input


def _channels():
    from wxloop.adapters.wechat import api_client
    from wxloop.services import channels

    return {
        "lapsing": channels.create("xhs", "mp-link", app_id=MP_APP, path="pages/a", days=2, client=api_client(MP_APP)),
        "fresh": channels.create("weibo", "mp-scheme", app_id=MP_APP, path="pages/a", days=30, client=api_client(MP_APP)),
        "qr": channels.create("shop", "oa-temp", app_id=OA_APP, days=1, client=api_client(OA_APP)),
        "forever": channels.create("poster", "oa-perm", app_id=OA_APP, client=api_client(OA_APP)),
    }


def test_the_schedule_renews_each_link_due_once(aws, fake_wechat, context):
    from wxloop.adapters.dynamo import channels as store

    made = _channels()
    worker = load_handler("worker")
    before = len(fake_wechat.calls("/wxa/generate_urllink")), len(fake_wechat.calls("/cgi-bin/qrcode/create"))
    # the schedule fires, and fires again (its retry) before the worker ran: the same two jobs, twice
    assert worker.lambda_handler(SCHEDULE, context) == {"queued": 2}
    assert worker.lambda_handler(SCHEDULE, context) == {"queued": 2}
    pump(aws, worker.lambda_handler, context)

    xhs, shop = store.get_channel("xhs"), store.get_channel("shop")
    assert xhs["link"] != made["lapsing"]["link"] and xhs["code"] == made["lapsing"]["code"]
    assert xhs["expires_at"] >= int(time.time()) + 2 * 86400 - 60  # a new 2-day link, from now
    assert shop["ticket"] != made["qr"]["ticket"] and shop["expires_at"] >= made["qr"]["expires_at"] and shop["rev"] == 1
    assert store.get_channel("weibo")["link"] == made["fresh"]["link"]  # 30 days left: not due
    assert store.get_channel("poster")["link"] == made["forever"]["link"]  # permanent
    after = len(fake_wechat.calls("/wxa/generate_urllink")), len(fake_wechat.calls("/cgi-bin/qrcode/create"))
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)  # one WeChat call per link, not per job

    # links this short are due again at once; the next jobs name the new expiries, never the replaced ones
    from wxloop.services import channels

    again = {j["channel"]: j["rev"] for j in channels.renewal_jobs()}
    assert again == {"xhs": 1, "shop": 1} and (xhs["rev"], shop["rev"]) == (1, 1)
    # a 30-day link is due three days before it lapses
    weibo = store.get_channel("weibo")["expires_at"]
    assert "weibo" not in [j["channel"] for j in channels.renewal_jobs(now=weibo - 4 * 86400)]
    assert "weibo" in [j["channel"] for j in channels.renewal_jobs(now=weibo - 2 * 86400)]


def test_a_link_renewed_meanwhile_is_not_renewed_again(aws, fake_wechat):
    from wxloop.adapters.dynamo import channels as store
    from wxloop.adapters.wechat import api_client
    from wxloop.services import channels

    made = _channels()
    due = {j["channel"]: j for j in channels.renewal_jobs()}
    assert set(due) == {"xhs", "shop"}
    assert sorted(channels.renew(client_for=api_client)) == ["shop", "xhs"]
    calls = len(fake_wechat.calls("/wxa/generate_urllink"))
    job = due["xhs"]  # queued before the operator renewed from the CLI
    assert channels.renew_one(job["channel"], job["rev"], api_client(MP_APP)) == "already"
    assert len(fake_wechat.calls("/wxa/generate_urllink")) == calls
    assert channels.renew_one("gone", 0, api_client(MP_APP)) == "gone"
    assert store.get_channel("xhs")["rev"] == 1 and made["lapsing"]["link"] != store.get_channel("xhs")["link"]


def test_wechats_quota_error_defers_the_renewal_and_blocks_the_kind(aws, fake_wechat, context):
    from wxloop.adapters import repository
    from wxloop.adapters.dynamo import channels as store

    made = _channels()
    worker = load_handler("worker")
    fake_wechat.fail_next("/wxa/generate_urllink", 45009)
    worker.lambda_handler(SCHEDULE, context)
    pump(aws, worker.lambda_handler, context, rounds=3)
    assert store.get_channel("xhs")["link"] == made["lapsing"]["link"]  # not renewed yet
    assert repository.quota_blocked_until(MP_APP, "channel_renew") > int(time.time())
    assert store.get_channel("shop")["ticket"] != made["qr"]["ticket"]  # the OA's quota is its own


def test_a_malformed_renewal_job_is_poison(aws):
    import pytest

    from wxloop.services import jobs

    for bad in ({"id": "r", "kind": "channel_renew", "app_id": MP_APP, "channel": "", "rev": 1},
                {"id": "r", "kind": "channel_renew", "app_id": MP_APP, "channel": "x", "rev": -1},
                {"id": "r", "kind": "channel_renew", "app_id": MP_APP, "channel": "x"}):
        with pytest.raises(jobs.PoisonJob):
            jobs.validate(bad)
