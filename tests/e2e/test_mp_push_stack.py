"""End to end: the Mini Program push webhook of ``make run``'s stack, played by the simulator's ``mp-*``
subcommands (JSON and XML, plain and safe mode); the worker's customer-service sends read from the fake
WeChat API's call log."""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from devstack import simulator
from tests.e2e.stack_kit import ACCOUNTS, http, shutdown, stack_urls, start_stack

pytestmark = pytest.mark.e2e
MP = next(app for app, acct in ACCOUNTS.items() if acct["kind"] == "mp")


@pytest.fixture(scope="module")
def stack():
    proc, out, printed = start_stack()
    try:
        yield stack_urls(printed)
    finally:
        code, rest = shutdown(proc, out)
    assert code == 0, f"the stack must stop cleanly (exit code {code}):\n{rest}"


@pytest.fixture(autouse=True)
def demo_accounts(monkeypatch):
    """The simulator signs and encrypts with the stack's own (demo) accounts."""
    from tests.e2e.stack_kit import ROOT

    monkeypatch.setenv("WECHAT_ACCOUNTS", (ROOT / "config" / "demo-accounts.json").read_text(encoding="utf-8"))


def _cs_sends(stack, openid: str) -> list[dict]:
    _, body = http(f"{stack['fake']}/__fake/calls?path={urllib.parse.quote('/cgi-bin/message/custom/send')}")
    return [c for c in json.loads(body)["calls"] if (c.get("json") or {}).get("touser") == openid]


def _eventually(probe, timeout: float = 30.0):  # the worker shares a loaded machine
    deadline = time.monotonic() + timeout
    while not (value := probe()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return value


def test_the_stack_serves_the_mp_webhook(stack):
    assert f"/wechat/mp/{MP}" in stack["printed"]
    assert simulator.main(["mp-verify", "--url", stack["gateway"]]) == 0


# before the sends below keep the stack's worker busy: a loaded stack may answer late (queued: success)
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_human_is_transferred_to_customer_service_staff_in_the_push_format(stack, capsys, fmt):
    code = simulator.main(["mp-text", "人工", "--url", stack["gateway"], "--format", fmt,
                           "--openid", f"oE2E-mp-human-{fmt}"])
    assert code == 0 and "transfer_customer_service" in capsys.readouterr().out


@pytest.mark.parametrize("fmt, mode", [("json", "safe"), ("xml", "safe"), ("json", "plain"), ("xml", "plain")])
def test_a_text_to_the_mp_is_answered_by_a_customer_service_message(stack, capsys, fmt, mode):
    openid = f"oE2E-mp-{fmt}-{mode}"
    code = simulator.main(["mp-text", "积分", "--url", stack["gateway"], "--format", fmt, "--mode", mode,
                           "--openid", openid])
    assert code == 0 and "success" in capsys.readouterr().out
    sends = _eventually(lambda: _cs_sends(stack, openid))
    assert sends and "积分" in sends[0]["json"]["text"]["content"]
