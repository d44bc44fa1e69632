"""The embedded stack stays correct and flat: concurrent first contacts leave the table stream working, and
a run of new and returning people neither slows down nor grows without bound.

Each test starts its own stack as ``make run`` does (a fresh process, so its memory is the stack's own).
The full figure (2,000 messages from 1,000 new people) is ``make stack-bench``; CI runs a smaller volume
(``WXLOOP_E2E_MESSAGES``, default 200).
"""

from __future__ import annotations

import os
import threading
import time
import urllib.parse

import boto3
import pytest

from devstack.simulator import Simulator
from devstack.volume import run_volume
from tests.e2e.stack_kit import ACCOUNTS, OA, http, shutdown, stack_urls, start_stack

pytestmark = pytest.mark.e2e

MESSAGES = int(os.environ.get("WXLOOP_E2E_MESSAGES", "200"))
MAX_SLOWDOWN = 2.0  # msg/s of the first hundred over the last
MAX_GROWTH_MB_PER_1000 = 150  # the data it stores and streams grows; whole-table copies grew by gigabytes


@pytest.fixture
def stack():
    proc, out, printed = start_stack()
    try:
        yield {**stack_urls(printed), "pid": proc.pid}
    finally:
        code, rest = shutdown(proc, out)
    assert code == 0, f"SIGTERM must stop the stack within 15 s (exit code {code}):\n{rest[-3000:]}"


@pytest.fixture
def sim() -> Simulator:
    acct = ACCOUNTS[OA]
    return Simulator(OA, acct["token"], acct.get("encoding_aes_key"))


def _journey_events(stack, openid: str) -> list[dict]:
    ddb = boto3.client("dynamodb", endpoint_url=stack["aws"], region_name="us-east-1",
                       aws_access_key_id="local", aws_secret_access_key="local")
    ident = ddb.get_item(TableName="wxloop-local", Key={"pk": {"S": f"ID#{OA}#{openid}"}, "sk": {"S": "ID"}},
                         ConsistentRead=True).get("Item")
    if not ident:
        return []
    return ddb.query(TableName="wxloop-local", KeyConditionExpression="pk = :pk AND begins_with(sk, :ev)",
                     ExpressionAttributeValues={":pk": {"S": f"USER#{ident['uid']['S']}"}, ":ev": {"S": "EV#"}},
                     ConsistentRead=True)["Items"]


def _eventually(probe, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def _post(stack, sim: Simulator, xml: str) -> int:
    push = sim.push(xml, "safe")
    return http(f"{stack['url']}?{urllib.parse.urlencode(push.query)}", push.body.encode())[0]


def test_four_concurrent_deliveries_of_a_first_contact_leave_the_stream_working(stack, sim):
    xml = sim.text("oE2E-race", "积分")  # one push, delivered four times at once (WeChat retries overlap)
    statuses, barrier = [], threading.Barrier(4)

    def deliver():
        barrier.wait()
        statuses.append(_post(stack, sim, xml))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert statuses == [200] * 4
    assert _eventually(lambda: _journey_events(stack, "oE2E-race")), "the first contact is recorded once"
    # a later push, from someone else, still becomes a journey record: the stream reader is alive
    assert _post(stack, sim, sim.text("oE2E-after-race", "积分")) == 200
    assert _eventually(lambda: _journey_events(stack, "oE2E-after-race")), "the table stream stopped"


def test_new_and_returning_people_neither_slow_it_down_nor_grow_it_without_bound(stack, sim):
    result = run_volume(stack["url"], sim, stack["pid"], MESSAGES)
    figures = result.summary()
    print(figures)
    assert result.errors == 0, figures
    assert figures["slowdown"] <= MAX_SLOWDOWN, figures
    assert result.rss_after_mb - result.rss_before_mb <= MAX_GROWTH_MB_PER_1000 * max(1, MESSAGES / 1000), figures
    assert _post(stack, sim, sim.text("oE2E-after-volume", "积分")) == 200
    assert _eventually(lambda: _journey_events(stack, "oE2E-after-volume")), "the table stream fell behind"
