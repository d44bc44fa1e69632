"""The OA mass send of a campaign run on moto and the fake WeChat API: followers tagged in batches of 50 on
the run's own tag, one ``message/mass/sendall`` to the tag, the account's mass quota, the tag deleted after."""

from __future__ import annotations

import time

from tests.conftest import OA_APP

pytest_plugins = ["tests.integration.conftest_wechat"]  # fixtures: fake_wechat

NOW = int(time.time())
TAGGING = "/cgi-bin/tags/members/batchtagging"
SENDALL = "/cgi-bin/message/mass/sendall"


def _doc(campaign_id: str = "news") -> dict:
    return {"id": campaign_id, "accounts": {"oa": OA_APP, "oa_type": "subscription"}, "segment": {"follows_oa": True},
            "content": {"oa_mass": {"text": "What is new this month"}},
            "schedule": {"start": "2026-01-01T00:00:00+00:00", "end": "2099-01-01T00:00:00+00:00"}}


def _followers(aws, n: int) -> list[str]:
    from wxloop.adapters.repository import marshal

    openids = [f"oMass{i:04d}" for i in range(n)]
    for i, openid in enumerate(openids):
        uid = f"mass{i:028d}"
        aws.ddb.put_item(TableName=aws.table, Item=marshal({"pk": f"USER#{uid}", "sk": "PROFILE", "uid": uid,
                                                            "openids": {OA_APP: openid},
                                                            f"fol_{OA_APP}": {"f": True, "at": NOW - 86400}}))
    return openids


def _run_queue(aws) -> list[tuple[dict, str]]:
    """Run every queued job (and those they queue) through the worker: (job, outcome) pairs."""
    from wxloop.services import jobs

    out: list[tuple[dict, str]] = []
    while batch := aws.jobs():
        out += [(job, str(jobs.run(job, sink=None))) for job in batch]
    return out


def _plan_and_release(campaign_id: str, run: str) -> int:
    from wxloop.services import campaigns as service

    service.start(campaign_id, now=NOW, segments=1, run=run, enqueue=lambda t: None)
    while service.run_segment(campaign_id, run, 0, time_left=lambda: 1e9) == "more":
        pass
    return service.release_run(campaign_id, run, NOW + 8 * 86400)


def test_a_run_tags_its_followers_in_batches_sends_once_to_the_tag_and_counts_the_quota(aws, fake_wechat):
    from wxloop.adapters.dynamo import campaigns as store
    from wxloop.services import campaigns as service

    openids = _followers(aws, 120)
    service.push([_doc()], NOW)
    assert _plan_and_release("news", "r1") == 3  # three tag jobs: 50 + 50 + 20
    ran = _run_queue(aws)
    assert [(j["stage"], outcome) for j, outcome in ran] == [("tag", "ok")] * 3 + [("send", "ok")]
    tagging = fake_wechat.calls(TAGGING)
    assert [len(c["json"]["openid_list"]) for c in tagging] == [50, 50, 20]
    assert sorted(o for c in tagging for o in c["json"]["openid_list"]) == openids
    tag_id = tagging[0]["json"]["tagid"]
    assert {c["json"]["tagid"] for c in tagging} == {tag_id}
    sendall = fake_wechat.calls(SENDALL)
    assert [c["json"]["filter"] for c in sendall] == [{"is_to_all": False, "tag_id": tag_id}]
    assert sendall[0]["json"]["text"] == {"content": "What is new this month"}
    assert [c["json"]["tag"]["id"] for c in fake_wechat.calls("/cgi-bin/tags/delete")] == [tag_id]
    quota = [i for i in aws.items() if i["pk"] == f"QUOTA#{OA_APP}" and i["sk"].startswith("MASS#")]
    assert [int(q["n"]) for q in quota] == [1]
    run = store.get_run("news", "r1")
    assert int(run["n_mass_sent"]) == 120 and run["state"] == "done"
    pushes = [i.get("pushes") for i in aws.items() if i["pk"].startswith("USER#mass") and i["sk"] == "PROFILE"]
    assert len(pushes) == 120 and all(p and len(p) == 1 for p in pushes)  # the frequency caps count it

    assert service.release_run("news", "r1", NOW + 9 * 86400) == 0  # a rerun: nothing more is queued
    from wxloop.services import jobs

    assert [str(jobs.run(job, sink=None)) for job, _ in ran] == ["duplicate"] * 4  # nor sent again
    assert len(fake_wechat.calls(TAGGING)) == 3 and len(fake_wechat.calls(SENDALL)) == 1


def test_the_mass_quota_used_up_skips_the_send_and_counts_why(aws, fake_wechat):
    from wxloop.adapters.dynamo import campaigns as store
    from wxloop.services import campaigns as service

    _followers(aws, 60)
    service.push([_doc()], NOW)
    _plan_and_release("news", "r1")
    _run_queue(aws)
    _plan_and_release("news", "r2")  # a subscription account: one mass send a day
    _run_queue(aws)
    assert len(fake_wechat.calls(SENDALL)) == 1
    run = store.get_run("news", "r2")
    assert int(run["n_skip_mass_quota"]) == 60 and "n_mass_sent" not in run
    assert len(fake_wechat.calls("/cgi-bin/tags/delete")) == 2  # the refused run's tag goes too


def test_a_follower_erased_after_the_release_is_not_tagged(aws, fake_wechat):
    from wxloop.adapters.repository import marshal
    from wxloop.services import campaigns as service

    openids = _followers(aws, 3)
    service.push([_doc()], NOW)
    assert _plan_and_release("news", "r1") == 1
    aws.ddb.update_item(TableName=aws.table, Key=marshal({"pk": f"USER#mass{1:028d}", "sk": "PROFILE"}),
                        UpdateExpression="SET erasing = :r", ExpressionAttributeValues=marshal({":r": "req1"}))
    _run_queue(aws)
    assert [sorted(c["json"]["openid_list"]) for c in fake_wechat.calls(TAGGING)] == [[openids[0], openids[2]]]
    assert len(fake_wechat.calls(SENDALL)) == 1


def test_a_follower_whose_erasure_begins_while_the_batch_is_tagged_is_untagged_before_the_send(
        aws, fake_wechat, monkeypatch):
    from wxloop.adapters.dynamo import campaigns as store
    from wxloop.adapters.repository import marshal
    from wxloop.services import campaigns as service

    openids = _followers(aws, 3)
    service.push([_doc()], NOW)
    assert _plan_and_release("news", "r1") == 1
    real, checks = store.live_people, []

    def erasure_begins_right_after_the_first_check(uids):
        live = real(list(uids))
        if not checks:  # the erasure marks the person between the worker's check and its tagging call
            aws.ddb.update_item(TableName=aws.table, Key=marshal({"pk": f"USER#mass{1:028d}", "sk": "PROFILE"}),
                                UpdateExpression="SET erasing = :r", ExpressionAttributeValues=marshal({":r": "q"}))
        checks.append(sorted(live))
        return live

    monkeypatch.setattr(store, "live_people", erasure_begins_right_after_the_first_check)
    _run_queue(aws)
    assert [sorted(c["json"]["openid_list"]) for c in fake_wechat.calls(TAGGING)] == [sorted(openids)]
    assert [c["json"]["openid_list"] for c in fake_wechat.calls("/cgi-bin/tags/members/batchuntagging")] == [
        [openids[1]]]
    paths = [c["path"] for c in fake_wechat.calls()]
    assert paths.count(SENDALL) == 1 and paths.index("/cgi-bin/tags/members/batchuntagging") < paths.index(SENDALL)
    erased = next(i for i in aws.items() if i["pk"] == f"USER#mass{1:028d}")
    assert "pushes" not in erased, "the frequency caps of someone not messaged are not charged"


def test_a_batch_wechat_refuses_for_good_does_not_hold_the_send(aws, fake_wechat):
    from wxloop.adapters.dynamo import campaigns as store
    from wxloop.services import campaigns as service

    _followers(aws, 120)
    service.push([_doc()], NOW)
    _plan_and_release("news", "r1")
    fake_wechat.fail_next(TAGGING, 45059)  # a member of the first batch already carries 20 tags
    ran = _run_queue(aws)
    assert sorted(outcome for _, outcome in ran) == ["failed:45059", "ok", "ok", "ok"]
    assert len(fake_wechat.calls(SENDALL)) == 1
    run = store.get_run("news", "r1")
    assert int(run["n_skip_mass_tag_failed"]) == 50 and int(run["n_mass_sent"]) == 70
