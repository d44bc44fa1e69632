"""End to end: ``make run``'s stack in its own process, driven over HTTP the way WeChat drives it.

The stack is started exactly as ``make run`` starts it (``python -m wxloop.local.stack``); the test plays
WeChat with the simulator (signed, encrypted pushes) and reads what the worker did from the fake WeChat
API's call log and what was stored from the embedded DynamoDB.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from wxloop.local.simulator import Simulator
from wxloop.local.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS = json.loads((ROOT / "config" / "demo-accounts.json").read_text(encoding="utf-8"))["accounts"]
OA = next(app for app, acct in ACCOUNTS.items() if acct["kind"] == "oa")


def _http(url: str, body: bytes | None = None, *, method: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method=method or ("POST" if body is not None else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture(scope="module")
def stack():
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WECHAT_", "TABLE_", "QUEUE_"))}
    env.update(WXLOOP_PORT=str(port), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "wxloop.local.stack"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C" in line:
            break
    printed = "".join(lines)
    while time.monotonic() < deadline and "simulator click" not in printed:
        printed += proc.stdout.readline()
    if proc.poll() is not None or "fake WeChat API" not in printed:
        proc.kill()
        pytest.fail(f"the local stack did not start:\n{printed}{proc.stdout.read() if proc.stdout else ''}")
    fake = re.search(r"fake WeChat API:\s+(http://\S+)", printed).group(1)
    aws = re.search(r"embedded AWS \(moto\):\s+(http://\S+)", printed).group(1)
    yield {"url": f"http://127.0.0.1:{port}/wechat/oa/{OA}", "fake": fake, "aws": aws, "printed": printed}
    proc.terminate()
    try:
        assert proc.wait(timeout=15) == 0, "Ctrl-C/SIGTERM must stop the stack cleanly"
    finally:
        proc.kill()


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


def test_forged_push_is_rejected_and_stores_nothing(stack, sim):
    xml = sim.text("oE2E-forged", "shop")
    status, _ = _post(stack, sim, xml, token="not-the-token")
    assert status == 403
    import boto3

    ddb = boto3.client("dynamodb", endpoint_url=stack["aws"], region_name="us-east-1",
                       aws_access_key_id="local", aws_secret_access_key="local")
    item = ddb.get_item(TableName="wxloop-local", Key={"pk": {"S": f"ID#{OA}#oE2E-forged"}, "sk": {"S": "ID"}})
    assert "Item" not in item
    assert "Item" in ddb.get_item(TableName="wxloop-local",
                                  Key={"pk": {"S": f"ID#{OA}#oE2E-safe"}, "sk": {"S": "ID"}})
