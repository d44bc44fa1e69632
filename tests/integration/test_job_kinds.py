"""Adding a job kind is one registry entry and one function: the runner gives it the claim (at most once
in effect), the typed record, poison handling and the errcode outcomes without further code."""

from __future__ import annotations

import json

import pytest

from tests.conftest import OA_APP, load_handler
from tests.integration.conftest_wechat import new_identity, sqs_event

pytest_plugins = ["tests.integration.conftest_wechat"]  # fixtures: fake_wechat


@pytest.fixture
def greet_kind(monkeypatch):
    """A kind defined the way a new family module would: a record and a function, one ``KINDS`` entry."""
    from wxloop.services import jobs

    class Greet(jobs.PersonJob):
        times: int

    ran = []

    def greet(job: Greet, ctx: jobs.JobContext) -> str:
        ran.append((job.openid, job.times, ctx.now))
        if job.times == 0:
            ctx.wechat(job.app_id).post("message/custom/send",
                                        data={"touser": job.openid, "msgtype": "text", "text": {"content": "x"}})
        return f"greeted:{job.times}"

    monkeypatch.setitem(jobs.KINDS, "greet", jobs.JobKind("greet", Greet, greet))
    return ran


def test_a_registered_kind_runs_once_through_the_worker(aws, fake_wechat, context, greet_kind):
    worker = load_handler("worker")
    job = {"id": "g-1", "kind": "greet", "app_id": OA_APP, "openid": "o-oa-1", "times": 2}
    assert worker.lambda_handler(sqs_event(job), context) == {"batchItemFailures": []}
    assert worker.lambda_handler(sqs_event(job), context) == {"batchItemFailures": []}  # a duplicate
    assert [(openid, times) for openid, times, _ in greet_kind] == [("o-oa-1", 2)]
    from wxloop.adapters import repository

    assert repository.get_job("g-1")["outcome"] == "ok"


def test_a_registered_kind_of_the_wrong_shape_is_poison(aws, greet_kind):
    from wxloop.services import jobs

    with pytest.raises(jobs.PoisonJob, match="times"):
        jobs.parse(json.dumps({"id": "g-2", "kind": "greet", "app_id": OA_APP, "openid": "o-oa-1", "times": "x"}))
    assert greet_kind == []


def test_a_registered_kind_gets_the_errcode_outcomes(aws, fake_wechat, greet_kind):
    from wxloop.adapters import repository
    from wxloop.services import jobs

    new_identity(OA_APP, "o-oa-1")
    fake_wechat.fail_next("/cgi-bin/message/custom/send", 45015)
    out = jobs.run({"id": "g-3", "kind": "greet", "app_id": OA_APP, "openid": "o-oa-1", "times": 0}, sink=None)
    assert (out.status, out.errcode, out.detail) == ("closed", 45015, "greet")
    assert repository.get_identity(OA_APP, "o-oa-1")["closed"]["greet"]["code"] == 45015
