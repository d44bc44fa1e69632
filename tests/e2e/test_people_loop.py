"""End to end: the whole loop on ``make run``'s stack, driven over HTTP with the simulator's commands exactly
as docs/local-stack.md shows them.

Follow the OA through a QR scene (WeChat's user/info knows the human's unionid) → the reply's Mini Program
link → log in to the MP with the same unionid → one person with both identities, the QR scene kept as first
touch, the OA follow state visible in the MP, and the merge in the journey.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.parse

import pytest

from tests.e2e.stack_kit import ACCOUNTS, OA, http, shutdown, stack_urls, start_stack

pytestmark = pytest.mark.e2e
MP = ACCOUNTS[OA]["linked_mps"][0]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    proc, out, printed = start_stack()
    try:
        urls = stack_urls(printed)
        urls["sessions"] = str(tmp_path_factory.mktemp("mp") / "sessions.json")
        yield urls
    finally:
        code, rest = shutdown(proc, out)
    assert code == 0, f"the stack must stop cleanly (exit code {code}):\n{rest}"


def sim(stack, *args: str) -> tuple[int, str]:
    """``python -m devstack.simulator ARGS`` against the running stack (as a newcomer pastes it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WECHAT_", "TABLE_", "QUEUE_"))}
    env.update(WXLOOP_PORT=str(urllib.parse.urlsplit(stack["gateway"]).port),
               WXLOOP_WECHAT_PORT=str(urllib.parse.urlsplit(stack["fake"]).port),
               WXLOOP_AWS_PORT=str(urllib.parse.urlsplit(stack["aws"]).port), WXLOOP_MP_SESSIONS=stack["sessions"])
    done = subprocess.run([sys.executable, "-m", "devstack.simulator", *args], env=env, capture_output=True,
                          text=True, timeout=60, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    return done.returncode, done.stdout + done.stderr


def _json(output: str) -> dict:
    return json.loads(output[output.index("{"):])


def _eventually(probe, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def test_follow_by_qr_then_mp_login_with_the_same_unionid_is_one_person(stack):
    oa_openid, mp_openid, unionid = "oE2E-loop-oa", "oE2E-loop-mp", "uE2E-loop-human"
    code, out = sim(stack, "subscribe", "store_12", "--openid", oa_openid, "--unionid", unionid)
    assert code == 0, out
    link = re.search(r'data-miniprogram-appid="(wx[0-9a-f]{16})" data-miniprogram-path="([^"]+)"', out)
    assert link and link.group(1) == MP, out

    def linked():  # the stream queued user/info; the worker linked the unionid to the follower
        code, out = sim(stack, "person", "--openid", oa_openid)
        return _json(out) if code == 0 and _json(out).get("unionid") == unionid else None

    follower = _eventually(linked, timeout=60)
    assert follower, "the follower's unionid was never linked: " + http(f"{stack['fake']}/__fake/calls")[1][-3000:]
    assert follower["first_touch"]["scene"] == "store_12"

    code, out = sim(stack, "login", "--openid", mp_openid, "--unionid", unionid, "--scene", "1082",
                    "--path", link.group(2))
    assert code == 0, out
    person = _json(out)["person"]
    assert person["follow"] == {"oa_app_id": OA, "following": True}  # the OA follow, seen from the MP
    assert person["prompt"]["mode"] == "none"  # never prompt a follower

    code, out = sim(stack, "person", "--app", MP, "--openid", mp_openid)
    assert code == 0, out
    one = _json(out)
    assert one["uid"] == follower["uid"]
    assert one["openids"] == {OA: oa_openid, MP: mp_openid}
    assert one["first_touch"]["scene"] == "store_12"  # the QR scene stays the first touch
    assert len(one["merged"]) == 1 and f"{MP}:{mp_openid}" in one["merged"][0]["moved"]["identities"]

    assert sim(stack, "prefs", "tea,coffee", "--openid", mp_openid)[0] == 0
    code, out = sim(stack, "me", "--openid", mp_openid)
    assert code == 0 and _json(out)["topics"] == ["tea", "coffee"]
    journey = _eventually(lambda: (lambda j: j if "person.merged" in j else None)(
        _json(sim(stack, "person", "--openid", oa_openid)[1])["journey"]))
    assert journey and "oa.event.subscribe" in journey and "mp.first_launch" in journey
