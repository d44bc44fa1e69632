"""Shared fixtures: fake AWS credentials, the demo accounts, moto with the template's table, the handlers."""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import moto  # noqa: F401 - before any AWS client exists
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))

OA_APP = "wx1234567890abcdef"
OA_PLAIN_APP = "wx00000000000000aa"
MP_APP = "wxabcdef1234567890"
OA_TOKEN = "wxlooptoken"
OA_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ACCOUNTS = {
    "accounts": {
        OA_APP: {"kind": "oa", "name": "Demo OA", "token": OA_TOKEN, "encoding_aes_key": OA_AES_KEY,
                 "app_secret": "demo-oa-secret", "linked_mps": [MP_APP],
                 "mode": "plain"},  # accepts plain and encrypted pushes: tests post both
        OA_PLAIN_APP: {"kind": "oa", "name": "Plain OA", "token": "plaintoken"},
        MP_APP: {"kind": "mp", "name": "Demo MP", "token": "mptoken", "app_secret": "demo-mp-secret",
                 "push_format": "json"},
    },
    "session_keys": ["demo-session-key-0123456789abcdef"],
}

_ENV = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "TABLE_NAME": "wxloop-test",
    "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/wxloop-jobs",
    "WECHAT_ACCOUNTS": json.dumps(ACCOUNTS), "POWERTOOLS_SERVICE_NAME": "wxloop",
    "POWERTOOLS_METRICS_NAMESPACE": "wxloop", "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_DEV": "false",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",  # moto knows the regional endpoints only
    "WECHAT_CLOCK_SKEW_SECONDS": "300", "RULES_FILE": str(ROOT / "tests" / "fixtures" / "rules.yaml"),
}
for _k, _v in _ENV.items():
    os.environ[_k] = _v
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("WECHAT_ACCOUNTS_SECRET", None)


def _reset_caches() -> None:
    from wxloop import settings
    from wxloop.adapters import aws

    aws.reset()
    settings.settings.cache_clear()
    try:
        from wxloop.services import rules_cache

        if hasattr(rules_cache, "reset"):
            rules_cache.reset()
    except ImportError:
        pass


@dataclass
class Aws:
    ddb: object
    sqs: object
    table: str
    queue_url: str
    dlq_url: str
    stream_arn: str | None
    streamed: set = field(default_factory=set)

    def items(self) -> list[dict]:
        from wxloop.adapters.repository import unmarshal

        out, kwargs = [], {"TableName": self.table}
        while True:
            page = self.ddb.scan(**kwargs)
            out += [unmarshal(i) for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def stream_records(self) -> list[dict]:
        """Every record of the table's stream so far, shaped as Lambda receives them."""
        import boto3

        from devstack.pumps import _jsonable

        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        out = []
        for shard in streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]:
            it = streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard["ShardId"],
                                            ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            out += streams.get_records(ShardIterator=it, Limit=1000)["Records"]
        for r in out:
            r["eventSourceARN"] = self.stream_arn
        return _jsonable(out)

    def run_stream(self) -> None:
        """Feed the stream records not fed yet to the stream's service (journey records, outbox jobs)."""
        from wxloop.services import journey

        for record in self.stream_records():
            seq = record["dynamodb"]["SequenceNumber"]
            if seq not in self.streamed:
                journey.record(record)
                self.streamed.add(seq)

    def jobs(self) -> list[dict]:
        """The queued jobs (taken off the queue), after the stream has queued the ones pushes left."""
        self.run_stream()
        out = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            msgs = got.get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])


def serialize_dynamodb(monkeypatch) -> None:
    """DynamoDB applies each request to an item atomically; moto's backend does not lock, so concurrent
    requests from test threads could interleave inside one conditional write. Serialise them, as the
    real service does per item, so concurrency tests exercise our conditions and not moto's races."""
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.RLock()
    original = DynamoHandler.call_action

    def call_action(self):
        with lock:
            return original(self)

    monkeypatch.setattr(DynamoHandler, "call_action", call_action)


@pytest.fixture
def aws(monkeypatch):
    """moto's AWS with the template's table and the jobs queue (+DLQ); clients recreated inside."""
    from moto import mock_aws

    from devstack import moto_dynamodb

    serialize_dynamodb(monkeypatch)
    # moto deep-copies the whole table before every transaction: the dev stack's patch backs up the named
    # items only (same all-or-nothing result), so a test's cost does not grow with its table
    moto_dynamodb.apply()
    try:
        with mock_aws():
            _reset_caches()
            import boto3

            from devstack.table import create_table

            ddb = boto3.client("dynamodb", region_name="us-east-1")
            sqs = boto3.client("sqs", region_name="us-east-1")
            stream_arn = create_table(ddb, os.environ["TABLE_NAME"])
            dlq = sqs.create_queue(QueueName="wxloop-jobs-dlq")["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            queue = sqs.create_queue(QueueName="wxloop-jobs", Attributes={
                "VisibilityTimeout": "180",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
            })["QueueUrl"]
            monkeypatch.setenv("QUEUE_URL", queue)
            yield Aws(ddb, sqs, os.environ["TABLE_NAME"], queue, dlq, stream_arn)
    finally:
        moto_dynamodb.remove()
    _reset_caches()


@dataclass
class LambdaContext:
    function_name: str = "wxloop-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:wxloop-test"
    aws_request_id: str = "req-0001"
    log_group_name: str = "/aws/lambda/wxloop-test"
    log_stream_name: str = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 5000


def load_handler(function: str):
    """``functions/<function>/app.py`` as a module (each function folder has its own app.py)."""
    path = ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"wxloop_fn_{function}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def context():
    return LambdaContext()


@pytest.fixture(autouse=True)
def _fresh_caches():
    _reset_caches()
    yield


@pytest.fixture(autouse=True)
def _settings_follow_monkeypatch(monkeypatch):
    """The settings are read once per process; a test that changes the environment mid-test through
    ``monkeypatch`` gets them read again, as a new container would."""
    from wxloop.settings import settings

    for name in ("setenv", "delenv", "undo"):
        real = getattr(monkeypatch, name)

        def then_clear(*args, _real=real, **kwargs):
            _real(*args, **kwargs)
            settings.cache_clear()

        setattr(monkeypatch, name, then_clear)
    yield
    settings.cache_clear()


# --- no network: tests talk to loopback only ------------------------------------------------------


class NetworkAccessBlocked(RuntimeError):
    """A test tried to reach a host that is not this machine's loopback (the real WeChat API, AWS, ...).

    Not an ``OSError``, so that code treating network errors as transient does not quietly retry it; and
    the guard fails the test at teardown even when the code under test swallowed it."""


_REAL_CONNECT = socket.socket.connect
_REAL_CONNECT_EX = socket.socket.connect_ex
_REAL_CREATE_CONNECTION = socket.create_connection
_REAL_GETADDRINFO = socket.getaddrinfo


def is_loopback_host(host) -> bool:
    """``localhost`` or an address in 127.0.0.0/8 or ::1 (also IPv4-mapped)."""
    if isinstance(host, bytes | bytearray):
        host = bytes(host).decode("ascii", "replace")
    host = str(host).strip().strip("[]").split("%", 1)[0]
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


class NetworkGuard:
    """What the autouse guard blocked during the current test (``blocked``: ``host:port`` strings)."""

    def __init__(self) -> None:
        self.blocked: list[str] = []

    def check(self, family, address) -> None:
        if family not in (socket.AF_INET, socket.AF_INET6):  # AF_UNIX and the like stay on this machine
            return
        host, port = (address[0], address[1]) if isinstance(address, tuple) and len(address) >= 2 else (address, "?")
        if is_loopback_host(host):
            return
        self._block(f"{host}:{port}", "a connection to")

    def check_lookup(self, host, port) -> None:
        """Name lookups go out to DNS: only loopback names, address literals and this machine's name pass."""
        if host in (None, "", b"") or is_loopback_host(host):
            return
        name = bytes(host).decode("ascii", "replace") if isinstance(host, bytes | bytearray) else str(host)
        try:
            ipaddress.ip_address(name.strip("[]").split("%", 1)[0])
            return  # a literal needs no DNS; connecting to it is checked by connect()
        except ValueError:
            pass
        if name.lower() == socket.gethostname().lower():
            return
        self._block(f"{name}:{port}", "a name lookup of")

    def _block(self, where: str, what: str) -> None:
        self.blocked.append(where)
        raise NetworkAccessBlocked(f"tests may only reach loopback; blocked {what} {where}")


@pytest.fixture(autouse=True)
def network_guard():
    """Make any connection to a non-loopback address (and any DNS lookup of another host) fail loudly (moto
    runs in-process; the fake WeChat API and the local stack listen on 127.0.0.1). Request the fixture to inspect ``blocked``. Its own
    MonkeyPatch, so a test's ``monkeypatch.undo()`` keeps the guard."""
    guard = NetworkGuard()

    def connect(sock, address):
        guard.check(sock.family, address)
        return _REAL_CONNECT(sock, address)

    def connect_ex(sock, address):
        guard.check(sock.family, address)
        return _REAL_CONNECT_EX(sock, address)

    def create_connection(address, *args, **kwargs):
        guard.check(socket.AF_INET, address)  # before any name lookup
        return _REAL_CREATE_CONNECTION(address, *args, **kwargs)

    def getaddrinfo(host, port, *args, **kwargs):
        guard.check_lookup(host, port)
        return _REAL_GETADDRINFO(host, port, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "connect_ex", connect_ex)
        patch.setattr(socket, "create_connection", create_connection)
        patch.setattr(socket, "getaddrinfo", getaddrinfo)
        yield guard
    if guard.blocked:
        pytest.fail(f"the test tried to reach the network (not loopback): {', '.join(guard.blocked)}")
