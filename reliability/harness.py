"""The stack every scenario drives: ``make run``'s stack in this process, on ports the OS picks.

In-process so that the fault switches (``devstack.faults``) and the fake WeChat API's controls are plain
calls, and the ledger can read the table directly; the handlers are still reached over HTTP through the
local gateway, as WeChat and the Mini Program reach them.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

from devstack.table import REPO_ROOT

DEMO = json.loads((REPO_ROOT / "config" / "demo-accounts.json").read_text(encoding="utf-8"))
OA = next(a for a, v in DEMO["accounts"].items() if v["kind"] == "oa")
MP = next(a for a, v in DEMO["accounts"].items() if v["kind"] == "mp")
SAFE_OA = "wx5afe5afe5afe5afe"  # a second OA in safe mode: downgrades to plain must be refused
OTHER_MP = "wx0123456789abcdef"
STAND_IN_READ_TIMEOUT = "2.0"  # a second MP: its tokens must not open the first one's API


def accounts_doc() -> dict:
    """The demo accounts plus a safe-mode OA and a second MP (same keys: only the mode and id differ)."""
    doc = json.loads(json.dumps(DEMO))
    oa, mp = doc["accounts"][OA], doc["accounts"][MP]
    doc["accounts"][SAFE_OA] = {**oa, "name": "Safe OA", "mode": "safe", "app_secret": "safe-oa-secret"}
    doc["accounts"][OTHER_MP] = {**mp, "name": "Other MP", "app_secret": "other-mp-secret"}
    return doc


class Harness:
    """Starts the stack (``start``), talks to it (``post``, ``get``), reads what landed (``journey_ids``)."""

    def __init__(self) -> None:
        self.stack = None
        self.accounts = accounts_doc()
        self._local = threading.local()
        self.results: dict[str, dict] = {}

    def figures_of(self, scenario: str) -> dict:
        """The figures an earlier scenario of this run reported ({} when it did not run)."""
        return self.results.get(scenario, {})

    def start(self) -> Harness:
        from devstack import faults

        os.environ["WECHAT_ACCOUNTS"] = json.dumps(self.accounts)
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")  # the runner prints its own table
        os.environ["LAKE_PATH"] = tempfile.mkdtemp(prefix="wxloop-reliability-lake-")
        # moto over HTTP on a busy machine can take longer than the deployed 0.8 s read timeout; faults are
        # injected explicitly instead (devstack.faults), relative to whatever timeout the client has
        os.environ.setdefault("WXLOOP_AWS_READ_TIMEOUT", STAND_IN_READ_TIMEOUT)
        faults.install()
        from devstack.stack import LocalStack

        zero = {"WXLOOP_PORT": 0, "WXLOOP_AWS_PORT": 0, "WXLOOP_WECHAT_PORT": 0}
        self.stack = LocalStack(ports=zero, table="wxloop-reliability", quiet=True).start()
        import boto3

        self.ddb = boto3.client("dynamodb")
        self.sqs = boto3.client("sqs")
        return self

    def stop(self) -> None:
        if self.stack:
            self.stack.stop()

    # -- talking to it -----------------------------------------------------------------------------
    @property
    def fake(self):
        return self.stack._fake

    @property
    def gateway(self) -> str:
        return self.stack.urls["gateway"]

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            host, port = urllib.parse.urlsplit(self.gateway).netloc.split(":")
            conn = self._local.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        return conn

    def request(self, method: str, path: str, body: bytes | str | None = None, headers: dict | None = None,
                query: dict | None = None) -> tuple[int, bytes, float]:
        """One HTTP request to the gateway on this thread's kept-alive connection: status, body, seconds."""
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        data = body.encode() if isinstance(body, str) else body
        start = time.perf_counter()
        for attempt in (1, 2):  # a kept-alive connection the server closed is reopened once
            conn = self._conn()
            try:
                conn.request(method, path, body=data, headers=headers or {})
                resp = conn.getresponse()
                out = resp.read()
                return resp.status, out, time.perf_counter() - start
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def post_push(self, app_id: str, push, kind: str = "oa") -> tuple[int, bytes, float]:
        return self.request("POST", f"/wechat/{kind}/{app_id}", push.body, {"Content-Type": "text/xml"}, push.query)

    def clear_wechat_faults(self) -> None:
        """Drop injected WeChat failures and delays not used up (the fake's reset would also forget tokens)."""
        with self.fake._lock:
            self.fake._fail.clear()
            self.fake._slow.clear()

    def simulator(self, app_id: str):
        from devstack.simulator import Simulator

        acct = self.accounts["accounts"][app_id]
        return Simulator(app_id, acct["token"], acct.get("encoding_aes_key"))

    def mp_call(self, method: str, path: str, body=None, *, token: str | None = None, app_id: str = MP,
                raw: bytes | None = None) -> tuple[int, dict, float]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        status, out, secs = self.request(method, f"/mp/{app_id}/{path}", data, headers)
        try:
            doc = json.loads(out) if out else {}
        except ValueError:
            doc = {"_raw": out[:200].decode("utf-8", "replace")}
        return status, doc, secs

    def login(self, openid: str, *, app_id: str = MP) -> str:
        """A session token for ``openid`` (through the fake jscode2session)."""
        code = f"code-{secrets.token_hex(8)}"
        self.fake.add_code(app_id, code, openid, None)
        status, doc, _ = self.mp_call("POST", "session", {"code": code}, app_id=app_id)
        if status != 200:
            raise RuntimeError(f"login failed: {status} {doc}")
        return doc["token"]

    # -- what landed -------------------------------------------------------------------------------
    def items(self) -> list[dict]:
        from wxloop.adapters.repository import unmarshal

        out, kwargs = [], {"TableName": self.stack.table}
        while True:
            page = self.ddb.scan(**kwargs)
            out += [unmarshal(i) for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def journey_ids(self) -> Counter:
        """How many journey records exist per event id (the push's dedupe key)."""
        return Counter(i.get("id") for i in self.items() if str(i.get("sk", "")).startswith("EV#"))

    def queue_depth(self, which: str = "queue") -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.stack.urls[which],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return sum(int(v) for v in attrs.values())

    def settle(self, expect: set[str] | None = None, timeout: float = 60.0) -> bool:
        """Wait until the queue is empty and (with ``expect``) every expected journey record exists, or
        the journey count stops changing; False on timeout."""
        deadline, last, stable = time.monotonic() + timeout, -1, 0
        while time.monotonic() < deadline:
            ids = self.journey_ids()
            if self.queue_depth() == 0:
                if expect is not None and expect <= set(ids):
                    return True
                stable = stable + 1 if sum(ids.values()) == last else 0
                if expect is None and stable >= 3:
                    return True
            last = sum(ids.values())
            time.sleep(0.5)
        return False


DEPLOYED_READ_TIMEOUT = 0.8


def answer_budget() -> float:
    """WeChat's 4.5 s answer budget, widened by what the raised stand-in timeout adds to the webhook's worst
    case (a timed-out write, then the fallback send): 4.5 s exactly with the deployed 0.8 s timeout."""
    read = float(os.environ.get("WXLOOP_AWS_READ_TIMEOUT") or DEPLOYED_READ_TIMEOUT)
    return 4.5 + 2 * max(0.0, read - DEPLOYED_READ_TIMEOUT)


def dedupe_key(xml: str) -> str:
    """The key wxloop dedupes a push by (and the id of its journey record)."""
    from wxloop.protocol.push import parse_inbound

    return parse_inbound(xml.encode()).dedupe_key


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def repo_path(*parts: str) -> Path:
    return REPO_ROOT.joinpath(*parts)
