"""DynamoDB requests on the critical path of a Mini Program push, through the real MP webhook handler.

As ``bench_dynamo_requests`` (the OA's): moto in-process, a botocore ``before-call`` hook counts every call
while the handler answers one safe-mode JSON push (XML for one case); the rule set's version check is
warmed up first. Budget: repeat person's text <= 1; first contact <= 2.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter

from benchmarks._env import ROOT, dumps, settings_changed, setup_env

BUDGET = {"text_repeat_user": 1, "text_first_contact": 2, "retry_of_answered_push": 1,
          "xml_text_repeat_user": 1, "enter_session_repeat_user": 1, "subscribe_popup_repeat_user": 1}


# long: one case per push kind, each counted in the same moto session; split, the cases lose their order
def run() -> dict:
    setup_env()
    os.environ["RULES_REFRESH_SECONDS"] = "3600"
    settings_changed()
    accounts = json.loads((ROOT / "config" / "demo-accounts.json").read_text(encoding="utf-8"))["accounts"]
    mp_app = next(app for app, a in accounts.items() if a["kind"] == "mp")
    from moto import mock_aws

    with mock_aws():
        import boto3

        from devstack.gateway import LambdaContext, load_function
        from devstack.simulator import MpSimulator, http_event
        from devstack.table import create_table
        from wxloop.adapters import aws
        from wxloop.services import rules_cache

        aws.reset()
        if hasattr(rules_cache, "reset"):
            rules_cache.reset()
        create_table(boto3.client("dynamodb", region_name="us-east-1"), os.environ["TABLE_NAME"])
        os.environ["QUEUE_URL"] = boto3.client("sqs", region_name="us-east-1").create_queue(
            QueueName="wxloop-bench")["QueueUrl"]
        handler = load_function("MpWebhookFunction")
        acct = accounts[mp_app]
        sims = {fmt: MpSimulator(mp_app, acct["token"], acct["encoding_aes_key"], fmt=fmt) for fmt in ("json", "xml")}
        sim = sims["json"]
        calls: Counter = Counter()

        def hook(model, **_kw):
            calls[f"{model.service_model.service_name}.{model.name}"] += 1

        aws.client("dynamodb").meta.events.register("before-call", hook)
        aws.client("sqs").meta.events.register("before-call", hook)

        def post(body: str, fmt: str = "json") -> dict:
            calls.clear()
            push = sims[fmt].push(body, "safe")
            out = handler(http_event("POST", mp_app, push.query, push.body, kind="mp"), LambdaContext("bench"))
            assert out["statusCode"] == 200, out
            return {"dynamodb": {k.split(".", 1)[1]: v for k, v in calls.items() if k.startswith("dynamodb.")},
                    "sqs": {k.split(".", 1)[1]: v for k, v in calls.items() if k.startswith("sqs.")}}

        results: dict[str, dict] = {}
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # EMF metrics
            warm = post(sim.text("oWarmUp", "hello"))
            results["rules_version_check_once_per_interval"] = {"dynamodb": {"GetItem": warm["dynamodb"].get("GetItem", 0)}}
            results["text_first_contact"] = post(sim.text("oNewMp", "hello"))
            results["text_repeat_user"] = post(sim.text("oNewMp", "shop"))
            repeat = sim.text("oNewMp", "hello again")
            post(repeat)
            results["retry_of_answered_push"] = post(repeat)
            results["xml_text_repeat_user"] = post(sims["xml"].text("oNewMp", "hello"), "xml")
            results["enter_session_repeat_user"] = post(sim.enter("oNewMp", "card"))
            results["subscribe_popup_repeat_user"] = post(sim.subscribe_msg("oNewMp", "subscribe_msg_popup_event", [
                {"TemplateId": "TPL1", "SubscribeStatusString": "accept", "PopupScene": "0"}]))
        aws.reset()

    out: dict = {"name": "mp_push_dynamodb_requests", "unit": "requests", "cases": {}}
    within = True
    for case, found in results.items():
        n = sum(found["dynamodb"].values())
        row = {"dynamodb_requests": n, "operations": found["dynamodb"], "sqs_requests": found.get("sqs", {})}
        if case in BUDGET:
            row["budget"] = BUDGET[case]
            within = within and n <= BUDGET[case]
        out["cases"][case] = row
    out["within_budget"] = within
    return out


if __name__ == "__main__":
    print(dumps(run()))
