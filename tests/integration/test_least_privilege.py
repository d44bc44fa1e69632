"""Each function's AWS calls, made for real (moto), fit the grants template.yaml gives its role: every item
action on a key prefix the role's dynamodb:LeadingKeys allows, every queue action on a queue it names.

moto does not enforce IAM; this test does, with the grants ``tests/unit/test_template.py`` reads.
"""

from __future__ import annotations

import time

import botocore.client
import pytest

from devstack.simulator import Simulator, http_event
from tests.conftest import OA_AES_KEY, OA_APP, OA_TOKEN, load_handler
from tests.integration.conftest_wechat import pump
from tests.unit.test_template import FUNCTION_ROLES, grants

pytest_plugins = ["tests.integration.conftest_wechat"]  # fixtures: fake_wechat

_TXN_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}


def _prefix(pk: dict) -> str:
    value = pk["S"]
    return value.split("#", 1)[0] + "#" if "#" in value else value  # an exact key ("CHANNELS") stays itself


def _needs(service: str, operation: str, params: dict, queue_url: str) -> list[tuple[str, str, str | None]]:
    """The (IAM action, resource, key prefix) an API call is authorized against."""
    if service == "dynamodb":
        if operation == "TransactWriteItems":  # authorized item by item
            return [(f"dynamodb:{_TXN_ACTIONS[kind]}", "Table", _prefix((body.get("Key") or body["Item"])["pk"]))
                    for item in params["TransactItems"] for kind, body in item.items()]
        key = params.get("Key") or params.get("Item") or {}
        resource = "Table"
        if operation == "Query":  # authorized against the partition key the key condition names
            values = params.get("ExpressionAttributeValues") or {}
            key = {"pk": values.get(":pk") or next(iter(values.values()), {"S": "?"})}
            resource += f"/index/{params['IndexName']}" if params.get("IndexName") else ""
        return [(f"dynamodb:{operation}", resource, _prefix(key["pk"]) if "pk" in key else None)]
    if service == "sqs":
        action = "SendMessage" if operation == "SendMessageBatch" else operation
        return [(f"sqs:{action}", "JobsQueue" if params.get("QueueUrl") == queue_url else params.get("QueueUrl"), None)]
    return [(f"{service}:{operation}", "?", None)]


@pytest.fixture
def iam(aws, monkeypatch):
    """``iam.acting(function_id)``: AWS calls made inside are checked against that function's role."""

    class Guard:
        function: str | None = None
        seen: dict[str, set] = {}
        denied: list = []

        def acting(self, function_id: str):
            guard = self

            class _Scope:
                def __enter__(self):
                    guard.function = function_id

                def __exit__(self, *exc):
                    guard.function = None

            return _Scope()

    guard = Guard()
    guard.seen, guard.denied = {}, []
    real = botocore.client.BaseClient._make_api_call

    def checked(client, operation, params):
        if guard.function is not None:
            allowed = grants(FUNCTION_ROLES[guard.function])
            for need in _needs(client.meta.service_model.service_name, operation, params, aws.queue_url):
                guard.seen.setdefault(guard.function, set()).add(need)
                if need not in allowed:
                    guard.denied.append((guard.function, need))
        return real(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", checked)
    return guard


def test_each_functions_calls_fit_its_role(aws, context, fake_wechat, iam):
    hook, stream, worker = load_handler("oa_webhook"), load_handler("stream"), load_handler("worker")
    sim = Simulator(OA_APP, OA_TOKEN, OA_AES_KEY)
    fake_wechat.add_user(OA_APP, "oFirst", unionid="uShared")
    fake_wechat.add_user(OA_APP, "oSecond", unionid="uShared")  # a second openid of the same person: a merge
    t0 = int(time.time())
    pushes = [sim.subscribe("oFirst", "spring", create_time=t0), sim.text("oFirst", "my card", create_time=t0 + 1),
              sim.text("oSecond", "points", create_time=t0 + 2), sim.text("oSecond", "card", create_time=t0 + 3)]
    with iam.acting("OaWebhookFunction"):
        for xml in pushes:
            push = sim.push(xml, "safe")
            for _ in range(2):  # WeChat's retry
                assert hook.lambda_handler(http_event("POST", OA_APP, push.query, push.body), context)["statusCode"] == 200
    records = aws.stream_records()  # what Lambda's mapping reads (with the role's stream grants)
    with iam.acting("StreamFunction"):
        assert stream.lambda_handler({"Records": records}, context) == {"batchItemFailures": []}
    with iam.acting("WorkerFunction"):
        pump(aws, worker.lambda_handler, context)
    with iam.acting("TokenRefresherFunction"):
        load_handler("token_refresher").lambda_handler({}, context)

    assert iam.denied == []
    webhook = {(a, p) for a, _, p in iam.seen["OaWebhookFunction"]}
    assert {("dynamodb:UpdateItem", "ID#"), ("dynamodb:PutItem", "USER#"), ("dynamodb:GetItem", "RULES#"),
            ("dynamodb:GetItem", "USER#")} <= webhook
    worker_seen = {(a, p) for a, _, p in iam.seen["WorkerFunction"]}
    assert {("dynamodb:ConditionCheckItem", "UNION#"), ("dynamodb:PutItem", "UNION#"),
            ("dynamodb:UpdateItem", "TOKEN#"), ("dynamodb:UpdateItem", "JOB#")} <= worker_seen
    assert any(a == "dynamodb:GetItem" and p == "TOKEN#" for a, _, p in iam.seen["TokenRefresherFunction"])


def test_the_guard_catches_a_call_outside_the_role(aws, iam):
    from wxloop.adapters import repository

    with iam.acting("OaWebhookFunction"):
        repository.get_token(OA_APP)
    assert iam.denied == [("OaWebhookFunction", ("dynamodb:GetItem", "Table", "TOKEN#"))]


def test_the_mp_webhooks_calls_fit_its_role(aws, context, fake_wechat, iam, monkeypatch):
    from tests.integration.mp_webhook_kit import MP_APP, configure, simulator

    configure(monkeypatch, mode="plain")
    hook, stream, worker = load_handler("mp_webhook"), load_handler("stream"), load_handler("worker")
    json_sim, xml_sim = simulator("json"), simulator("xml")
    bodies = [(json_sim, json_sim.enter("oMpFirst", "from-card"), "safe"), (json_sim, json_sim.text("oMpFirst", "points"), "plain"),
              (xml_sim, xml_sim.text("oMpFirst", "human"), "safe"),
              (json_sim, json_sim.subscribe_msg("oMpFirst", "subscribe_msg_popup_event", [
                  {"TemplateId": "T1", "SubscribeStatusString": "accept", "PopupScene": "0"}]), "safe")]
    with iam.acting("MpWebhookFunction"):
        for sim, body, mode in bodies:
            push = sim.push(body, mode)
            for _ in range(2):  # WeChat's retry
                event = http_event("POST", MP_APP, push.query, push.body, kind="mp")
                assert hook.lambda_handler(event, context)["statusCode"] == 200
    records = aws.stream_records()
    with iam.acting("StreamFunction"):
        assert stream.lambda_handler({"Records": records}, context) == {"batchItemFailures": []}
    with iam.acting("WorkerFunction"):
        pump(aws, worker.lambda_handler, context)
    assert iam.denied == []
    seen = {(a, p) for a, _, p in iam.seen["MpWebhookFunction"]}
    assert {("dynamodb:UpdateItem", "ID#"), ("dynamodb:PutItem", "USER#"), ("dynamodb:PutItem", "PUSHQ#"),
            ("dynamodb:GetItem", "USER#")} <= seen
    assert len(fake_wechat.calls("/cgi-bin/message/custom/send")) == 2


def test_the_scheduled_channel_renewal_fits_the_workers_role(aws, context, fake_wechat, iam):
    from tests.conftest import MP_APP
    from wxloop.adapters.wechat import api_client
    from wxloop.services import channels

    channels.create("xhs", "mp-link", app_id=MP_APP, path="pages/a", days=2, client=api_client(MP_APP))
    worker = load_handler("worker")
    with iam.acting("WorkerFunction"):
        assert worker.lambda_handler({"action": "renew_channels"}, context) == {"queued": 1}
        pump(aws, worker.lambda_handler, context)
    assert iam.denied == []
    assert {("dynamodb:Query", "Table/index/gsi1", "CHANNELS"),
            ("dynamodb:UpdateItem", "Table", "CHANNEL#")} <= iam.seen["WorkerFunction"]
