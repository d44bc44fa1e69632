"""Campaigns end to end on moto: the engagement profile from the stream, planning over scan segments with
checkpoints, idempotent reruns and crashes, hour buckets released by the tick, the send job and 45009."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from tests.conftest import MP_APP, OA_APP, load_handler
from tests.integration.conftest_wechat import user_message

pytest_plugins = ["tests.integration.conftest_wechat"]  # fixtures: fake_wechat

NOW = int(time.time())
CS = "/cgi-bin/message/custom/send"
TEXT = {"msgtype": "text", "text": {"content": "hello"}}


def campaign_doc(campaign_id: str = "spring", **segment) -> dict:
    return {
        "id": campaign_id, "accounts": {"oa": OA_APP, "mp": MP_APP},
        "segment": segment or {"last_active_days": {"min": 0, "max": 30}},
        "content": {"oa_cs": {"text": "New this week"}, "mp_cs": {"text": "New arrivals"},
                    "mp_subscribe": {"template_id": "tmpl-new-arrivals", "page": "pages/index/index",
                                     "data": {"thing1": "New arrivals"}}},
        "schedule": {"start": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(NOW - 86400)),
                     "end": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(NOW + 7 * 86400))},
        "caps": {"per_day": 1}, "send_window": "09-22", "quiet_hours": "23-08",
    }


def seed_and_push(count: int, doc: dict | None = None):
    from wxloop import demo_people
    from wxloop.services import campaigns as service

    demo_people.seed(count, now=NOW, seed=7)
    service.push([doc or campaign_doc()], NOW)
    return service.load((doc or campaign_doc())["id"])[0]


def dry_counts(campaign) -> Counter:
    from wxloop.adapters.dynamo import campaigns as store
    from wxloop.services import campaigns as service

    def pages():
        key = None
        while True:
            persons, key = store.scan_people(0, 1, key, 1000)
            yield persons
            if key is None:
                return

    return service.dry_run(campaign, NOW, pages(), service.read_reach)


def plan_all(campaign_id: str, run: str, segments: int) -> None:
    from wxloop.services import campaigns as service

    for s in range(segments):
        while service.run_segment(campaign_id, run, s, time_left=lambda: 1e9) == "more":
            pass


def run_counts(campaign_id: str, run: str) -> Counter:
    from wxloop.adapters.dynamo import campaigns as store

    item = store.get_run(campaign_id, run) or {}
    return Counter({k.removeprefix("n_"): int(v) for k, v in item.items() if k.startswith("n_")})


def sends(aws, campaign_id: str, run: str) -> list[dict]:
    return [i for i in aws.items() if i["pk"] == f"CAMPAIGN#{campaign_id}" and i["sk"].startswith(f"SEND#{run}#")]


def drain(aws) -> list[dict]:
    out = []
    while True:
        got = aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        if not got.get("Messages"):
            return out
        for m in got["Messages"]:
            out.append(json.loads(m["Body"]))
            aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=m["ReceiptHandle"])


# --- the engagement profile ------------------------------------------------------------------------------


def test_given_journey_events_when_the_stream_runs_then_the_person_carries_the_profile_once(aws, context):
    from wxloop.adapters import mp_store
    from wxloop.adapters.dynamo import people
    from wxloop.adapters.dynamo.journey import put_journey_event
    from wxloop.domain.engagement import Profile, preferred_platform

    stream = load_handler("stream")
    uid = user_message(OA_APP, "o-eng-1", now=NOW)
    evening = NOW - NOW % 86400 + 12 * 3600  # 20:00 in Shanghai
    put_journey_event(uid, {"id": "e1", "type": "oa.text", "app": OA_APP, "at": evening,
                            "at_iso": "2026-01-01T12:00:00Z"}, ttl=NOW + 86400)
    put_journey_event(uid, {"id": "e2", "type": "oa.event.unsubscribe", "app": OA_APP, "at": evening + 5,
                            "at_iso": "2026-01-01T12:00:05Z"}, ttl=NOW + 86400)
    mp_store.put_journey_events(uid, [{"id": f"m{i}", "type": "mp.client.page_view", "app": MP_APP,
                                       "at": evening + 60 * i, "at_iso": f"2026-01-01T12:0{i}:00Z"}
                                      for i in range(1, 4)], ttl=NOW + 86400)
    records = aws.stream_records()
    assert stream.lambda_handler({"Records": records}, context) == {"batchItemFailures": []}
    doc, seq, _ = people.get_engagement(uid)
    profile = Profile.from_doc(doc)
    assert profile.hours[20] == 4, "the text and three page views, in Shanghai's 20:00; the unsubscribe is no signal"
    assert profile.last_active == {"oa": evening, "mp": evening + 180}
    assert profile.scores["oa"] == pytest.approx(3.0, abs=0.01) and preferred_platform(profile, evening) == "oa"
    assert seq > 0
    stream.lambda_handler({"Records": aws.stream_records()}, context)  # a replay, plus the profile's own MODIFY
    assert people.get_engagement(uid)[:2] == (doc, seq), "a replayed batch changes nothing"


# --- planning ----------------------------------------------------------------------------------------------


def test_a_run_plans_what_the_dry_run_counts_and_the_tick_releases_one_job_per_send(aws):
    from wxloop.services import campaigns as service

    campaign = seed_and_push(300)
    expected = dry_counts(campaign)
    assert expected["planned"] > 50 and expected["skip_opted_out"] + expected["skip_not_in_segment"] > 0
    assert {k for k in expected if k.startswith("ch_")} >= {"ch_oa_cs", "ch_mp_subscribe"}
    tasks: list[dict] = []
    run = service.start(campaign.id, now=NOW, segments=3, enqueue=tasks.extend)
    assert [t["segment"] for t in tasks] == [0, 1, 2]
    plan_all(campaign.id, run, 3)
    counts = run_counts(campaign.id, run)
    assert {k: v for k, v in counts.items() if v} == {k: v for k, v in expected.items() if v}
    assert not sends(aws, campaign.id, run), "nothing is written per person at planning"
    queued = service.release_run(campaign.id, run, NOW + 8 * 86400)
    jobs = drain(aws)
    assert queued == len(jobs) == expected["planned"]
    assert len({j["id"] for j in jobs}) == len({j["uid"] for j in jobs}) == len(jobs)
    assert Counter(j["channel"] for j in jobs) == Counter({k[3:]: v for k, v in expected.items() if k.startswith("ch_")})
    from wxloop.adapters.dynamo import campaigns as store

    assert store.get_run(campaign.id, run)["state"] == "done" and store.active_runs() == []


def test_an_ab_campaign_sends_each_person_their_variant_and_the_journey_records_the_exposure(aws, fake_wechat):
    from wxloop.analytics.schema import to_record
    from wxloop.domain.campaign_content import variant_for
    from wxloop.services import campaigns as service
    from wxloop.services import jobs as worker

    doc = {**campaign_doc("ab-spring"), "variants": {
        "a": {"weight": 1},
        "b": {"weight": 1, "content": {"oa_cs": {"text": "B: new this week"},
                                       "mp_subscribe": {"template_id": "tmpl-new-arrivals",
                                                        "data": {"thing1": "B: new arrivals"}}}}}}
    campaign = seed_and_push(200, doc)
    run = service.start(campaign.id, now=NOW, segments=1, enqueue=lambda t: None)
    plan_all(campaign.id, run, 1)
    service.release_run(campaign.id, run, NOW + 8 * 86400)
    jobs = drain(aws)
    assert {j["variant"] for j in jobs} == {"a", "b"}
    for job in jobs:  # sticky: the variant is the person's, whatever run or container releases it
        assert job["experiment"] == "campaign:ab-spring"
        assert job["variant"] == variant_for(campaign.id, campaign.variants, job["uid"]).name
        if job["channel"] == "mp_subscribe":
            assert job["data"]["thing1"]["value"] == {"a": "New arrivals", "b": "B: new arrivals"}[job["variant"]]
        if job["channel"] == "oa_cs":
            assert job["message"]["text"]["content"] == {"a": "New this week", "b": "B: new this week"}[job["variant"]]
    subscribed = [j for j in jobs if j["channel"] == "mp_subscribe"][:6]
    assert subscribed and [str(worker.run(j, sink=None)) for j in subscribed] == ["ok"] * len(subscribed)
    aws.run_stream()
    events = {i["pk"].removeprefix("USER#"): i for i in aws.items() if i["sk"].startswith("EV#")
              and i.get("type") == "mp.send.subscribe"}
    for job in subscribed:
        event = events[job["uid"]]
        assert (event["campaign"], event["experiment"], event["variant"]) == ("ab-spring", job["experiment"],
                                                                             job["variant"])
        record = to_record(job["uid"], event)
        assert record["variant"] == job["variant"] and record["by_user"] is False and record["platform"] == "mp"
    worker.KINDS["campaign_send"].on_outcome(worker.validate(subscribed[0])[1], worker.Outcome("ok"), NOW)
    aws.run_stream()
    assert len([i for i in aws.items() if i["sk"].startswith("EV#") and i.get("type") == "mp.send.subscribe"]) == len(
        subscribed), "an outcome told again records no second exposure"


@pytest.mark.parametrize(("variants", "error"), [
    ({"a": {"weight": 1}}, "2 to 10"),
    ({"a": {}, "b": {"content": {"oa_mass": {"text": "x"}}}}, "cannot vary"),
    ({"a": {}, "b": {"content": {"oa_template": {"template_id": "t", "data": {"k": "v"}}}}}, "no content"),
    ({"a": {"weight": 0}, "b": {}}, "between"),
    ({"A B": {}, "b": {}}, "variants.A B"),
    ({"a": {}, "b": {"content": {"mp_subscribe": {"template_id": "other", "data": {"thing1": "x"}}}}},
     "keeps the campaign's template"),
])
def test_a_campaign_with_bad_variants_is_refused_naming_the_field(variants, error):
    from wxloop.domain import config_doc as doc
    from wxloop.domain.campaigns import parse_campaign

    with pytest.raises(doc.ConfigError, match=error):
        parse_campaign({**campaign_doc(), "variants": variants}, "c")


def test_buckets_wait_for_their_hour(aws):
    from wxloop.adapters.dynamo import campaigns as store
    from wxloop.services import campaigns as service

    campaign = seed_and_push(120)
    run = service.start(campaign.id, now=NOW, segments=1, enqueue=lambda t: None)
    plan_all(campaign.id, run, 1)
    hours = sorted({int(i["hour_at"]) for i in aws.items() if i["sk"].startswith(f"DUE#{run}#")})
    assert len(hours) >= 1
    first = hours[0]
    released = service.release_run(campaign.id, run, first - 1)
    assert released == 0 and store.has_buckets(campaign.id, run)
    at_first = service.release_run(campaign.id, run, first)
    assert at_first > 0 and at_first == len(drain(aws))
    assert all(int(i["hour_at"]) > first for i in aws.items() if i["sk"].startswith(f"DUE#{run}#"))


def test_a_crash_in_the_middle_of_a_segment_resumes_without_planning_anyone_twice(aws, monkeypatch):
    from wxloop.adapters.dynamo import campaigns as store
    from wxloop.services import campaigns as service

    monkeypatch.setattr(service, "PAGE_LIMIT", 60)  # several pages per segment
    campaign = seed_and_push(200)
    expected = dry_counts(campaign)
    run = service.start(campaign.id, now=NOW, segments=2, enqueue=lambda t: None)
    real, calls = store.checkpoint, Counter()

    def crash_on_second_page(campaign_id, run_, segment, page, last_key, counts):
        calls[(segment, page)] += 1
        if (segment, page) == (0, 2) and calls[(segment, page)] == 1:
            raise RuntimeError("the invocation died after writing the page's sends and buckets")
        return real(campaign_id, run_, segment, page, last_key, counts)

    monkeypatch.setattr(store, "checkpoint", crash_on_second_page)
    with pytest.raises(RuntimeError):
        service.run_segment(campaign.id, run, 0, time_left=lambda: 1e9)
    assert store.get_run(campaign.id, run)["sg"]["s0"]["p"] == 1
    plan_all(campaign.id, run, 2)  # SQS redelivers the task: it resumes from page 1's checkpoint
    assert calls[(0, 2)] == 2
    counts = run_counts(campaign.id, run)
    assert {k: v for k, v in counts.items() if v} == {k: v for k, v in expected.items() if v}, "counted once"
    # a rerun of the same run: the start is refused, the segments are done, nothing changes
    with pytest.raises(store.RunExists):
        service.start(campaign.id, now=NOW, segments=2, run=run, enqueue=lambda t: None)
    assert service.run_segment(campaign.id, run, 0, time_left=lambda: 1e9) == "done"
    # a duplicate task replaying an old page finds the checkpoint moved on and writes no counts
    assert not store.checkpoint(campaign.id, run, 0, 1, None, {"planned": 5})
    assert run_counts(campaign.id, run) == counts
    service.release_run(campaign.id, run, NOW + 8 * 86400)
    jobs = drain(aws)
    assert len(jobs) == len({j["uid"] for j in jobs}) == expected["planned"]


def test_a_cancelled_run_stops_planning_and_releases_nothing(aws):
    from wxloop.adapters.dynamo import campaigns as store
    from wxloop.services import campaigns as service

    campaign = seed_and_push(60)
    run = service.start(campaign.id, now=NOW, segments=1, enqueue=lambda t: None)
    assert service.cancel(campaign.id, run)
    assert service.run_segment(campaign.id, run, 0, time_left=lambda: 1e9) == "stopped"
    assert service.release_due(NOW + 8 * 86400) == 0 and store.active_runs() == []


# --- sending ---------------------------------------------------------------------------------------------


def send_job(uid: str, openid: str, run: str, **extra) -> dict:
    from wxloop.domain.campaigns import send_key

    return {"id": f"campaign:{send_key('spring', run, uid)}", "kind": "campaign_send", "app_id": OA_APP,
            "openid": openid, "campaign": "spring", "run": run, "uid": uid, "channel": "oa_cs", "message": TEXT,
            **extra}


def started_run() -> str:
    from wxloop.services import campaigns as service

    service.push([campaign_doc()], NOW)
    return service.start("spring", now=NOW, segments=1, enqueue=lambda t: None)


def test_a_send_spends_the_window_records_the_push_and_runs_once(aws, fake_wechat):
    from wxloop.adapters import repository
    from wxloop.adapters.dynamo import campaigns as store
    from wxloop.services import jobs

    run = started_run()
    uid = user_message(OA_APP, "o-send-1")
    job = send_job(uid, "o-send-1", run)
    assert jobs.run(job, sink=None).status == "ok"
    assert jobs.run(job, sink=None).status == "duplicate", "a bucket released twice sends once"
    assert len(fake_wechat.calls(CS)) == 1
    assert store.get_send("spring", run, uid)["state"] == "sent"
    assert repository.get_identity(OA_APP, "o-send-1")["win_msg_sent"] == 1
    assert len(repository.get_person(uid)["pushes"]) == 1 and run_counts("spring", run)["sent"] == 1


def fail_once(monkeypatch, owner, name: str, error: Exception) -> list:
    """Make ``owner.name`` raise ``error`` on its first call only; returns the failed calls' arguments."""
    real, failures = getattr(owner, name), []

    def fails_once(*args, **kwargs):
        if not failures:
            failures.append(args)
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, fails_once)
    return failures


def test_an_outcome_not_recorded_after_the_send_is_queued_and_recorded_once_later(aws, fake_wechat, monkeypatch):
    from wxloop.adapters import repository
    from wxloop.adapters.dynamo import campaigns as store
    from wxloop.adapters.dynamo.codec import RepositoryError
    from wxloop.services import jobs

    run = started_run()
    uid = user_message(OA_APP, "o-send-late")
    failures = fail_once(monkeypatch, store, "record_send_result", RepositoryError("throttled"))
    assert jobs.run(send_job(uid, "o-send-late", run), sink=None).status == "ok", "the send is not retried"
    assert failures and store.get_send("spring", run, uid) is None
    queued = aws.jobs()
    assert [(j["kind"], j["status"], j["job"]["uid"]) for j in queued] == [("job_settle", "ok", uid)]
    assert jobs.run(queued[0], sink=None).status == "ok"
    assert jobs.run(queued[0], sink=None).status == "duplicate"
    settle = jobs.KINDS["job_settle"]
    settle.run(settle.record.model_validate(queued[0]), jobs.JobContext(now=NOW, raw=queued[0]))  # told again
    assert store.get_send("spring", run, uid)["state"] == "sent" and run_counts("spring", run)["sent"] == 1
    assert len(repository.get_person(uid)["pushes"]) == 1, "the push time is recorded once"
    assert len(fake_wechat.calls(CS)) == 1


def test_a_count_that_failed_after_the_send_item_was_written_is_made_when_the_outcome_is_told_again(
        aws, fake_wechat, monkeypatch):
    from wxloop.adapters.dynamo import campaigns as store
    from wxloop.adapters.dynamo.codec import RepositoryError
    from wxloop.services import jobs

    run = started_run()
    uid = user_message(OA_APP, "o-send-count")
    fail_once(monkeypatch, store, "add_counts", RepositoryError("throttled"))
    assert jobs.run(send_job(uid, "o-send-count", run), sink=None).status == "ok"
    assert store.get_send("spring", run, uid)["state"] == "sent" and "sent" not in run_counts("spring", run)
    (settle,) = aws.jobs()
    assert jobs.run(settle, sink=None).status == "ok"
    assert run_counts("spring", run)["sent"] == 1 and store.get_send("spring", run, uid)["counted"] is True
    assert not store.record_send_result("spring", run, uid, "sent", "oa_cs", NOW), "counted once"
    assert run_counts("spring", run)["sent"] == 1


def test_a_settle_job_dated_outside_the_queues_lifetime_is_poison(aws):
    from wxloop.services import jobs

    inner = send_job("u1", "o1", "r1")
    for at in (NOW - 15 * 86400, NOW + 3600):
        with pytest.raises(jobs.PoisonJob):
            jobs.run({"id": f"s{at}", "kind": "job_settle", "app_id": OA_APP, "job": inner, "status": "ok",
                      "at": at}, sink=None, now=NOW)


@pytest.mark.parametrize("job", [
    {"kind": "cs_send", "openid": "o1", "message": TEXT},  # a kind without an outcome to record
    {"kind": "job_settle"},  # itself
    {"kind": "campaign_send", "app_id": MP_APP},  # another account's job
])
def test_a_settle_job_naming_a_job_without_a_recorded_outcome_is_poison(aws, job):
    from wxloop.services import jobs

    inner = {"id": "x", "app_id": OA_APP, **job}
    if inner["kind"] == "campaign_send":
        inner = {**send_job("u1", "o1", "r1"), "app_id": MP_APP}
    if inner["kind"] == "job_settle":
        inner.update(job={"id": "y"}, status="ok", at=1)
    settle = {"id": "s", "kind": "job_settle", "app_id": OA_APP, "job": inner, "status": "ok", "at": NOW}
    with pytest.raises(jobs.PoisonJob):
        jobs.run(settle, sink=None)
    assert aws.jobs() == []


def test_the_push_list_keeps_the_newest_times_only(aws, fake_wechat):
    from wxloop.adapters import repository
    from wxloop.adapters.dynamo import campaigns as store
    from wxloop.adapters.dynamo import people

    run = started_run()
    uid = user_message(OA_APP, "o-many")
    for i in range(people.PUSHES_KEPT + 2):  # a mass send's tag batches record pushes one by one
        people.record_push(uid, NOW + i)
    kept = [NOW + i for i in range(2, people.PUSHES_KEPT + 2)]
    assert repository.get_person(uid)["pushes"] == kept
    assert store.record_send_result("spring", run, uid, "sent", "oa_cs", NOW + 99, push_at=NOW + 99)
    assert repository.get_person(uid)["pushes"] == [*kept[1:], NOW + 99]
    assert not store.record_send_result("spring", run, uid, "sent", "oa_cs", NOW + 100, push_at=NOW + 100)
    assert repository.get_person(uid)["pushes"][-1] == NOW + 99, "a second outcome for the send changes nothing"


def test_45015_closes_the_channel_for_that_person(aws, fake_wechat):
    from wxloop.adapters import repository
    from wxloop.adapters.dynamo import campaigns as store
    from wxloop.services import jobs

    run = started_run()
    uid = user_message(OA_APP, "o-send-2")
    fake_wechat.fail_next(CS, 45015)
    assert str(jobs.run(send_job(uid, "o-send-2", run), sink=None)) == "closed:45015"
    assert store.get_send("spring", run, uid)["state"] == "closed:45015"
    assert repository.get_identity(OA_APP, "o-send-2")["closed"]["cs"]["code"] == 45015
    assert "pushes" not in repository.get_person(uid)


def test_a_person_erased_after_planning_gets_no_job_no_message_and_no_send_item(aws, fake_wechat, tmp_path,
                                                                                monkeypatch):
    from wxloop.adapters.dynamo import campaigns as store
    from wxloop.analytics import lake
    from wxloop.services import campaigns as service
    from wxloop.services import jobs
    from wxloop.services.privacy import erasure

    monkeypatch.setenv("LAKE_PATH", str(tmp_path / "lake"))
    lake.reset()
    run = started_run()
    kept, gone = user_message(OA_APP, "o-keep"), user_message(OA_APP, "o-gone")
    job = send_job(gone, "o-gone", run)  # released before the erasure, run by the worker after it
    assert erasure.erase(gone, source="operator", sweep_after=0)["state"] == "done"
    entries = [[kept, "oa_cs", OA_APP, "o-keep"], [gone, "oa_cs", OA_APP, "o-gone"]]
    store.put_bucket("spring", run, NOW - NOW % 3600, 0, 1, entries)  # a page replayed from a scan made before
    assert service.release_run("spring", run, NOW) == 1
    assert [j["uid"] for j in drain(aws) if j["kind"] == "campaign_send"] == [kept]
    assert run_counts("spring", run)["skip_erased"] == 1
    assert str(jobs.run(job, sink=None)) == "closed"
    assert not fake_wechat.calls(CS)
    assert store.get_send("spring", run, gone) is None and not any(gone in str(i) for i in aws.items())
    lake.reset()


def test_45009_pauses_the_run_for_the_account_until_the_quota_resets(aws, fake_wechat):
    from wxloop.adapters.dynamo import campaigns as store
    from wxloop.services import campaigns as service
    from wxloop.services import jobs

    campaign = seed_and_push(80)
    run = service.start(campaign.id, now=NOW, segments=1, enqueue=lambda t: None)
    plan_all(campaign.id, run, 1)
    uid = user_message(OA_APP, "o-quota")
    fake_wechat.fail_next(CS, 45009)
    outcome = jobs.run(send_job(uid, "o-quota", run), sink=None)
    assert (outcome.status, outcome.errcode) == ("deferred", 45009)
    reset = jobs.quota_reset_after(int(time.time()))
    assert store.get_run(campaign.id, run)["paused_until"] == reset
    waiting = aws.sqs.get_queue_attributes(QueueUrl=aws.queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert waiting["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1", "the job waits in the queue"
    assert service.release_run(campaign.id, run, reset - 1) == 0, "paused: every bucket is held"
    assert store.has_buckets(campaign.id, run)
    assert service.release_run(campaign.id, run, reset + 8 * 86400) == run_counts(campaign.id, run)["planned"]


def test_the_handler_starts_a_scheduled_run_once_and_queues_its_segments(aws, context, monkeypatch):
    from wxloop.services import campaigns as service

    plan_queue = aws.sqs.create_queue(QueueName="wxloop-plan")["QueueUrl"]
    monkeypatch.setenv("PLAN_QUEUE_URL", plan_queue)
    service.push([campaign_doc()], NOW)
    handler = load_handler("campaigns")
    event = {"action": "start", "campaign": "spring", "scheduled_at": "2026-12-07T02:00:00Z", "segments": 2}
    assert handler.lambda_handler(event, context) == {"run": "20261207T020000Z"}
    assert handler.lambda_handler(event, context)["existing"] is True, "a retried schedule finds its run"
    got = aws.sqs.receive_message(QueueUrl=plan_queue, MaxNumberOfMessages=10)["Messages"]
    assert sorted(json.loads(m["Body"])["segment"] for m in got) == [0, 1]


def test_the_cli_pushes_plans_dry_and_runs_the_example_campaign(aws, capsys):
    from tests.conftest import ROOT
    from wxloop import demo_people
    from wxloop.cli import main

    example = str(ROOT / "rules" / "campaigns.example.yaml")
    assert main(["campaign", "validate", example]) == 0
    assert main(["campaign", "push", example]) == 0
    demo_people.seed(60, now=NOW, seed=3)
    before = len(aws.items())
    capsys.readouterr()
    assert main(["campaign", "plan", "dormant-back", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "people scanned: 60" in out and "per channel:" in out and "per send hour:" in out
    assert "not_in_segment" in out or "opted_out" in out
    assert len(aws.items()) == before, "a dry run writes nothing"
    assert main(["campaign", "run", "dormant-back", "--release-now"]) == 0
    out = capsys.readouterr().out
    planned = int(out.split("planned: ")[1].split()[0])
    assert f"{planned} sends queued now" in out and len(drain(aws)) == planned
    assert main(["campaign", "status", "dormant-back"]) == 0 and "done" in capsys.readouterr().out


def test_the_planner_reads_consent_records_and_sees_preferences_only_with_personalisation_consent():
    from wxloop.domain.campaigns import parse_campaign
    from wxloop.domain.consent import Consent
    from wxloop.services import campaigns as service

    campaign = parse_campaign(campaign_doc(mp_preferences={"topics": ["shoes"]}), "c")

    def person(uid: str, **extra) -> dict:
        return {"pk": f"USER#{uid}", "sk": "PROFILE", "uid": uid, "openids": {OA_APP: f"o-{uid}"},
                "prefs": {"topics": ["shoes"], "v": 1}, **extra}

    granted = Consent("personalisation", True, "2026-01", NOW - 60, "mp_api").to_item()
    opted_out = Consent("marketing", False, "2026-01", NOW - 60, "mp_api").to_item()
    people = [person("a", consent_personalisation=granted), person("b"),
              person("c", consent_personalisation=granted, consent_marketing=opted_out)]
    _, counts = service.plan_page(campaign, people, NOW, lambda keys: {})
    assert counts["scanned"] == 3 and counts["skip_not_in_segment"] == 2, counts
    assert counts["planned"] == 0  # "a" is in the segment, but no channel is open to it
