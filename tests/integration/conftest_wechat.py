"""Fixtures for code that calls WeChat's API: the fake WeChat server, SQS event building, a queue pump.

A plain module (not a conftest): tests import the fixtures they use
(``from tests.integration.conftest_wechat import fake_wechat``). Builds on ``tests/conftest.py``
(``aws``: moto with the template's table and the jobs queue + DLQ; ``context``; ``load_handler``).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time

import pytest


def account_secrets() -> dict[str, str]:
    """app id → app secret of the test accounts (from ``WECHAT_ACCOUNTS``, set by tests/conftest.py)."""
    from devstack.fake_wechat import accounts_from_config

    return accounts_from_config(os.environ["WECHAT_ACCOUNTS"])


def _forget_clients() -> None:
    from wxloop.adapters import wechat

    wechat.reset()
    try:
        from wxloop.settings import settings

        settings.cache_clear()
    except ImportError:
        pass


@pytest.fixture
def fake_wechat(monkeypatch):
    """The fake WeChat API on 127.0.0.1 (ephemeral port), with the test accounts; WECHAT_API_BASE set."""
    from devstack.fake_wechat import FakeWeChat

    fake = FakeWeChat(account_secrets())
    monkeypatch.setenv("WECHAT_API_BASE", fake.start())
    monkeypatch.setenv("WECHAT_API_TIMEOUT", "2")  # roomy on a loaded machine
    _forget_clients()
    try:
        yield fake
    finally:
        fake.stop()
        _forget_clients()


class _Serialized:
    """A botocore client whose calls run one at a time: moto's DynamoDB has no locking, so two threads can
    both pass a condition that real DynamoDB would let only one pass. This restores per-request atomicity
    (it serialises the mock, not the code under test)."""

    _lock = threading.Lock()

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            with self._lock:
                return attr(*args, **kwargs)

        return call


@pytest.fixture
def atomic_ddb(aws):
    """Make the shared DynamoDB client atomic per request under threads (see ``_Serialized``)."""
    from wxloop.adapters import aws as aws_clients

    inner = aws_clients.client("dynamodb")
    aws_clients._clients["dynamodb"] = _Serialized(inner)
    yield
    aws_clients._clients["dynamodb"] = inner


def sqs_record(body: str, *, message_id: str | None = None, receive_count: int = 1,
               queue_arn: str = "arn:aws:sqs:us-east-1:123456789012:wxloop-jobs") -> dict:
    """One record of a Lambda SQS event."""
    message_id = message_id or hashlib.md5(body.encode()).hexdigest()  # noqa: S324
    return {
        "messageId": message_id, "receiptHandle": f"rh-{message_id}", "body": body,
        "attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": str(int(time.time() * 1000)),
                       "SenderId": "AIDATEST", "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000))},
        "messageAttributes": {}, "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1",
    }


def sqs_event(*bodies: str | dict) -> dict:
    return {"Records": [sqs_record(b if isinstance(b, str) else json.dumps(b)) for b in bodies]}


def pump(aws, handler, context, *, rounds: int = 10) -> list[dict]:
    """Act as Lambda's SQS event source mapping on moto's queue: receive a batch, invoke ``handler``,
    delete what succeeded, make failures visible again at once (as if the visibility timeout had passed).
    Redrive (receive count > maxReceiveCount → DLQ) is moto's own. Returns the handler's responses."""
    responses = []
    for _ in range(rounds):
        got = aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                      AttributeNames=["All"])
        messages = got.get("Messages", [])
        if not messages:
            break
        event = {"Records": [dict(sqs_record(m["Body"], message_id=m["MessageId"],
                                             receive_count=int(m["Attributes"]["ApproximateReceiveCount"])),
                                  receiptHandle=m["ReceiptHandle"]) for m in messages]}
        try:
            out = handler(event, context)
            failed = {f["itemIdentifier"] for f in out.get("batchItemFailures", [])}
        except Exception:  # the whole invocation failed: every message comes back
            out, failed = {"error": True}, {m["MessageId"] for m in messages}
        responses.append(out)
        for m in messages:
            if m["MessageId"] in failed:
                aws.sqs.change_message_visibility(QueueUrl=aws.queue_url, ReceiptHandle=m["ReceiptHandle"],
                                                  VisibilityTimeout=0)
            else:
                aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=m["ReceiptHandle"])
    return responses


def queue_messages(aws, url: str | None = None) -> list[dict]:
    """Every message now visible on ``url`` (default the jobs queue), parsed, and left in flight."""
    out = []
    while True:
        got = aws.sqs.receive_message(QueueUrl=url or aws.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                      VisibilityTimeout=30)
        if not got.get("Messages"):
            return out
        out += [m["Body"] for m in got["Messages"]]


def new_identity(app_id: str, openid: str, *, now: int | None = None) -> str:
    """Create the person + identity of a first push (a subscribe), as the webhook does; returns the uid."""
    from wxloop.adapters import repository
    from wxloop.domain.inbound import Inbound

    now = now or int(time.time())
    inb = Inbound(openid=openid, to_user="gh_test", msg_type="event", create_time=now, event="subscribe")
    touch = repository.create_identity(app_id, inb, now=now, event={"type": "test"}, reply=None,
                                       first_touch={"channel": "test", "app_id": app_id, "at": now})
    return touch.uid


def user_message(app_id: str, openid: str, *, now: int | None = None, msg_id: int = 1) -> str:
    """Record a text message from ``openid`` as the webhook does (creating the person on first contact),
    which opens the 48-hour customer-service window; returns the uid."""
    from wxloop.adapters import repository
    from wxloop.domain.inbound import Inbound

    now = now or int(time.time())
    inb = Inbound(openid=openid, to_user="gh_test", msg_type="text", create_time=now, msg_id=str(msg_id),
                  content="hi")
    touch = repository.touch_identity(app_id, inb, now=now, event={"type": "test"}, reply=None,
                                      want_uid=True)
    if touch.status == "unknown":
        touch = repository.create_identity(app_id, inb, now=now, event={"type": "test"}, reply=None,
                                           first_touch={"channel": "test", "app_id": app_id, "at": now})
    return touch.uid
