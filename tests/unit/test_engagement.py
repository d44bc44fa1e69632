"""Engagement profile from journey events: decayed scores, Shanghai hour histogram, preferred platform."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from wxloop.domain.engagement import (
    HALF_LIFE,
    HOUR_CAP,
    JourneyEvent,
    Profile,
    last_active,
    preferred_platform,
    replay,
    score,
    update,
)

# 2025-12-01 00:00 Asia/Shanghai (16:00 UTC the day before)
MIDNIGHT_SH = 1_764_518_400


def at(hour, day=0, minute=0):
    return MIDNIGHT_SH + day * 86400 + hour * 3600 + minute * 60


def test_an_empty_profile_knows_nothing():
    p = Profile()
    assert score(p, at(0)) == 0 and preferred_platform(p, at(0)) is None and last_active(p) is None


def test_the_score_halves_every_half_life_and_adds_each_event():
    p = update(Profile(), JourneyEvent("message", "oa", at(9)))
    assert score(p, at(9), "oa") == 3.0
    assert abs(score(p, at(9) + HALF_LIFE, "oa") - 1.5) < 1e-9
    p = update(p, JourneyEvent("message", "oa", at(9) + HALF_LIFE))
    assert abs(score(p, at(9) + HALF_LIFE, "oa") - 4.5) < 1e-9
    assert score(p, at(9) + HALF_LIFE, "mp") == 0


def test_hours_are_counted_in_shanghai_time():
    p = update(Profile(), JourneyEvent("session", "mp", at(20, minute=59)))
    p = update(p, JourneyEvent("session", "mp", at(21, day=3)))
    assert p.hours[20] == 1 and p.hours[21] == 1 and sum(p.hours) == 2


def test_preferred_platform_follows_the_decayed_scores():
    events = [JourneyEvent("message", "oa", at(9, day=d)) for d in range(5)]  # busy on the OA a while ago
    events += [JourneyEvent("session", "mp", at(20, day=40 + d)) for d in range(3)]  # recently on the MP
    p = replay(events)
    assert preferred_platform(p, at(9, day=5)) == "oa"
    assert preferred_platform(p, at(21, day=43)) == "mp"
    assert p.last_active == {"oa": at(9, day=4), "mp": at(20, day=42)} and last_active(p) == at(20, day=42)


def test_unknown_events_or_platforms_change_nothing():
    p = update(Profile(), JourneyEvent("message", "oa", at(9)))
    assert update(p, JourneyEvent("teleport", "oa", at(10))) is p
    assert update(p, JourneyEvent("message", "sms", at(10))) is p


def test_the_histogram_stays_small_by_halving():
    p = replay(JourneyEvent("page_view", "mp", at(12, day=d % 300)) for d in range(HOUR_CAP + 10))
    assert max(p.hours) < HOUR_CAP and p.hours[12] > HOUR_CAP // 2 - 1


def test_the_profile_round_trips_through_a_small_document():
    p = replay([JourneyEvent("message", "oa", at(9)), JourneyEvent("session", "mp", at(21, day=1))])
    d = json.loads(json.dumps(p.to_doc()))
    assert len(json.dumps(d)) < 200
    q = Profile.from_doc(d)
    assert q.hours == p.hours and q.last_active == p.last_active and q.score_at == p.score_at
    assert Profile.from_doc({"s": {"oa": "junk"}}) == Profile() and Profile.from_doc(None) == Profile()
    assert Profile.from_doc({"h": [1, 2]}).hours == (0,) * 24


events = st.lists(st.builds(JourneyEvent, st.sampled_from(["message", "session", "order"]),
                            st.sampled_from(["oa", "mp"]), st.integers(at(0), at(0, day=90))), max_size=30)


@settings(deadline=None)  # shared CI machines: timing is not what is tested
@given(events)
def test_property_the_score_does_not_depend_on_arrival_order(evs):
    now = at(0, day=91)
    forward, backward = replay(evs), replay(reversed(evs))
    for platform in ("oa", "mp"):
        assert abs(score(forward, now, platform) - score(backward, now, platform)) < 1e-6
    assert forward.hours == backward.hours and forward.last_active == backward.last_active


def test_journey_event_types_map_to_engagement_signals():
    from wxloop.domain.engagement import JourneyEvent, from_journey

    assert from_journey("oa.text", 10) == JourneyEvent("message", "oa", 10)
    assert from_journey("oa.event.subscribe", 10) == JourneyEvent("subscribe", "oa", 10)
    assert from_journey("oa.event.click", 10) == JourneyEvent("menu_click", "oa", 10)
    assert from_journey("mp.launch", 10) == JourneyEvent("session", "mp", 10)
    assert from_journey("mp.client.add_to_cart", 10) == JourneyEvent("page_view", "mp", 10)
    assert from_journey("mp.order_paid", 10) == JourneyEvent("order", "mp", 10)
    for silent in ("oa.event.unsubscribe", "outbox", "xx.text", "oa.", "", "oa.client.x"):
        assert from_journey(silent, 10) is None, silent
