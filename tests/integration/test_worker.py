"""The worker handler on SQS events, with moto (table, queue + DLQ) and the fake WeChat API."""

from __future__ import annotations

import json

import pytest

from tests.conftest import MP_APP, OA_APP, load_handler
from tests.integration.conftest_wechat import new_identity, pump, sqs_event, sqs_record, user_message

pytest_plugins = ["tests.integration.conftest_wechat"]  # fixtures: fake_wechat

CS = "/cgi-bin/message/custom/send"
SUB = "/cgi-bin/message/subscribe/send"
TEXT = {"msgtype": "text", "text": {"content": "hello"}}


@pytest.fixture
def worker():
    return load_handler("worker")


def cs_job(job_id="j-cs-1", openid="o-oa-1", **extra):
    return {"id": job_id, "kind": "cs_send", "app_id": OA_APP, "openid": openid, "message": TEXT, **extra}


def sub_job(job_id="j-sub-1", openid="o-mp-1", **extra):
    return {"id": job_id, "kind": "subscribe_send", "app_id": MP_APP, "openid": openid, "template_id": "tpl-1",
            "page": "pages/index", "data": {"thing1": {"value": "x"}}, **extra}


def job_state(job_id):
    from wxloop.adapters import repository

    return repository.get_job(job_id) or {}


def test_cs_send_runs_once_even_when_delivered_twice(aws, fake_wechat, worker, context):
    user_message(OA_APP, "o-oa-1")  # opens the 48-hour customer-service window
    out = worker.lambda_handler(sqs_event(cs_job()), context)
    assert out == {"batchItemFailures": []}
    sent = fake_wechat.calls(CS)
    assert len(sent) == 1 and sent[0]["json"] == {"touser": "o-oa-1", **TEXT}
    assert job_state("j-cs-1")["state"] == "done" and job_state("j-cs-1")["outcome"] == "ok"
    assert worker.lambda_handler(sqs_event(cs_job()), context) == {"batchItemFailures": []}
    assert len(fake_wechat.calls(CS)) == 1  # the duplicate did nothing


def test_45015_closes_the_cs_channel_for_that_person_without_retry(aws, fake_wechat, worker, context):
    new_identity(OA_APP, "o-oa-1")
    fake_wechat.fail_next(CS, 45015)
    assert worker.lambda_handler(sqs_event(cs_job()), context) == {"batchItemFailures": []}
    from wxloop.adapters import repository

    closed = repository.get_identity(OA_APP, "o-oa-1")["closed"]
    assert closed["cs"]["code"] == 45015 and closed["cs"]["at"] > 0
    assert job_state("j-cs-1")["outcome"] == "closed:45015"
    assert aws.jobs() == []  # not re-queued
    assert len(fake_wechat.calls(CS)) == 1


def test_after_45015_the_window_is_used_up_until_the_person_writes_again(aws, fake_wechat, worker, context):
    from wxloop.adapters import repository

    user_message(OA_APP, "o-oa-1", msg_id=1)
    fake_wechat.fail_next(CS, 45015)
    worker.lambda_handler(sqs_event(cs_job()), context)
    assert repository.get_identity(OA_APP, "o-oa-1")["win_msg_sent"] == 5  # not refunded: WeChat has no window
    worker.lambda_handler(sqs_event(cs_job("j-cs-2")), context)
    assert job_state("j-cs-2")["outcome"] == "closed:window" and len(fake_wechat.calls(CS)) == 1
    user_message(OA_APP, "o-oa-1", msg_id=2)  # a new message opens a new window
    worker.lambda_handler(sqs_event(cs_job("j-cs-3")), context)
    assert job_state("j-cs-3")["outcome"] == "ok" and len(fake_wechat.calls(CS)) == 2


def test_43101_closes_the_subscribe_channel_of_that_template(aws, fake_wechat, worker, context):
    import time

    new_identity(MP_APP, "o-mp-1")
    new_identity(MP_APP, "o-mp-2")
    fake_wechat.fail_next(SUB, 43101, times=2)
    before = int(time.time())
    worker.lambda_handler(sqs_event(sub_job(), sub_job("j-sub-2", "o-mp-2", template_id="tpl-2")), context)
    from wxloop.adapters import repository

    closed = repository.get_identity(MP_APP, "o-mp-1")["closed"]
    assert set(closed) == {"subscribe:tpl-1"} and closed["subscribe:tpl-1"]["code"] == 43101
    assert before <= closed["subscribe:tpl-1"]["at"] <= int(time.time())
    assert set(repository.get_identity(MP_APP, "o-mp-2")["closed"]) == {"subscribe:tpl-2"}
    assert job_state("j-sub-1")["outcome"] == "closed:43101"


def test_a_second_closed_channel_joins_the_first(aws, fake_wechat):
    from wxloop.adapters import repository

    new_identity(OA_APP, "o-oa-1")
    assert repository.mark_channel_closed(OA_APP, "o-oa-1", "cs", 45015, 100)
    assert repository.mark_channel_closed(OA_APP, "o-oa-1", "subscribe:t", 43101, 200)
    assert repository.get_identity(OA_APP, "o-oa-1")["closed"] == {
        "cs": {"code": 45015, "at": 100}, "subscribe:t": {"code": 43101, "at": 200}}
    assert repository.mark_channel_closed(OA_APP, "o-nobody", "cs", 45015, 100) is False
    assert repository.get_identity(OA_APP, "o-nobody") is None


def test_subscribe_send_spends_a_credit_when_the_counter_exists(aws, fake_wechat, worker, context):
    from wxloop.adapters import repository

    aws.ddb.put_item(TableName=aws.table, Item=repository.marshal(
        {"pk": f"ID#{MP_APP}#o-mp-1", "sk": "SUB#tpl-1", "remaining": 2}))
    worker.lambda_handler(sqs_event(sub_job(), sub_job("j-sub-2", "o-mp-2")), context)
    sent = fake_wechat.calls(SUB)
    assert [c["json"]["touser"] for c in sent] == ["o-mp-1", "o-mp-2"]
    assert sent[0]["json"] == {"touser": "o-mp-1", "template_id": "tpl-1", "data": {"thing1": {"value": "x"}},
                               "page": "pages/index"}
    item = aws.ddb.get_item(TableName=aws.table, Key={"pk": {"S": f"ID#{MP_APP}#o-mp-1"}, "sk": {"S": "SUB#tpl-1"}})
    assert item["Item"]["remaining"] == {"N": "1"}
    no_counter = aws.ddb.get_item(TableName=aws.table, Key={"pk": {"S": f"ID#{MP_APP}#o-mp-2"}, "sk": {"S": "SUB#tpl-1"}})
    assert "Item" not in no_counter  # no counter is invented


@pytest.mark.parametrize("errcode", [45047])
def test_cap_errors_requeue_the_job_with_a_growing_delay(aws, fake_wechat, worker, context, monkeypatch, errcode):
    user_message(OA_APP, "o-oa-1")  # opens the 48-hour customer-service window
    from wxloop.services import jobs

    sent = []
    real_send = jobs.queue.send
    monkeypatch.setattr(jobs.queue, "send", lambda job, delay_seconds=0: (sent.append((job, delay_seconds)),
                                                                          real_send(job, delay_seconds=delay_seconds)))
    fake_wechat.fail_next(CS, errcode, times=2)
    assert worker.lambda_handler(sqs_event(cs_job()), context) == {"batchItemFailures": []}
    assert worker.lambda_handler(sqs_event(sent[0][0]), context) == {"batchItemFailures": []}
    assert [(job["deferrals"], delay) for job, delay in sent] == [(1, 60), (2, 120)]
    attrs = aws.sqs.get_queue_attributes(QueueUrl=aws.queue_url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesDelayed"] == "2"  # moto honours DelaySeconds
    # the claim was released, so the delayed copy runs when it arrives
    assert worker.lambda_handler(sqs_event(sent[1][0]), context) == {"batchItemFailures": []}
    assert job_state("j-cs-1")["outcome"] == "ok" and len(fake_wechat.calls(CS)) == 3


def test_a_job_deferred_too_often_gives_up(aws, fake_wechat, worker, context):
    user_message(OA_APP, "o-oa-1")  # opens the 48-hour customer-service window
    from wxloop.services import jobs

    fake_wechat.fail_next(CS, 45047)
    worker.lambda_handler(sqs_event(cs_job(deferrals=jobs.MAX_DEFERRALS)), context)
    assert job_state("j-cs-1")["outcome"] == "gave_up:45047"
    assert aws.jobs() == []
    assert jobs.backoff_seconds(10) == 900


def test_45009_stops_that_api_until_the_quota_resets_and_loses_no_job(aws, fake_wechat, monkeypatch):
    from wxloop.services import jobs

    sent = []
    monkeypatch.setattr(jobs.queue, "send", lambda job, delay_seconds=0: sent.append((dict(job), delay_seconds)))
    now = 1_700_000_000  # 2023-11-14 22:13:20 UTC = 06:13:20 on the 15th in China
    midnight_china = 1_700_064_000  # 2023-11-16 00:00 China time
    assert jobs.quota_reset_after(now) == midnight_china
    fake_wechat.fail_next(CS, 45009)
    user_message(OA_APP, "o-oa-1", now=now)  # 48-hour window: still open after the reset

    first = jobs.run(cs_job("j-a"), now=now, sink=None)
    assert (first.status, first.errcode) == ("deferred", 45009)
    assert sent == [(cs_job("j-a"), 900)] and len(fake_wechat.calls(CS)) == 1
    # another job for the same API waits without calling WeChat; other APIs are not blocked
    second = jobs.run(cs_job("j-b"), now=now + 60, sink=None)
    assert second.status == "deferred" and len(fake_wechat.calls(CS)) == 1
    assert sent[1] == (cs_job("j-b"), 900)
    close = jobs.run(cs_job("j-c"), now=midnight_china - 100, sink=None)
    assert close.status == "deferred" and sent[2] == (cs_job("j-c"), 100)
    fake_wechat.add_user(OA_APP, "o-oa-9")
    new_identity(OA_APP, "o-oa-9")
    assert jobs.run({"id": "j-u", "kind": "user_info", "app_id": OA_APP, "openid": "o-oa-9"},
                    now=now + 60, sink=None).status == "ok"
    # after the reset the re-queued copies run (the first one's claim was released)
    assert jobs.run(cs_job("j-a"), now=midnight_china + 1, sink=None).status == "ok"
    assert jobs.run(cs_job("j-b"), now=midnight_china + 2, sink=None).status == "ok"
    assert len(fake_wechat.calls(CS)) == 3


def test_cs_send_spends_the_windows_and_sends_nothing_outside_them(aws, fake_wechat):
    from wxloop.adapters import repository
    from wxloop.services import jobs

    now = 1_700_000_000
    assert jobs.run(cs_job("j-none"), now=now, sink=None).status == "closed"  # never wrote to us
    assert job_state("j-none")["outcome"] == "closed:window"
    new_identity(OA_APP, "o-oa-1", now=now)  # a follow: 3 messages within a minute
    user_message(OA_APP, "o-oa-1", now=now + 10)  # and a message: 5 within 48 hours
    outcomes = [jobs.run(cs_job(f"j-{i}"), now=now + 20, sink=None).detail for i in range(9)]
    assert outcomes == ["sent:evt"] * 3 + ["sent:msg"] * 5 + ["window"]
    assert len(fake_wechat.calls(CS)) == 8
    identity = repository.get_identity(OA_APP, "o-oa-1")
    assert (identity["win_evt_sent"], identity["win_msg_sent"]) == (3, 5)
    user_message(OA_APP, "o-oa-1", now=now + 100, msg_id=2)  # a new message reopens the 48 hours
    assert jobs.run(cs_job("j-again"), now=now + 110, sink=None).detail == "sent:msg"
    assert jobs.run(cs_job("j-late"), now=now + 100 + 48 * 3600, sink=None).status == "closed"
    assert len(fake_wechat.calls(CS)) == 9


def test_the_last_message_of_a_window_goes_to_one_of_two_concurrent_senders(aws):
    from wxloop.adapters import repository

    user_message(OA_APP, "o-oa-1", now=1000)
    for _ in range(4):
        assert repository.spend_cs_window(OA_APP, "o-oa-1", "msg", 1000, 5)
    assert repository.spend_cs_window(OA_APP, "o-oa-1", "msg", 1000, 5)
    assert not repository.spend_cs_window(OA_APP, "o-oa-1", "msg", 1000, 5)  # used up
    assert not repository.spend_cs_window(OA_APP, "o-oa-1", "msg", 999, 5)  # a window opened before


@pytest.mark.parametrize("failure", ["http_502", "timeout"])
def test_5xx_and_timeouts_report_the_record_for_sqs_retry_then_succeed(aws, fake_wechat, worker, context, failure):
    user_message(OA_APP, "o-oa-1")  # opens the 48-hour customer-service window
    if failure == "http_502":
        fake_wechat.fail_next(CS, status=502)
    else:
        fake_wechat.slow_next(CS, 2.5)  # the fixture sets WECHAT_API_TIMEOUT=2
    event = sqs_event(cs_job())
    message_id = event["Records"][0]["messageId"]
    # one record that fails is the whole batch failing: Powertools raises, and SQS retries it
    with pytest.raises(Exception, match="All records failed"):
        worker.lambda_handler(event, context)
    assert job_state("j-cs-1")["state"] == "running" and job_state("j-cs-1")["lease_until"] == 0  # released
    good = sqs_record(json.dumps(cs_job("j-cs-2")))
    fake_wechat.fail_next(CS, status=502)
    out = worker.lambda_handler({"Records": [event["Records"][0], good]}, context)
    assert out == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert worker.lambda_handler(event, context) == {"batchItemFailures": []}
    assert job_state("j-cs-1")["outcome"] == "ok"


def test_an_unknown_errcode_is_recorded_and_not_retried(aws, fake_wechat, worker, context):
    user_message(OA_APP, "o-oa-1")  # opens the 48-hour customer-service window
    fake_wechat.fail_next(CS, 40003)
    assert worker.lambda_handler(sqs_event(cs_job()), context) == {"batchItemFailures": []}
    assert job_state("j-cs-1")["outcome"] == "failed:40003"
    assert len(fake_wechat.calls(CS)) == 1


def test_partial_batch_failure_reports_only_the_bad_message(aws, fake_wechat, worker, context):
    user_message(OA_APP, "o-oa-1")  # opens the 48-hour customer-service window
    bad = sqs_record("{not json", message_id="m-bad")
    good = sqs_record(json.dumps(cs_job()), message_id="m-good")
    out = worker.lambda_handler({"Records": [bad, good]}, context)
    assert out == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}
    assert len(fake_wechat.calls(CS)) == 1


def test_a_job_claimed_by_a_running_worker_is_retried_later_not_dropped(aws, fake_wechat, worker, context):
    user_message(OA_APP, "o-oa-1")  # opens the 48-hour customer-service window
    import time

    from wxloop.adapters import repository

    assert repository.claim_job("j-cs-1", int(time.time()) + 3600, lease_seconds=60)
    out = worker.lambda_handler({"Records": [sqs_record(json.dumps(cs_job()), message_id="m1"),
                                             sqs_record(json.dumps(cs_job("j-cs-2")), message_id="m2")]}, context)
    assert out == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert [c["json"]["touser"] for c in fake_wechat.calls(CS)] == ["o-oa-1"]  # only j-cs-2 ran


def test_poison_messages_end_in_the_dlq_after_max_receives_and_their_body_is_not_logged(
        aws, fake_wechat, worker, context, capsys, caplog):
    """moto applies the redrive policy (maxReceiveCount 3) when a message is received too often; ``pump``
    plays the event source mapping (failed records become visible again at once)."""
    secret_body = '{"id": "p1", "kind": "launch_rockets", "app_id": "wx1234567890abcdef", "phone": "13900001111"}'
    for body in ("definitely not json 13900001111", secret_body):
        aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=body)
    user_message(OA_APP, "o-oa-1")  # opens the 48-hour customer-service window
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps(cs_job()))
    responses = pump(aws, worker.lambda_handler, context)
    assert len(responses) == 3  # three receives of the poison pair, the good job ran on the first
    dead = aws.sqs.receive_message(QueueUrl=aws.dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in dead) == sorted(["definitely not json 13900001111", secret_body])
    assert aws.sqs.receive_message(QueueUrl=aws.queue_url).get("Messages") is None
    assert len(fake_wechat.calls(CS)) == 1
    poison_logs = [r for r in caplog.records if r.getMessage() == "poison job"]
    assert len(poison_logs) == 6
    assert all("13900001111" not in str(r.__dict__) for r in caplog.records)
    assert '"job.poison"' in capsys.readouterr().out  # EMF metric


def test_a_subscribe_ends_with_the_unionid_linked(aws, fake_wechat, worker, context):
    from wxloop.adapters import repository

    uid = new_identity(OA_APP, "o-oa-1")
    fake_wechat.add_user(OA_APP, "o-oa-1", unionid="un-1")
    job = {"id": "sub-evt:user_info", "kind": "user_info", "app_id": OA_APP, "openid": "o-oa-1"}
    assert worker.lambda_handler(sqs_event(job), context) == {"batchItemFailures": []}
    union = repository.unmarshal(aws.ddb.get_item(TableName=aws.table, Key=repository.union_key("un-1"))["Item"])
    assert union["uid"] == uid
    assert repository.get_person(uid)["unionid"] == "un-1"
    assert repository.get_identity(OA_APP, "o-oa-1")["unionid"] == "un-1"
    assert job_state("sub-evt:user_info")["outcome"] == "ok"


def test_a_follower_without_unionid_is_fine(aws, fake_wechat, worker, context):
    new_identity(OA_APP, "o-oa-1")
    job = {"id": "j-ui", "kind": "user_info", "app_id": OA_APP, "openid": "o-oa-1"}
    assert worker.lambda_handler(sqs_event(job), context) == {"batchItemFailures": []}
    assert not [i for i in aws.items() if i["pk"].startswith("UNION#")]


def test_user_info_before_the_identity_exists_is_retried(aws, fake_wechat, worker, context):
    fake_wechat.add_user(OA_APP, "o-late", unionid="un-2")
    job = {"id": "j-ui", "kind": "user_info", "app_id": OA_APP, "openid": "o-late"}
    with pytest.raises(Exception, match="All records failed"):
        worker.lambda_handler(sqs_event(job), context)
    new_identity(OA_APP, "o-late")
    assert worker.lambda_handler(sqs_event(job), context) == {"batchItemFailures": []}


def test_a_unionid_seen_on_the_oa_merges_the_follower_into_the_mini_program_person(aws, fake_wechat, worker, context):
    """Given an MP user already linked to unionid U, when the same person follows the OA (a new person) and
    user/info returns U, then the OA identity resolves to the MP person, which gains the OA openid, and the
    OA-only person is marked merged. Running it again changes nothing."""
    from wxloop.adapters import repository

    mp_uid = new_identity(MP_APP, "o-mp-1", now=1000)
    assert repository.link_unionid(MP_APP, "o-mp-1", "un-1", 1001) == mp_uid  # claim
    oa_uid = new_identity(OA_APP, "o-oa-1", now=2000)
    fake_wechat.add_user(OA_APP, "o-oa-1", unionid="un-1")
    worker.lambda_handler(sqs_event({"id": "j-ui", "kind": "user_info", "app_id": OA_APP, "openid": "o-oa-1"}),
                          context)
    assert repository.get_identity(OA_APP, "o-oa-1")["uid"] == mp_uid
    survivor, loser = repository.get_person(mp_uid), repository.get_person(oa_uid)
    assert survivor["openids"] == {MP_APP: "o-mp-1", OA_APP: "o-oa-1"} and survivor["unionid"] == "un-1"
    assert survivor["first_touch"]["app_id"] == MP_APP  # the MP touched first
    assert loser["merged_into"] == mp_uid
    before = aws.items()
    assert repository.link_unionid(OA_APP, "o-oa-1", "un-1", 3000) == mp_uid
    assert aws.items() == before


def test_merge_keeps_the_earliest_first_touch(aws, fake_wechat):
    from wxloop.adapters import repository

    oa_uid = new_identity(OA_APP, "o-oa-1", now=500)
    mp_uid = new_identity(MP_APP, "o-mp-1", now=1000)
    repository.link_unionid(MP_APP, "o-mp-1", "un-1", 1001)
    assert repository.link_unionid(OA_APP, "o-oa-1", "un-1", 1002) == mp_uid
    assert repository.get_person(mp_uid)["first_touch"]["app_id"] == OA_APP
    assert repository.get_person(oa_uid)["merged_into"] == mp_uid


def test_tag_job(aws, fake_wechat, worker, context):
    job = {"id": "j-tag", "kind": "tag", "app_id": OA_APP, "openid": "o-oa-1", "add": [100, 101], "remove": [7]}
    assert worker.lambda_handler(sqs_event(job), context) == {"batchItemFailures": []}
    tagged = fake_wechat.calls("/cgi-bin/tags/members/batchtagging")
    assert [c["json"] for c in tagged] == [{"tagid": 100, "openid_list": ["o-oa-1"]},
                                           {"tagid": 101, "openid_list": ["o-oa-1"]}]
    assert fake_wechat.calls("/cgi-bin/tags/members/batchuntagging")[0]["json"] == {"tagid": 7, "openid_list": ["o-oa-1"]}


def test_touch_job_hands_the_push_to_the_recorder_once(aws, fake_wechat, worker, context, monkeypatch):
    from wxloop.services import oa_push

    seen = []
    monkeypatch.setattr(oa_push, "record_later", lambda job: seen.append(job["id"]) or "recorded")
    job = {"id": "k1:touch", "kind": "touch", "app_id": OA_APP, "at": 1700000000,
           "inbound": {"openid": "o-oa-1", "to_user": "gh_x", "msg_type": "text", "create_time": 1700000000,
                       "msg_id": "1", "content": "hi"}}
    assert worker.lambda_handler(sqs_event(job), context) == {"batchItemFailures": []}
    assert worker.lambda_handler(sqs_event(job), context) == {"batchItemFailures": []}
    assert seen == ["k1:touch"]
    assert fake_wechat.calls() == []  # no WeChat call, no token fetch


@pytest.mark.parametrize("body", [
    "[]", '{"kind": "cs_send"}', '{"id": "x", "kind": "cs_send", "app_id": "wx1"}',
    '{"id": "x", "kind": "cs_send", "app_id": "wx1", "openid": "o", "message": {"text": "no msgtype"}}',
    '{"id": "x", "kind": "tag", "app_id": "wx1", "openid": "o", "add": ["vip"]}',
])
def test_malformed_jobs_are_poison(body):
    from wxloop.services import jobs

    with pytest.raises(jobs.PoisonJob):
        jobs.parse(body)


def test_a_token_that_cannot_be_fetched_keeps_the_job_for_retry(aws, fake_wechat, worker, context):
    """40164 (caller IP not on the OA's allow-list) on the token fetch is not the job's fault: SQS keeps it,
    and the failed attempts do not use up the person's customer-service window."""
    from wxloop.adapters import repository

    user_message(OA_APP, "o-oa-1")  # opens the 48-hour customer-service window
    fake_wechat.fail_next("/cgi-bin/stable_token", 40164, times=6)
    for _ in range(6):
        with pytest.raises(Exception, match="All records failed"):
            worker.lambda_handler(sqs_event(cs_job()), context)
    assert fake_wechat.calls(CS) == [] and job_state("j-cs-1")["lease_until"] == 0
    assert repository.get_identity(OA_APP, "o-oa-1")["win_msg_sent"] == 0
    assert worker.lambda_handler(sqs_event(cs_job()), context) == {"batchItemFailures": []}
    assert job_state("j-cs-1")["outcome"] == "ok"
    assert repository.get_identity(OA_APP, "o-oa-1")["win_msg_sent"] == 1


def test_a_sent_message_whose_done_mark_fails_is_acknowledged_not_retried(aws, fake_wechat, worker, context,
                                                                          monkeypatch):
    from wxloop.adapters import repository

    user_message(OA_APP, "o-oa-1")
    real = repository.finish_job
    monkeypatch.setattr(repository, "finish_job", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("ddb down")))
    assert worker.lambda_handler(sqs_event(cs_job()), context) == {"batchItemFailures": []}  # SQS deletes it
    monkeypatch.setattr(repository, "finish_job", real)
    assert len(fake_wechat.calls(CS)) == 1
    # a copy of the job delivered while the claim's lease runs is not sent either
    with pytest.raises(Exception, match="All records failed"):  # busy (the claim's lease): SQS retries later
        worker.lambda_handler(sqs_event(cs_job()), context)
    assert len(fake_wechat.calls(CS)) == 1


def test_a_done_mark_that_fails_once_is_tried_again(aws, fake_wechat, worker, context, monkeypatch):
    from wxloop.adapters import repository

    user_message(OA_APP, "o-oa-1")
    real, calls = repository.finish_job, []

    def flaky(*a, **k):
        calls.append(a)
        if len(calls) == 1:
            raise RuntimeError("throttled")
        return real(*a, **k)

    monkeypatch.setattr(repository, "finish_job", flaky)
    assert worker.lambda_handler(sqs_event(cs_job()), context) == {"batchItemFailures": []}
    assert len(calls) == 2 and repository.get_job(cs_job()["id"])["state"] == "done"
    assert worker.lambda_handler(sqs_event(cs_job()), context) == {"batchItemFailures": []}  # a duplicate
    assert len(fake_wechat.calls(CS)) == 1


# --- customer-service windows: a window reopened mid-job, unfollowed people ----------------------------------


def unfollow(app_id, openid, *, now):
    from wxloop.adapters import repository
    from wxloop.domain.inbound import Inbound

    inb = Inbound(openid=openid, to_user="gh_test", msg_type="event", create_time=now, event="unsubscribe")
    assert repository.touch_identity(app_id, inb, now=now, event={"type": "test"}, reply=None).status == "recorded"


def test_a_window_reopened_between_the_read_and_the_spend_is_read_again_and_spent(aws, fake_wechat, monkeypatch):
    """Given a person who messaged at T, and a job that read the identity before the person wrote again at
    T+50 (which moved the window's open time), when the job runs at T+60, then it sends once."""
    from wxloop.adapters import repository
    from wxloop.services import jobs

    t = 1_700_000_000
    user_message(OA_APP, "o-oa-1", now=t)
    before = repository.get_identity(OA_APP, "o-oa-1")
    user_message(OA_APP, "o-oa-1", now=t + 50, msg_id=2)
    real, reads = repository.get_identity, []

    def get_identity(app_id, openid):  # the first read is the one made before the second message
        reads.append(openid)
        return before if len(reads) == 1 else real(app_id, openid)

    monkeypatch.setattr(repository, "get_identity", get_identity)
    outcome = jobs.run(cs_job(), now=t + 60, sink=None)
    assert (outcome.status, outcome.detail) == ("ok", "sent:msg") and len(reads) == 2
    assert len(fake_wechat.calls(CS)) == 1
    identity = real(OA_APP, "o-oa-1")
    assert (identity["win_msg_at"], identity["win_msg_sent"]) == (t + 50, 1)


def test_a_window_the_person_opened_after_the_job_started_is_used(aws, fake_wechat):
    """Given a person whose last message window closed, when they write again a second after the job read
    its clock, then the job sends in the new window rather than ending closed:window."""
    from wxloop.services import jobs

    t = 1_700_000_000
    user_message(OA_APP, "o-oa-1", now=t - 49 * 3600)  # that window closed an hour ago
    user_message(OA_APP, "o-oa-1", now=t + 1, msg_id=2)
    outcome = jobs.run(cs_job(), now=t, sink=None)
    assert (outcome.status, outcome.detail) == ("ok", "sent:msg")
    assert len(fake_wechat.calls(CS)) == 1


def test_the_window_is_read_again_a_bounded_number_of_times(aws, fake_wechat, monkeypatch):
    from wxloop.adapters import repository
    from wxloop.services import jobs

    t = 1_700_000_000
    user_message(OA_APP, "o-oa-1", now=t)
    stale = repository.get_identity(OA_APP, "o-oa-1")
    user_message(OA_APP, "o-oa-1", now=t + 50, msg_id=2)
    reads = []
    monkeypatch.setattr(repository, "get_identity", lambda app_id, openid: reads.append(1) or stale)
    assert str(jobs.run(cs_job(), now=t + 60, sink=None)) == "closed"
    assert len(reads) == jobs.CS_SPEND_TRIES and job_state("j-cs-1")["outcome"] == "closed:window"
    assert fake_wechat.calls(CS) == []


def test_a_person_who_unfollowed_gets_no_cs_message_and_keeps_the_window(aws, fake_wechat, worker, context):
    from wxloop.adapters import repository

    t = 1_700_000_000
    user_message(OA_APP, "o-oa-1", now=t)  # the window is open (48 h)...
    unfollow(OA_APP, "o-oa-1", now=t + 10)  # ...but the person has left
    from wxloop.services import jobs

    outcome = jobs.run(cs_job(), now=t + 20, sink=None)
    assert (outcome.status, outcome.detail) == ("closed", "unsubscribed")
    assert job_state("j-cs-1")["outcome"] == "closed:unsubscribed"
    assert fake_wechat.calls() == []  # not even a token fetch
    identity = repository.get_identity(OA_APP, "o-oa-1")
    assert identity["following"] is False and identity["win_msg_sent"] == 0
    assert aws.jobs() == []  # not re-queued


# --- transient failures: retried with a growing delay -------------------------------------------------------


@pytest.mark.parametrize("answer", ["errcode_-1", "html_200", "html_502"])
def test_system_busy_and_answers_that_are_not_json_are_retried(aws, fake_wechat, worker, context, answer):
    from wxloop.adapters import repository

    user_message(OA_APP, "o-oa-1")  # opens the 48-hour customer-service window
    if answer == "errcode_-1":
        fake_wechat.fail_next(CS, -1)
    else:
        page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
        fake_wechat.fail_next(CS, status=int(answer[-3:]), body=page)
    event = sqs_event(cs_job())
    with pytest.raises(Exception, match="All records failed"):
        worker.lambda_handler(event, context)
    state = job_state("j-cs-1")
    assert state["state"] == "running" and state["lease_until"] == 0 and "outcome" not in state  # released
    assert repository.get_identity(OA_APP, "o-oa-1")["win_msg_sent"] == 0  # the message was given back
    assert len(fake_wechat.calls(CS)) == 1
    assert worker.lambda_handler(event, context) == {"batchItemFailures": []}
    assert job_state("j-cs-1")["outcome"] == "ok" and len(fake_wechat.calls(CS)) == 2


def test_the_retry_delay_grows_with_the_receive_count():
    from wxloop.services import jobs

    assert [jobs.retry_delay_seconds(n) for n in range(1, 8)] == [30, 60, 120, 240, 480, 900, 900]
    assert jobs.retry_delay_seconds("3") == 120
    assert jobs.retry_delay_seconds(None) == jobs.retry_delay_seconds("x") == jobs.retry_delay_seconds(0) == 30
    assert jobs.retry_delay_seconds(10_000) == 900


def test_a_failed_record_is_hidden_for_the_delay_of_its_receive_count(aws, fake_wechat, worker, context):
    """The failed record's visibility is changed on the queue it came from (QueueUrl from its
    eventSourceARN): moto then keeps it hidden, though it was received with no visibility timeout at all."""
    from wxloop.adapters import aws as clients

    user_message(OA_APP, "o-oa-1")  # opens the 48-hour customer-service window
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps(cs_job()))
    [msg] = aws.sqs.receive_message(QueueUrl=aws.queue_url, VisibilityTimeout=0)["Messages"]
    record = dict(sqs_record(msg["Body"], message_id=msg["MessageId"], receive_count=3),
                  receiptHandle=msg["ReceiptHandle"])
    seen = []
    clients.client("sqs").meta.events.register(
        "provide-client-params.sqs.ChangeMessageVisibility", lambda params, **_: seen.append(dict(params)))
    fake_wechat.fail_next(CS, status=503)
    with pytest.raises(Exception, match="All records failed"):
        worker.lambda_handler({"Records": [record]}, context)
    assert seen == [{"QueueUrl": aws.queue_url, "ReceiptHandle": msg["ReceiptHandle"], "VisibilityTimeout": 120}]
    assert aws.sqs.receive_message(QueueUrl=aws.queue_url).get("Messages") is None  # hidden for 120 s


def test_a_failure_to_delay_the_retry_is_logged_and_the_record_still_reported(aws, fake_wechat, worker, context,
                                                                              caplog):
    from wxloop.adapters import aws as clients

    def refuse(**_):
        raise RuntimeError("sqs is down")

    clients.client("sqs").meta.events.register("before-call.sqs.ChangeMessageVisibility", refuse)
    user_message(OA_APP, "o-oa-1")  # opens the 48-hour customer-service window
    fake_wechat.fail_next(CS, status=502)
    bad, good = sqs_record(json.dumps(cs_job()), message_id="m-bad"), sqs_record(json.dumps(cs_job("j-2")))
    assert worker.lambda_handler({"Records": [bad, good]}, context) == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}
    assert [r for r in caplog.records if r.getMessage() == "retry delay not set"]


def test_the_queue_url_comes_from_the_records_source(aws, monkeypatch):
    from wxloop.services import jobs

    assert jobs.queue_url_of("arn:aws:sqs:us-east-1:123456789012:wxloop-jobs") == aws.queue_url
    monkeypatch.setenv("QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/other")
    assert jobs.queue_url_of("arn:aws:sqs:us-east-1:123456789012:wxloop-jobs") == \
        "https://sqs.us-east-1.amazonaws.com/123456789012/wxloop-jobs"
    assert jobs.queue_url_of("arn:aws:dynamodb:us-east-1:123456789012:table/x") is None
    assert jobs.queue_url_of("") is None


# --- subscribe-message credits ------------------------------------------------------------------------------


def put_credit(aws, remaining, openid="o-mp-1", template_id="tpl-1"):
    from wxloop.adapters import repository

    aws.ddb.put_item(TableName=aws.table, Item=repository.marshal(
        {"pk": f"ID#{MP_APP}#{openid}", "sk": f"SUB#{template_id}", "remaining": remaining}))


def credit(aws, openid="o-mp-1", template_id="tpl-1"):
    from wxloop.adapters import repository

    got = aws.ddb.get_item(TableName=aws.table, Key={"pk": {"S": f"ID#{MP_APP}#{openid}"},
                                                     "sk": {"S": f"SUB#{template_id}"}})
    return repository.unmarshal(got.get("Item"))


@pytest.fixture
def credit_at_send(aws, monkeypatch):
    """The ``remaining`` of the person's credit each time WeChat's subscribe/send is called."""
    from wxloop.services import jobs

    real_client, seen = jobs.context.wechat_client, []

    class Watching:
        def __init__(self, app_id):
            self.inner = real_client(app_id)

        def post(self, *args, **kwargs):
            seen.append((credit(aws) or {}).get("remaining"))
            return self.inner.post(*args, **kwargs)

    monkeypatch.setattr(jobs.context, "wechat_client", Watching)
    return seen


def test_a_subscribe_credit_is_spent_before_the_send_and_none_left_means_no_send(aws, fake_wechat, worker, context,
                                                                                credit_at_send):
    put_credit(aws, 1)
    assert worker.lambda_handler(sqs_event(sub_job()), context) == {"batchItemFailures": []}
    assert credit_at_send == [0] and job_state("j-sub-1")["outcome"] == "ok"
    # no credit left: closed without calling WeChat
    assert worker.lambda_handler(sqs_event(sub_job("j-sub-2")), context) == {"batchItemFailures": []}
    assert job_state("j-sub-2")["outcome"] == "closed:credit"
    assert len(fake_wechat.calls(SUB)) == 1 and credit(aws)["remaining"] == 0


def test_a_subscribe_credit_is_given_back_when_the_send_fails_transiently(aws, fake_wechat, worker, context,
                                                                         credit_at_send):
    put_credit(aws, 1)
    fake_wechat.fail_next(SUB, status=502)
    with pytest.raises(Exception, match="All records failed"):
        worker.lambda_handler(sqs_event(sub_job()), context)
    assert credit_at_send == [0]  # spent for the call...
    assert credit(aws)["remaining"] == 1 and "outcome" not in job_state("j-sub-1")  # ...and given back
    assert worker.lambda_handler(sqs_event(sub_job()), context) == {"batchItemFailures": []}
    assert credit_at_send == [0, 0] and credit(aws)["remaining"] == 0 and job_state("j-sub-1")["outcome"] == "ok"
    assert len(fake_wechat.calls(SUB)) == 2


def test_a_refund_does_not_undo_a_reset_made_meanwhile(aws):
    from wxloop.adapters import repository

    put_credit(aws, 2)
    state, gen = repository.spend_subscribe_credit(MP_APP, "o-mp-1", "tpl-1")
    assert (state, gen) == ("spent", 0) and credit(aws)["remaining"] == 1
    assert repository.zero_subscribe_credit(MP_APP, "o-mp-1", "tpl-1", 100)  # e.g. the person refused
    assert not repository.refund_subscribe_credit(MP_APP, "o-mp-1", "tpl-1", gen)
    assert credit(aws)["remaining"] == 0
    assert repository.spend_subscribe_credit(MP_APP, "o-mp-1", "tpl-1") == ("none_left", 0)
    assert repository.spend_subscribe_credit(MP_APP, "o-mp-2", "tpl-1") == ("no_counter", 0)


def test_43101_sets_the_subscribe_credit_to_zero(aws, fake_wechat, worker, context):
    new_identity(MP_APP, "o-mp-1")
    put_credit(aws, 3)
    fake_wechat.fail_next(SUB, 43101)
    assert worker.lambda_handler(sqs_event(sub_job()), context) == {"batchItemFailures": []}
    assert credit(aws)["remaining"] == 0 and job_state("j-sub-1")["outcome"] == "closed:43101"
    assert worker.lambda_handler(sqs_event(sub_job("j-sub-2")), context) == {"batchItemFailures": []}
    assert job_state("j-sub-2")["outcome"] == "closed:credit" and len(fake_wechat.calls(SUB)) == 1


# --- what a failure log may say ------------------------------------------------------------------------------


def test_a_failed_job_is_logged_with_its_type_and_code_never_the_exceptions_text(aws, fake_wechat, worker, context,
                                                                                  monkeypatch, caplog):
    """An exception's text can quote the job (here a phone number and an openid): the worker logs only its
    type, and WeChat's errcode when there is one."""
    from wxloop.adapters import repository

    def leaky(app_id, openid):
        raise RuntimeError(f"ID#{app_id}#{openid} phone 13900001111")

    monkeypatch.setattr(repository, "get_identity", leaky)
    with pytest.raises(Exception, match="All records failed"):
        worker.lambda_handler(sqs_event(cs_job(openid="o-secret-openid")), context)
    failed = [r for r in caplog.records if r.getMessage() == "job failed, will be retried"]
    assert len(failed) == 1 and failed[0].error == "RuntimeError"
    assert all("13900001111" not in str(r.__dict__) and "o-secret-openid" not in str(r.__dict__)
               for r in caplog.records)


def test_a_wechat_failure_is_logged_with_its_errcode(aws, fake_wechat, worker, context, caplog):
    user_message(OA_APP, "o-oa-1")
    fake_wechat.fail_next(CS, -1)
    with pytest.raises(Exception, match="All records failed"):
        worker.lambda_handler(sqs_event(cs_job()), context)
    [failed] = [r for r in caplog.records if r.getMessage() == "job failed, will be retried"]
    assert (failed.error, failed.errcode) == ("WeChatAPIError", -1)
