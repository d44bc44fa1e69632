"""What the OA webhook tests share: the handler and simulator fixtures, posting a push, reading the reply.

``pytest_plugins = ["tests.integration.oa_webhook_kit"]`` brings the fixtures (``app``, ``sim``); the helpers
are imported.
"""

from __future__ import annotations

import pytest
import xmltodict

from devstack.simulator import Simulator, http_event
from tests.conftest import OA_AES_KEY, OA_APP, OA_TOKEN, load_handler


@pytest.fixture
def app():
    return load_handler("oa_webhook")


@pytest.fixture
def sim():
    return Simulator(OA_APP, OA_TOKEN, OA_AES_KEY)


def post(app, context, sim, xml, mode="plain", **kw):
    push = sim.push(xml, mode, **kw)
    out = app.lambda_handler(http_event("POST", sim.app_id, push.query, push.body), context)
    return out, push


def reply_of(sim, out, push) -> dict | None:
    body = out["body"]
    if body == "success":
        return None
    return xmltodict.parse(sim.open_reply(body, push))["xml"]


def identities(aws):
    return [i for i in aws.items() if i["pk"].startswith("ID#")]


def people(aws):
    return [i for i in aws.items() if i["sk"] == "PROFILE"]
