"""What the MP webhook tests share: the handler, an MP account in a chosen mode and format, the simulator,
posting a push and reading the reply.

``pytest_plugins = ["tests.integration.mp_webhook_kit"]`` brings the fixture ``mp_app``; the helpers are
imported.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devstack.simulator import MpSimulator, http_event
from tests.conftest import ACCOUNTS, MP_APP, load_handler

MP_TOKEN = ACCOUNTS["accounts"][MP_APP]["token"]
MP_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210abcdefg"
SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "official" / "mp"


@pytest.fixture
def mp_app():
    return load_handler("mp_webhook")


def configure(monkeypatch, *, mode: str | None = "plain", push_format: str = "json", key: bool = True) -> None:
    """The test MP with an AES key (``key``), the message ``mode`` (None: the default) and ``push_format``."""
    doc = json.loads(json.dumps(ACCOUNTS))
    account = doc["accounts"][MP_APP]
    account["push_format"] = push_format
    if key:
        account["encoding_aes_key"] = MP_AES_KEY
    if mode is not None:
        account["mode"] = mode
    monkeypatch.setenv("WECHAT_ACCOUNTS", json.dumps(doc))
    # a cold first test on a busy machine (rules compiled, clients made) must not trip the deadline guard
    monkeypatch.setenv("PUSH_BUDGET_SECONDS", "20")


def simulator(fmt: str = "json") -> MpSimulator:
    return MpSimulator(MP_APP, MP_TOKEN, MP_AES_KEY, fmt=fmt)


def post(app, context, sim, body: str, mode: str = "plain", **kw):
    push = sim.push(body, mode, **kw)
    out = app.lambda_handler(http_event("POST", MP_APP, push.query, push.body, kind="mp"), context)
    return out, push


def sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def identities(aws) -> list[dict]:
    return [i for i in aws.items() if i["pk"].startswith("ID#") and i["sk"] == "ID"]


def cs_jobs(aws) -> list[dict]:
    return [j for j in aws.jobs() if j.get("kind") == "cs_send"]
