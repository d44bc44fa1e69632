"""(b) DynamoDB requests on the critical path, per message type, through the real OA handler.

The handler runs against moto in-process; a botocore ``before-call`` hook on the shared DynamoDB client
counts every API call it makes while answering one push (SQS sends are counted apart: they are not
DynamoDB requests, and only follow-ups use them). The rule set's version check (one GetItem per account
per ``RULES_REFRESH_SECONDS`` per container) is warmed up first and reported on its own line.
Budget: repeat user's text <= 1; subscribe / first contact <= 2.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter

from benchmarks._env import OA_AES_KEY, OA_APP, OA_TOKEN, dumps, settings_changed, setup_env

BUDGET = {"text_repeat_user": 1, "text_first_contact": 2, "subscribe_new_follower": 2,
          "subscribe_returning_follower": 1, "click_repeat_user": 1, "retry_of_answered_push": 1}


# long: one case per message type, each counted in the same moto session; split, the cases lose their order
def run() -> dict:
    setup_env()
    os.environ["RULES_REFRESH_SECONDS"] = "3600"
    settings_changed()
    from moto import mock_aws

    with mock_aws():
        import boto3

        from devstack.gateway import LambdaContext, load_function
        from devstack.simulator import Simulator, http_event
        from devstack.table import create_table
        from wxloop.adapters import aws
        from wxloop.services import rules_cache

        aws.reset()
        if hasattr(rules_cache, "reset"):
            rules_cache.reset()
        create_table(boto3.client("dynamodb", region_name="us-east-1"), os.environ["TABLE_NAME"])
        os.environ["QUEUE_URL"] = boto3.client("sqs", region_name="us-east-1").create_queue(
            QueueName="wxloop-bench")["QueueUrl"]
        handler = load_function("OaWebhookFunction")
        sim = Simulator(OA_APP, OA_TOKEN, OA_AES_KEY)
        calls: Counter = Counter()
        answered: Counter = Counter()  # bytes of DynamoDB's answers (what botocore then parses)

        def hook(model, **_kw):
            calls[f"{model.service_model.service_name}.{model.name}"] += 1

        def answer_size(http_response, **_kw):
            answered["bytes"] += len(http_response.content or b"")

        aws.client("dynamodb").meta.events.register("before-call", hook)
        aws.client("dynamodb").meta.events.register("after-call", answer_size)
        aws.client("sqs").meta.events.register("before-call", hook)

        def post(xml: str) -> tuple[dict, dict, int]:
            calls.clear()
            answered.clear()
            push = sim.push(xml, "safe")
            out = handler(http_event("POST", OA_APP, push.query, push.body), LambdaContext("bench"))
            assert out["statusCode"] == 200, out
            ddb = {k.split(".", 1)[1]: v for k, v in calls.items() if k.startswith("dynamodb.")}
            sqs = {k.split(".", 1)[1]: v for k, v in calls.items() if k.startswith("sqs.")}
            return ddb, sqs, answered["bytes"]

        def _row(found: tuple[dict, dict, int]) -> dict:
            return {"dynamodb": found[0], "sqs": found[1], "answer_bytes": found[2]}

        results: dict[str, dict] = {}
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # EMF metrics
            warm, _, _ = post(sim.text("oWarmUp", "hello"))  # a first contact that also loads the rule set
            results["rules_version_check_once_per_interval"] = {"dynamodb": {"GetItem": warm.get("GetItem", 0)}}
            results["text_first_contact"] = _row(post(sim.text("oNew", "hello")))
            results["text_repeat_user"] = _row(post(sim.text("oNew", "hello again")))
            repeat = sim.text("oNew", "shop")
            post(repeat)
            results["retry_of_answered_push"] = _row(post(repeat))
            results["click_repeat_user"] = _row(post(sim.event("oNew", "CLICK", key="ABOUT_US")))
            results["subscribe_new_follower"] = _row(post(sim.subscribe("oFollower", "store_12")))
            post(sim.event("oNew", "unsubscribe", key=""))
            results["subscribe_returning_follower"] = _row(post(sim.subscribe("oNew")))
            results["text_personalised_reply"] = _row(post(sim.text("oNew", "积分")))
        aws.reset()

    out: dict = {"name": "dynamodb_requests_per_push", "unit": "requests", "cases": {}}
    within = True
    for case, found in results.items():
        n = sum(found["dynamodb"].values())
        row = {"dynamodb_requests": n, "operations": found["dynamodb"], "sqs_requests": found.get("sqs", {})}
        if "answer_bytes" in found:
            row["dynamodb_answer_bytes"] = found["answer_bytes"]
        if case in BUDGET:
            row["budget"] = BUDGET[case]
            within = within and n <= BUDGET[case]
        out["cases"][case] = row
    out["within_budget"] = within
    out["note"] = ("text_personalised_reply (a rule whose reply shows the person's points) adds a GetItem of the "
                   "person and a write keeping the rendered reply for WeChat's retries; no budget names it")
    return out


if __name__ == "__main__":
    print(dumps(run()))
