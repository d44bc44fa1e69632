"""End to end: ``make run``'s stack in its own process, driven over HTTP the way WeChat drives it.

The stack is started exactly as ``make run`` starts it (``python -m devstack.stack``); the test plays
WeChat with the simulator (signed, encrypted pushes) and reads what the worker did from the fake WeChat
API's call log and what was stored from the embedded DynamoDB.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from devstack.simulator import Simulator

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS = json.loads((ROOT / "config" / "demo-accounts.json").read_text(encoding="utf-8"))["accounts"]
OA = next(app for app, acct in ACCOUNTS.items() if acct["kind"] == "oa")
STARTUP_SECONDS = 60  # a cold start imports moto, boto3 and wechatpy: seconds, not minutes
STARTUP_ATTEMPTS = 3  # the stack picks its embedded AWS port itself: another process may take it first
BANNER_END = "simulator click"  # the last line the stack prints once everything is up


def _http(url: str, body: bytes | None = None, *, method: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method=method or ("POST" if body is not None else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


class _Output:
    """Everything a child process prints, read by a thread so that no read can block the tests."""

    def __init__(self, stream) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.ended = False  # the process closed its output (it exited)
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        for line in iter(stream.readline, ""):
            self.lines.put(line)
        self.lines.put(None)  # end of output: the process closed it (exited)

    def wait_for(self, marker: str, deadline: float) -> bool:
        """True once a printed line contains ``marker``; False at the end of the output or the deadline."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return False
            if line is None:
                self.ended = True
                return False
            self.seen.append(line)
            if marker in line:
                return True

    def text(self) -> str:
        return "".join(self.seen)

    def drain(self, timeout: float) -> str:
        """All output so far (after the process ended: all of it)."""
        self._thread.join(timeout)
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return self.text()
            if line is not None:
                self.seen.append(line)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=15)


def _start_stack(command: tuple[str, ...] = (sys.executable, "-m", "devstack.stack"),
                 startup_seconds: float = STARTUP_SECONDS) -> tuple[subprocess.Popen, _Output, str]:
    """Start the stack on a port the OS picks (``WXLOOP_PORT=0``; the stack prints the URL it bound); kill it
    and fail with its output when it does not come up in time; retry when a port it picked was taken."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WECHAT_", "TABLE_", "QUEUE_"))}
    env.update(WXLOOP_PORT="0", PYTHONUNBUFFERED="1")
    report = ""
    for attempt in range(1, STARTUP_ATTEMPTS + 1):
        proc = subprocess.Popen(list(command), cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out = _Output(proc.stdout)
        if out.wait_for(BANNER_END, time.monotonic() + startup_seconds) and proc.poll() is None:
            return proc, out, out.text()
        if out.ended:  # it closed its output: give it a moment to exit (threads of its own may linger)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        _stop(proc)
        printed = out.drain(timeout=5)
        why = f"exit code {proc.returncode}" if out.ended else f"no banner within {startup_seconds} s: killed"
        report += f"--- attempt {attempt} ({why}):\n{printed}\n"
        if "Address already in use" not in printed:
            break
    pytest.fail(f"the local stack did not start:\n{report}")


@pytest.fixture(scope="module")
def stack():
    proc, out, printed = _start_stack()
    try:
        gateway = re.search(rf"(http://127\.0\.0\.1:\d+)/wechat/oa/{OA}\b", printed)
        fake = re.search(r"fake WeChat API:\s+(http://\S+)", printed)
        aws = re.search(r"embedded AWS \(moto\):\s+(http://\S+)", printed)
        if not (gateway and fake and aws):
            pytest.fail(f"the local stack printed no URLs:\n{printed}")
        yield {"url": f"{gateway.group(1)}/wechat/oa/{OA}", "fake": fake.group(1), "aws": aws.group(1),
               "printed": printed}
    finally:
        proc.terminate()
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            code = None
        _stop(proc)
        rest = out.drain(timeout=5)
    assert code == 0, f"Ctrl-C/SIGTERM must stop the stack cleanly (exit code {code}):\n{rest}"


@pytest.fixture(scope="module")
def sim() -> Simulator:
    acct = ACCOUNTS[OA]
    return Simulator(OA, acct["token"], acct.get("encoding_aes_key"))


def _post(stack, sim: Simulator, xml: str, mode: str = "safe", **kw) -> tuple[int, str]:
    push = sim.push(xml, mode, **kw)
    status, body = _http(f"{stack['url']}?{urllib.parse.urlencode(push.query)}", push.body.encode())
    return status, sim.open_reply(body, push) if status == 200 else body


def _fake_calls(stack, path: str) -> list[dict]:
    _, body = _http(f"{stack['fake']}/__fake/calls?path={urllib.parse.quote(path)}")
    return json.loads(body)["calls"]


def _eventually(probe, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_prints_the_webhook_url_and_publishes_the_demo_menu(stack):
    assert stack["url"] in stack["printed"]
    menus = _fake_calls(stack, "/cgi-bin/menu/create")
    assert len(menus) == 1 and menus[0]["json"]["button"][0]["appid"] == ACCOUNTS[OA]["linked_mps"][0]


def test_get_verify_echoes_and_wrong_signature_is_403(stack, sim):
    query = sim.verify_query("e2e-echo")
    assert _http(f"{stack['url']}?{urllib.parse.urlencode(query)}") == (200, "e2e-echo")
    query["signature"] = "0" * 40
    assert _http(f"{stack['url']}?{urllib.parse.urlencode(query)}")[0] == 403


@pytest.mark.parametrize("mode", ["plain", "compat", "safe"])
def test_keyword_reply_carries_the_mini_program_link(stack, sim, mode):
    status, reply = _post(stack, sim, sim.text(f"oE2E-{mode}", "ＳＨＯＰ "), mode)
    assert status == 200
    assert "<MsgType><![CDATA[text]]></MsgType>" in reply
    assert f'data-miniprogram-appid="{ACCOUNTS[OA]["linked_mps"][0]}"' in reply
    assert f"<ToUserName><![CDATA[oE2E-{mode}]]></ToUserName>" in reply


def test_retried_push_gets_the_same_reply_once(stack, sim):
    xml = sim.text("oE2E-retry", "积分")
    first, second = _post(stack, sim, xml), _post(stack, sim, xml)
    assert first[0] == second[0] == 200
    assert "积分" in first[1]
    strip = lambda s: re.sub(r"<CreateTime>\d+</CreateTime>", "", s)  # noqa: E731
    assert strip(first[1]) == strip(second[1])


def test_scene_follow_is_welcomed_and_the_worker_links_user_info(stack, sim):
    status, reply = _post(stack, sim, sim.subscribe("oE2E-follow", "store_12"))
    assert status == 200 and "欢迎光临门店" in reply
    calls = _eventually(lambda: [c for c in _fake_calls(stack, "/cgi-bin/user/info")
                                 if c["query"].get("openid") == "oE2E-follow"])
    assert len(calls) == 1, "the subscribe queues exactly one user/info job, which the worker runs"


def test_menu_click_answers_news(stack, sim):
    status, reply = _post(stack, sim, sim.event("oE2E-click", "CLICK", key="ABOUT_US"))
    assert status == 200 and "<MsgType><![CDATA[news]]></MsgType>" in reply


def _identity(stack, openid: str) -> dict | None:
    import boto3

    ddb = boto3.client("dynamodb", endpoint_url=stack["aws"], region_name="us-east-1",
                       aws_access_key_id="local", aws_secret_access_key="local")
    out = ddb.get_item(TableName="wxloop-local", Key={"pk": {"S": f"ID#{OA}#{openid}"}, "sk": {"S": "ID"}},
                       ConsistentRead=True)
    return out.get("Item")


def test_forged_push_is_rejected_and_stores_nothing(stack, sim):
    xml = sim.text("oE2E-forged", "shop")
    status, _ = _post(stack, sim, xml, token="not-the-token")
    assert status == 403
    assert _identity(stack, "oE2E-forged") is None
    # the same push, signed with the account's token, is stored where the forged one was looked for
    status, _ = _post(stack, sim, xml)
    assert status == 200
    assert _identity(stack, "oE2E-forged") is not None
