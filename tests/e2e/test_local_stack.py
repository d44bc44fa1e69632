"""End to end: ``make run``'s stack in its own process, driven over HTTP the way WeChat drives it.

The stack is started exactly as ``make run`` starts it (``python -m devstack.stack``); the test plays
WeChat with the simulator (signed, encrypted pushes) and reads what the worker did from the fake WeChat
API's call log and what was stored from the embedded DynamoDB.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from devstack.simulator import Simulator
from tests.e2e.stack_kit import ACCOUNTS, OA, http, shutdown, stack_urls, start_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack():
    proc, out, printed = start_stack()
    try:
        yield stack_urls(printed)
    finally:
        code, rest = shutdown(proc, out)
    assert code == 0, f"Ctrl-C/SIGTERM must stop the stack cleanly (exit code {code}):\n{rest}"


@pytest.fixture(scope="module")
def sim() -> Simulator:
    acct = ACCOUNTS[OA]
    return Simulator(OA, acct["token"], acct.get("encoding_aes_key"))


def _post(stack, sim: Simulator, xml: str, mode: str = "safe", **kw) -> tuple[int, str]:
    push = sim.push(xml, mode, **kw)
    status, body = http(f"{stack['url']}?{urllib.parse.urlencode(push.query)}", push.body.encode())
    return status, sim.open_reply(body, push) if status == 200 else body


def _fake_calls(stack, path: str) -> list[dict]:
    _, body = http(f"{stack['fake']}/__fake/calls?path={urllib.parse.quote(path)}")
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
    assert http(f"{stack['url']}?{urllib.parse.urlencode(query)}") == (200, "e2e-echo")
    query["signature"] = "0" * 40
    assert http(f"{stack['url']}?{urllib.parse.urlencode(query)}")[0] == 403


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


def _env_file(stack) -> dict[str, str]:

    out = {}
    for line in open(stack["env_file"], encoding="utf-8"):
        if line.startswith("export "):
            name, _, value = line[len("export "):].rstrip("\n").partition("=")
            out[name] = shlex.split(value)[0]
    return out


def test_env_file_gives_the_cli_everything_to_talk_to_the_stack(stack):

    values = _env_file(stack)
    assert stat.S_IMODE(os.stat(stack["env_file"]).st_mode) == 0o600, "it holds the accounts' app secrets"
    assert values["AWS_ENDPOINT_URL"] == stack["aws"] and values["WECHAT_API_BASE"] == stack["fake"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WECHAT_", "TABLE_", "QUEUE_"))}
    cli = [sys.executable, "-c", "import sys; from wxloop.cli import main; sys.exit(main())"]
    pulled = subprocess.run([*cli, "rules", "pull"], env={**env, **values}, capture_output=True, text=True,
                            timeout=60)
    assert pulled.returncode == 0, pulled.stderr
    assert f"app_id: {OA}" in pulled.stdout
    pushed = subprocess.run([*cli, "menu", "push", "rules/menu.yaml", "--app", OA], env={**env, **values},
                            capture_output=True, text=True, timeout=60)
    assert pushed.returncode == 0, pushed.stderr
    assert len(_fake_calls(stack, "/cgi-bin/menu/create")) == 2, "the fake API got it, not WeChat"


def test_second_stack_on_the_same_port_says_so_in_one_line(stack):

    port = stack["gateway"].rsplit(":", 1)[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WECHAT_", "TABLE_", "QUEUE_"))}
    env.update(WXLOOP_PORT=port, WXLOOP_AWS_PORT="0", WXLOOP_WECHAT_PORT="0", WXLOOP_ENV_FILE=os.devnull)
    second = subprocess.run([sys.executable, "-m", "devstack.stack"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert second.returncode == 1
    lines = (second.stdout + second.stderr).strip().splitlines()
    assert len(lines) == 1 and f"port {port} (gateway) is already in use" in lines[0], lines


def test_body_that_is_not_utf8_reaches_the_function_base64_encoded(stack, sim):
    push = sim.push(sim.text("oE2E-binary", "shop"), "plain")
    status, body = http(f"{stack['url']}?{urllib.parse.urlencode(push.query)}", b"<xml>\xff\xfe\x80</xml>")
    assert (status, body) == (200, "success"), "a malformed push gets WeChat's empty answer, not a dropped connection"
    status, _ = http(f"{stack['url']}?{urllib.parse.urlencode(push.query)}", push.body.encode())
    assert status == 200
