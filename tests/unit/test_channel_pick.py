"""Channel choice matrix: windows open/closed/exhausted, credits, consent, caps, account kinds, preference,
and the send time (the person's hour inside the window, never in quiet hours)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wxloop.domain.channel_pick import (
    PLATFORM,
    SEND_SLACK,
    Offer,
    PushCaps,
    Reachability,
    Skip,
    SkipReason,
    pick_channel,
    send_time,
)
from wxloop.domain.config_doc import shanghai_hour, span_hours

MIDNIGHT_SH = 1_764_518_400  # 2025-12-01 00:00 Asia/Shanghai
NOW = MIDNIGHT_SH + 10 * 3600
ALL = Offer(frozenset({"oa_cs", "mp_cs", "mp_subscribe", "oa_template"}), "tmpl", oa_service_account=True,
            service_notice=True)
MARKETING = Offer(frozenset({"oa_cs", "mp_cs", "mp_subscribe", "oa_template"}), "tmpl", oa_service_account=True)
NO_CAPS = PushCaps()
OPEN = {"win_msg_at": NOW - 3600, "win_msg_sent": 1}  # a message an hour ago: 47 h and 4 messages left
EXHAUSTED = {"win_msg_at": NOW - 3600, "win_msg_sent": 5}
CLOSED = {"win_msg_at": NOW - 48 * 3600, "win_msg_sent": 0}
SESSION_ONLY = {"win_evt_at": NOW - 10, "win_evt_sent": 0}  # 1-minute window: gone before a batch goes out


def pick(offer=ALL, caps=NO_CAPS, at=NOW, **reach):
    return pick_channel(offer, Reachability(**reach), caps, at)


def reason(result):
    assert isinstance(result, Skip), result
    return result.reason


@pytest.mark.parametrize("reach, expected", [
    ({"follows_oa": True, "oa_identity": OPEN}, "oa_cs"),
    ({"mp_identity": OPEN}, "mp_cs"),
    ({"follows_oa": True, "oa_identity": EXHAUSTED, "subscribe_credits": {"tmpl": 1}}, "mp_subscribe"),
    ({"follows_oa": True, "oa_identity": CLOSED, "subscribe_credits": {"tmpl": 1}}, "mp_subscribe"),
    ({"follows_oa": True, "oa_identity": CLOSED}, "oa_template"),
    ({"follows_oa": False, "oa_identity": OPEN, "subscribe_credits": {"tmpl": 1}}, "mp_subscribe"),  # 45015
    ({"follows_oa": True, "oa_identity": OPEN, "mp_identity": OPEN}, "oa_cs"),  # no preference: OA first
    ({"follows_oa": True, "oa_identity": OPEN, "mp_identity": OPEN, "preferred": "mp"}, "mp_cs"),
    ({"follows_oa": True, "subscribe_credits": {"tmpl": 1}, "preferred": "oa"}, "oa_template"),
    ({"follows_oa": True, "subscribe_credits": {"tmpl": 1}, "preferred": "mp"}, "mp_subscribe"),
    ({"follows_oa": True, "oa_identity": OPEN, "preferred": "mp", "subscribe_credits": {"tmpl": 1}}, "oa_cs"),
    ({"follows_oa": True, "mp_identity": SESSION_ONLY, "subscribe_credits": {"tmpl": 1}}, "mp_subscribe"),
    ({"follows_oa": True, "oa_identity": OPEN, "closed": frozenset({"oa_cs"}), "mp_identity": OPEN}, "mp_cs"),
])
def test_the_cheapest_allowed_channel_wins(reach, expected):
    assert pick(**reach) == expected


def test_a_window_closing_before_the_batch_goes_out_is_not_used():
    almost = {"win_msg_at": NOW - 48 * 3600 + SEND_SLACK - 1, "win_msg_sent": 0}
    assert reason(pick(offer=Offer(frozenset({"oa_cs"})), follows_oa=True, oa_identity=almost)) \
        is SkipReason.WINDOW_CLOSED
    later = {"win_msg_at": NOW - 48 * 3600 + SEND_SLACK + 1, "win_msg_sent": 0}
    assert pick(offer=Offer(frozenset({"oa_cs"})), follows_oa=True, oa_identity=later) == "oa_cs"


@pytest.mark.parametrize("offer, reach, why", [
    (Offer(frozenset({"oa_cs"})), {"follows_oa": True, "oa_identity": EXHAUSTED}, SkipReason.WINDOW_EXHAUSTED),
    (Offer(frozenset({"oa_cs"})), {"follows_oa": True, "oa_identity": CLOSED}, SkipReason.WINDOW_CLOSED),
    (Offer(frozenset({"oa_cs"})), {"follows_oa": True}, SkipReason.WINDOW_CLOSED),
    (Offer(frozenset({"oa_cs"})), {"oa_identity": OPEN}, SkipReason.NOT_FOLLOWER),
    (Offer(frozenset({"mp_subscribe"}), "tmpl"), {"subscribe_credits": {"other": 3, "tmpl": 0}}, SkipReason.NO_CREDIT),
    (Offer(frozenset({"mp_subscribe"}), "tmpl"), {"subscribe_credits": {"tmpl": 1}, "closed": frozenset({"mp_subscribe"})},
     SkipReason.CHANNEL_CLOSED),
    (Offer(frozenset({"oa_template"}), service_notice=True), {"follows_oa": True}, SkipReason.NOT_SERVICE_ACCOUNT),
    (MARKETING, {"follows_oa": True}, SkipReason.NOT_SERVICE_NOTICE),
    (Offer(frozenset()), {"follows_oa": True, "oa_identity": OPEN}, SkipReason.NO_CONTENT),
])
def test_skips_say_why(offer, reach, why):
    assert reason(pick(offer=offer, **reach)) is why


def test_skip_details_name_every_offered_channel():
    out = pick(offer=MARKETING, follows_oa=True, oa_identity=EXHAUSTED)
    assert isinstance(out, Skip) and dict(out.details) == {
        "oa_cs": SkipReason.WINDOW_EXHAUSTED, "mp_cs": SkipReason.WINDOW_CLOSED,
        "mp_subscribe": SkipReason.NO_CREDIT, "oa_template": SkipReason.NOT_SERVICE_NOTICE}


def test_consent_opted_out_never_and_explicit_consent_when_required():
    reach = {"follows_oa": True, "oa_identity": OPEN}
    assert reason(pick(consent="withdrawn", **reach)) is SkipReason.OPTED_OUT
    strict = Offer(ALL.channels, "tmpl", True, True, require_consent=True)
    assert reason(pick(offer=strict, consent="unknown", **reach)) is SkipReason.NO_CONSENT
    assert pick(offer=strict, consent="granted", **reach) == "oa_cs"


def test_frequency_caps():
    reach = {"follows_oa": True, "oa_identity": OPEN}
    assert reason(pick(caps=PushCaps(per_day=1), recent_pushes=(NOW - 3600,), **reach)) is SkipReason.CAP_PER_DAY
    assert pick(caps=PushCaps(per_day=1), recent_pushes=(NOW - 86400,), **reach) == "oa_cs"
    week = tuple(NOW - d * 86400 for d in (1, 2, 6))
    assert reason(pick(caps=PushCaps(per_week=3), recent_pushes=week, **reach)) is SkipReason.CAP_PER_WEEK
    assert reason(pick(caps=PushCaps(min_gap=48 * 3600), recent_pushes=(NOW - 86400,), **reach)) is SkipReason.TOO_SOON


ALLOWED = tuple(h in span_hours(10, 21) and h not in span_hours(22, 8) for h in range(24))


def hist(**counts):
    return tuple(counts.get(f"h{h}", 0) for h in range(24))


def test_send_time_is_the_most_active_allowed_hour():
    before = MIDNIGHT_SH + 7 * 3600
    assert send_time(hist(h20=5, h12=3), ALLOWED, before) == MIDNIGHT_SH + 20 * 3600
    assert send_time(hist(h23=9, h3=9, h12=1), ALLOWED, before) == MIDNIGHT_SH + 12 * 3600  # quiet hours lose
    assert send_time(hist(), ALLOWED, before) == MIDNIGHT_SH + 10 * 3600  # no history: the window's start
    assert send_time(hist(h15=2, h18=2), ALLOWED, before) == MIDNIGHT_SH + 15 * 3600  # tie: earliest


def test_send_time_inside_the_window_may_be_now_and_wraps_to_tomorrow():
    now = MIDNIGHT_SH + 15 * 3600 + 1234
    assert send_time(hist(), ALLOWED, now) == now
    assert send_time(hist(h11=4), ALLOWED, now) == MIDNIGHT_SH + 86400 + 11 * 3600
    assert send_time(hist(h11=4), ALLOWED, now, not_after=MIDNIGHT_SH + 86400) == now  # the run ends first
    assert send_time(hist(), ALLOWED, MIDNIGHT_SH + 21 * 3600, not_after=MIDNIGHT_SH + 23 * 3600) is None


@settings(deadline=None)  # shared CI machines: timing is not what is tested
@given(st.lists(st.integers(0, 50), min_size=24, max_size=24), st.lists(st.booleans(), min_size=24, max_size=24),
       st.integers(MIDNIGHT_SH, MIDNIGHT_SH + 365 * 86400))
def test_property_the_send_time_is_never_in_a_disallowed_hour(hours, allowed, now):
    at = send_time(hours, allowed, now)
    if not any(allowed):
        assert at is None
    else:
        assert at is not None and now <= at < now + 86400 and allowed[shanghai_hour(at)]


reaches = st.builds(
    Reachability,
    follows_oa=st.booleans(),
    oa_identity=st.sampled_from([None, OPEN, EXHAUSTED, CLOSED, SESSION_ONLY]),
    mp_identity=st.sampled_from([None, OPEN, EXHAUSTED, CLOSED, SESSION_ONLY]),
    subscribe_credits=st.sampled_from([{}, {"tmpl": 1}, {"tmpl": 0}, {"x": 2}]),
    consent=st.sampled_from(["granted", "withdrawn", "unknown"]),
    closed=st.frozensets(st.sampled_from(list(PLATFORM))),
    recent_pushes=st.sampled_from([(), (NOW - 3600,), (NOW - 3 * 86400,)]),
    preferred=st.sampled_from([None, "oa", "mp"]),
)
offers = st.builds(Offer, st.frozensets(st.sampled_from(list(PLATFORM))), st.sampled_from(["tmpl", ""]),
                   st.booleans(), st.booleans(), st.booleans())


@settings(deadline=None)  # shared CI machines: timing is not what is tested
@given(offers, reaches)
def test_property_the_picker_never_returns_a_channel_that_is_not_allowed(offer, reach):
    out = pick_channel(offer, reach, PushCaps(per_day=1), NOW)
    if isinstance(out, Skip):
        return
    assert out in offer.channels and out not in reach.closed and reach.consent != "withdrawn"
    assert not (offer.require_consent and reach.consent != "granted")
    assert not any(NOW - t < 86400 for t in reach.recent_pushes)
    if out in ("oa_cs", "oa_template"):
        assert reach.follows_oa
    if out == "oa_cs":
        assert reach.oa_identity is OPEN
    if out == "mp_cs":
        assert reach.mp_identity is OPEN
    if out == "mp_subscribe":
        assert reach.subscribe_credits.get(offer.subscribe_template, 0) > 0
    if out == "oa_template":
        assert offer.oa_service_account and offer.service_notice
