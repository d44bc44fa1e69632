"""Rotation of the dedupe sets on an identity item, across the hour boundary.

A push's dedupe key goes into one of three string sets (``dd0``..``dd2``) chosen by the hour of its
CreateTime; every write clears the set of the hour to come (by the clock, whatever the push's age), which is
also the set of two hours back. So a key lives one to two hours: WeChat's retries (within ~15 s) of a push
made just before the hour are still deduped after it, and the item does not grow without bound.

The clock of the rotation (``time.time`` as the identity adapter sees it) is set per step; each scenario runs for
hours falling on each of the three sets.
"""

from __future__ import annotations

import time

import pytest
import xmltodict

from devstack.simulator import http_event
from tests.conftest import OA_APP

pytest_plugins = ["tests.integration.oa_webhook_kit"]  # fixtures: app, sim

OPENID = "oRotation0000000000000000001"
HOUR = 3600


class _Clock:
    """Stands in for the ``time`` module inside the identity adapter: ``time()`` is set by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def __getattr__(self, name):  # monotonic, sleep, ...: the real ones
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch):
    from wxloop.adapters.dynamo import identities

    fake = _Clock(time.time())
    monkeypatch.setattr(identities, "time", fake)
    return fake


@pytest.fixture(params=[1, 2, 3], ids=["hour+1", "hour+2", "hour+3"])
def boundary(request) -> int:
    """An hour boundary H (one of the next three, so each of the three sets is the one of H's hour)."""
    return (int(time.time()) // HOUR + request.param) * HOUR


def _set_of(create_time: int) -> str:
    from wxloop.adapters.dynamo.identities import DEDUPE_PERIOD_SECONDS, DEDUPE_SETS

    return f"dd{(create_time // DEDUPE_PERIOD_SECONDS) % DEDUPE_SETS}"


def _deliver(app, context, push):
    """One delivery of ``push`` (a retry is the same request again)."""
    return app.lambda_handler(http_event("POST", OA_APP, push.query, push.body), context)


def _reply(sim, out, push) -> dict | None:
    assert out["statusCode"] == 200
    if out["body"] == "success":
        return None
    return xmltodict.parse(sim.open_reply(out["body"], push))["xml"]


def _identity(aws) -> dict:
    [ident] = [i for i in aws.items() if i["pk"] == f"ID#{OA_APP}#{OPENID}"]
    return ident


def _dedupe_sets(ident: dict) -> dict[str, set]:
    return {name: set(ident[name]) for name in ("dd0", "dd1", "dd2") if name in ident}


def _key(xml: str) -> str:
    from wxloop.protocol.push import parse_inbound

    return parse_inbound(xml.encode()).dedupe_key


def _known_user(app, context, sim, clock, at: int) -> None:
    """The user wrote before: pushes after this one update the identity (the touch path)."""
    clock.now = at
    push = sim.push(sim.text(OPENID, "hi", create_time=at), "safe")
    assert _reply(sim, _deliver(app, context, push), push)["Content"]


# --- a retry across the hour boundary is still a duplicate --------------------------------------------


@pytest.mark.parametrize("newer", ["current", "late"])
def test_given_a_push_just_before_the_hour_when_wechat_retries_it_after_a_newer_push_then_it_is_a_duplicate(
        aws, app, context, sim, clock, boundary, newer):
    """Given push A recorded at H-2 s and a push B recorded at H+2 s (its write clears the hour to come),
    when WeChat retries A at H+10 s, then A is a duplicate: its stored reply again, nothing written.

    ``late``: B carries a CreateTime two hours old (a push recorded late): the set cleared is still the one of
    the hour to come by the clock, not one derived from B's CreateTime."""
    h = boundary
    _known_user(app, context, sim, clock, h - 600)

    clock.now = h - 2
    a_xml = sim.subscribe(OPENID, "spring", create_time=h - 2)
    push_a = sim.push(a_xml, "safe")
    first = _reply(sim, _deliver(app, context, push_a), push_a)
    assert first["Content"] == "Spring sale welcome"

    clock.now = h + 2
    b_time = h + 2 if newer == "current" else h - 2 * HOUR + 30
    b_xml = sim.event(OPENID, "LOCATION", create_time=b_time,  # no reply: A's stays the stored one
                      extra={"Latitude": "23.1", "Longitude": "113.3", "Precision": "119"})
    push_b = sim.push(b_xml, "safe")
    assert _deliver(app, context, push_b)["body"] == "success"
    before = _identity(aws)
    assert before["ev"]["type"] == "oa.event.location", "B was recorded"
    assert _key(a_xml) in before[_set_of(h - 2)], "B's write kept the previous hour's set"
    assert [j["id"] for j in aws.jobs()].count(f"{_key(a_xml)}:user_info") == 1, "A's follow-up, once"

    clock.now = h + 10
    retry = _deliver(app, context, push_a)
    assert _reply(sim, retry, push_a) == first, "the stored reply, CreateTime and all"
    assert _identity(aws) == before, "a retry writes nothing"
    assert aws.jobs() == [], "and queues nothing"


def test_given_a_newer_push_with_a_reply_then_a_retry_of_the_older_one_is_a_duplicate_answered_success(
        aws, app, context, sim, clock, boundary):
    """Only the latest reply is kept for retries: a retry of A after B replaced it is still a duplicate
    (nothing written, no second side effect) and is answered ``success`` rather than a second, fresh reply."""
    h = boundary
    _known_user(app, context, sim, clock, h - 600)
    clock.now = h - 2
    a_xml = sim.subscribe(OPENID, "spring", create_time=h - 2)
    push_a = sim.push(a_xml, "safe")
    assert _reply(sim, _deliver(app, context, push_a), push_a)["Content"] == "Spring sale welcome"
    clock.now = h + 2
    push_b = sim.push(sim.text(OPENID, "shop", create_time=h + 2), "safe")
    assert "data-miniprogram-appid" in _reply(sim, _deliver(app, context, push_b), push_b)["Content"]
    assert [j["id"] for j in aws.jobs()].count(f"{_key(a_xml)}:user_info") == 1
    before = _identity(aws)

    clock.now = h + 10
    assert _deliver(app, context, push_a)["body"] == "success"
    assert _identity(aws) == before
    assert aws.jobs() == []


# --- the item stays small --------------------------------------------------------------------------------


def test_a_key_two_hours_back_is_cleared_by_the_next_write(aws, app, context, sim, clock, boundary):
    """Given pushes recorded two hours back (C) and just before the hour (A), when B is recorded after the
    hour, then C's set is gone and A's and B's remain."""
    h = boundary
    clock.now = h - 2 * HOUR + 5
    c_xml = sim.text(OPENID, "hi", create_time=h - 2 * HOUR + 5)
    _deliver(app, context, sim.push(c_xml, "safe"))  # first contact: creates the identity
    clock.now = h - 2
    a_xml = sim.text(OPENID, "hello", create_time=h - 2)
    _deliver(app, context, sim.push(a_xml, "safe"))
    assert _dedupe_sets(_identity(aws)) == {_set_of(h - 2 * HOUR + 5): {_key(c_xml)}, _set_of(h - 2): {_key(a_xml)}}

    clock.now = h + 2
    b_xml = sim.text(OPENID, "hello again", create_time=h + 2)
    _deliver(app, context, sim.push(b_xml, "safe"))
    assert _dedupe_sets(_identity(aws)) == {_set_of(h - 2): {_key(a_xml)}, _set_of(h + 2): {_key(b_xml)}}


def test_over_many_hours_the_item_keeps_only_the_keys_of_this_hour_and_the_last(aws, clock, boundary):
    """Pushes every 20 minutes for eight hours (each with a retry): after every write the sets hold exactly
    the keys of the clock's hour and of the hour before, so the item never grows past two hours of pushes."""
    from wxloop.adapters.dynamo import identities
    from wxloop.domain.inbound import Inbound

    start = boundary - 8 * HOUR
    keys_by_hour: dict[int, set[str]] = {}
    for n, at in enumerate(range(start, boundary, 20 * 60)):
        clock.now = at
        inb = Inbound(openid=OPENID, to_user="gh_wxloopdemo01", msg_type="text", create_time=at, msg_id=str(n),
                      content="hi")
        event = {"id": inb.dedupe_key, "type": "oa.text", "app": OA_APP, "at": at, "detail": {}}
        kwargs = {"now": at, "event": event, "reply": None}
        touch = identities.touch_identity(OA_APP, inb, **kwargs)
        if touch.status == "unknown":
            touch = identities.create_identity(OA_APP, inb, first_touch={"channel": "oa"}, **kwargs)
        assert touch.status == "recorded"
        clock.now = at + 10
        assert identities.touch_identity(OA_APP, inb, **kwargs).status == "duplicate"  # WeChat's retry
        keys_by_hour.setdefault(at // HOUR, set()).add(inb.dedupe_key)
        hour = at // HOUR
        expected = {_set_of(h * HOUR): keys_by_hour[h] for h in (hour - 1, hour) if h in keys_by_hour}
        assert _dedupe_sets(identities.get_identity(OA_APP, OPENID)) == expected, f"after the push at hour {hour}"
