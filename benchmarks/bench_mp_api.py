"""MP client API: DynamoDB requests per call through the real mp_api handler (moto in-process, the fake
WeChat API on loopback), and the warm CPU of ``GET me`` through the real handler with DynamoDB stubbed.

Budgets: ``GET me`` <= 1 DynamoDB request; ``POST session`` for a returning person <= 2; warm CPU of
``GET me`` <= 1 ms (lowest decile of the samples: noise on a shared machine only ever adds time; the
median is reported beside it).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
from collections import Counter

from benchmarks._env import dumps, settings_changed, setup_env

MP_APP, OA_APP = "wxabcdef1234567890", "wx1234567890abcdef"
BUDGET = {"get_me": 1, "session_returning_person": 2}
CPU_BUDGET_US = 1000.0


def _fake_wechat_class():
    from devstack.fake_wechat import FakeWeChat
    return FakeWeChat


def _event(method: str, path: str, body=None, token: str | None = None) -> dict:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    full = f"/mp/{MP_APP}/{path}"
    return {"version": "2.0", "routeKey": "ANY /mp/{app_id}/{proxy+}", "rawPath": full, "rawQueryString": "",
            "headers": headers, "queryStringParameters": None,
            "pathParameters": {"app_id": MP_APP, "proxy": path},
            "requestContext": {"http": {"method": method, "path": full, "protocol": "HTTP/1.1",
                                        "sourceIp": "127.0.0.1", "userAgent": "bench"},
                               "requestId": "bench", "routeKey": "ANY /mp/{app_id}/{proxy+}", "stage": "$default",
                               "timeEpoch": int(time.time() * 1000)},
            "body": json.dumps(body) if body is not None else None, "isBase64Encoded": False}


class _Ctx:
    function_name, memory_limit_in_mb, aws_request_id = "bench", 512, "r"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def _load_handler():
    import importlib.util

    from benchmarks._env import ROOT

    spec = importlib.util.spec_from_file_location("bench_mp_api_app", ROOT / "functions" / "mp_api" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


def _requests() -> dict:
    from moto import mock_aws

    fake = _fake_wechat_class()
    accounts = json.loads(os.environ["WECHAT_ACCOUNTS"])
    secrets = {a: c["app_secret"] for a, c in accounts["accounts"].items() if c.get("app_secret")}
    with mock_aws(), fake(secrets) as wechat:
        import boto3

        from devstack.table import create_table
        from wxloop.adapters import aws

        os.environ["WECHAT_API_BASE"] = wechat.base_url
        settings_changed()
        aws.reset()
        create_table(boto3.client("dynamodb", region_name="us-east-1"), os.environ["TABLE_NAME"])
        os.environ["QUEUE_URL"] = boto3.client("sqs", region_name="us-east-1").create_queue(
            QueueName="wxloop-bench-mp")["QueueUrl"]
        handler = _load_handler()
        calls: Counter = Counter()
        aws.client("dynamodb").meta.events.register(
            "before-call", lambda model, **_kw: calls.update([model.name]))

        def call(method: str, path: str, body=None, token=None) -> tuple[dict, dict]:
            calls.clear()
            out = handler(_event(method, path, body, token), _Ctx())
            assert out["statusCode"] == 200, out
            return dict(calls), json.loads(out["body"])

        rows: dict[str, dict] = {}
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            wechat.add_code(MP_APP, "c-first", "oBenchMp")
            rows["session_first_contact"], doc = call("POST", "session", {"code": "c-first", "scene": 1011})
            wechat.add_code(MP_APP, "c-again", "oBenchMp")
            rows["session_returning_person"], doc = call("POST", "session", {"code": "c-again", "scene": 1011})
            token = doc["token"]
            rows["get_me"], _ = call("GET", "me", token=token)
            rows["get_me_again"], _ = call("GET", "me", token=token)
            rows["post_me_prompt"], _ = call("POST", "me/prompt", {"action": "shown"}, token=token)
            rows["put_consent"], _ = call("PUT", "privacy/consent", {"policy_version": "2026-01",
                                          "purposes": {"personalisation": True}}, token=token)
            rows["put_preferences"], _ = call("PUT", "preferences", {"topics": ["a", "b"]}, token=token)
            wechat.add_code(MP_APP, "c-card", "oBenchMp")
            rows["session_returning_fallback_card"], _ = call("POST", "session", {"code": "c-card", "scene": 1089})
        aws.reset()
    os.environ.pop("WECHAT_API_BASE", None)
    settings_changed()
    cases = {}
    for case, ops in rows.items():
        row = {"dynamodb_requests": sum(ops.values()), "operations": ops}
        if case in BUDGET:
            row["budget"] = BUDGET[case]
        cases[case] = row
    return cases


class _StubDynamo:
    """Answers the counted read of a person as DynamoDB would, without any I/O."""

    def __init__(self, now: int):
        from wxloop.adapters.repository import marshal

        person = {"pk": "USER#u", "sk": "PROFILE", "uid": "0" * 32, "points": 120, "created_at": now,
                  "openids": {MP_APP: "oBench", OA_APP: "oBenchOa"}, "first_touch": {"channel": "mp"},
                  f"fol_{OA_APP}": {"f": False, "at": now}, "phone_masked": "139****5678",
                  "prefs": {"topics": ["a", "b"], "v": 1, "at": now}, f"mpscene_{MP_APP}": 1011,
                  f"mpsk_{MP_APP}": {"k": "abcd1234", "n": b"0" * 12, "c": b"1" * 32}, "rl_3": 1}
        self._answer = {"Attributes": marshal(person)}

    def update_item(self, **_kw):
        return self._answer


def _cpu(n: int = 200, samples: int = 40) -> dict:
    from wxloop.adapters import aws
    from wxloop.domain import session

    now = int(time.time())
    aws._clients["dynamodb"] = _StubDynamo(now)
    handler = _load_handler()
    key = json.loads(os.environ["WECHAT_ACCOUNTS"])["session_keys"][0].encode()
    token = session.issue(session.SessionClaims(MP_APP, "0" * 32, 1011, now, now + 3600), [key])
    event, ctx = _event("GET", "me", token=token), _Ctx()

    def get_me():
        out = handler(dict(event), ctx)
        assert out["statusCode"] == 200, out

    runs = []
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        get_me()
        for _ in range(samples):
            start = time.process_time_ns()
            for _ in range(n):
                get_me()
            runs.append((time.process_time_ns() - start) / n / 1000)
    aws.reset()
    low = statistics.quantiles(runs, n=10)[0]
    return {"us_lowest_decile": round(low, 1), "us_median": round(statistics.median(runs), 1),
            "budget_us": CPU_BUDGET_US, "calls": n * samples}


def run() -> dict:
    setup_env()
    cases = _requests()
    cpu = _cpu()
    within = all(c["dynamodb_requests"] <= c["budget"] for c in cases.values() if "budget" in c)
    within = within and cpu["us_lowest_decile"] <= CPU_BUDGET_US
    return {"name": "mp_api", "unit": "requests / us", "cases": cases, "get_me_warm_cpu": cpu,
            "within_budget": within,
            "note": "session_returning_fallback_card: a launch that queues the follow card (at most once per "
                    "cool-down) adds one conditional write; session_first_contact creates person + identity"}


if __name__ == "__main__":
    print(dumps(run()))
