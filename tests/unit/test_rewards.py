"""Reward campaigns: validation (no reward for sharing or following) and the reward decision."""

from pathlib import Path

import pytest

from wxloop.campaignfiles import load_reward_campaigns
from wxloop.domain.attribution import Referral
from wxloop.domain.config_doc import ConfigError
from wxloop.domain.rewards import (
    InviteeEvent,
    NoReward,
    Reversal,
    Reward,
    Tallies,
    decide_reward,
    entry_id,
    parse_reward_doc,
    reverse_referral,
)
from wxloop.rulesfile import FileError

ROOT = Path(__file__).resolve().parents[2]
T = 1_790_000_000
A, B = "a" * 32, "b" * 32


def campaign(**overrides):
    body = {"id": "c1", "qualify": "phone_bound", "points": 100, **overrides}
    return parse_reward_doc({"campaigns": [body]})[0]


def pending(**kw):
    return Referral(**{"invitee": B, "inviter": A, "campaign": "c1", "channel": "invite", "created_at": T, **kw})


PHONE = InviteeEvent("phone_bound", B, T + 3600)


def test_the_example_file_loads():
    campaigns, _ = load_reward_campaigns(ROOT / "rules" / "rewards.example.yaml")
    assert [c.id for c in campaigns] == ["welcome-phone", "first-order", "loyal-week"]
    assert campaigns[1].qualify.event == "first_order" and campaigns[1].reverse_on == {"order_refunded"}


@pytest.mark.parametrize("qualify", ["share", {"event": "shared_page"}, {"event": "follow_oa"},
                                     {"event": "oa_followed"}, {"event": "lucky_draw"}, {"event": "forward_to_group"},
                                     {"event": "subscribe"}, {"event": "invite"}, {"event": "shar_e"},
                                     {"event": "fo11ow"}, {"event": "sh4re_page"}, {"event": "sub_scribe"},
                                     {"event": "l1ke"}, {"event": "lott3ry"}])
def test_rewards_for_sharing_following_or_luck_cannot_be_configured(qualify):
    with pytest.raises(ConfigError, match="sharing, following or luck") as err:
        campaign(qualify=qualify)
    assert err.value.path.startswith("campaigns[0].qualify")


def test_real_actions_are_accepted():
    assert campaign(qualify={"event": "first_order"}).qualify.event == "first_order"
    assert campaign(qualify={"event": "invitee_first_order"}).qualify.kind == "event"
    assert campaign(qualify={"active_days": 7}).qualify.days == 7
    assert campaign(qualify={"event": "order_paid_3"}).qualify.event == "order_paid_3"


@pytest.mark.parametrize("body, path", [
    ({"id": "c1", "qualify": "phone_bound"}, "campaigns[0].points"),
    ({"id": "c1", "qualify": "phone_bound", "points": 0}, "campaigns[0].points"),
    ({"id": "c1", "qualify": "phone_bound", "points": True}, "campaigns[0].points"),
    ({"id": "C 1", "qualify": "phone_bound", "points": 1}, "campaigns[0].id"),
    ({"id": "c1", "qualify": {"active_days": 0}, "points": 1}, "campaigns[0].qualify.active_days"),
    ({"id": "c1", "qualify": {"active_days": 2, "event": "x_y"}, "points": 1}, "campaigns[0].qualify"),
    ({"id": "c1", "qualify": "phone_bound", "points": 1, "caps": {"per_day": 1}}, "campaigns[0].caps.per_day"),
    ({"id": "c1", "qualify": "phone_bound", "points": 1, "notify": {}}, "campaigns[0].notify.text"),
])
def test_invalid_documents_name_the_field(body, path):
    with pytest.raises(ConfigError) as err:
        parse_reward_doc({"campaigns": [body]})
    assert err.value.path == path


def test_file_errors_give_the_line(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("campaigns:\n  - id: c1\n    qualify: phone_bound\n    points: 10\n  - id: c1\n"
                 "    qualify: {event: share_card}\n    points: 1\n")
    with pytest.raises(FileError) as err:
        load_reward_campaigns(f)
    assert err.value.line == 6 and "campaigns[1].qualify.event" in str(err.value)
    f.write_text("campaigns:\n  - id: c1\n    qualify: phone_bound\n    points: 10\n  - id: c1\n"
                 "    qualify: phone_bound\n    points: 1\n")
    with pytest.raises(FileError, match="duplicate campaign id") as err:
        load_reward_campaigns(f)
    assert err.value.line == 5


def test_a_pending_referral_and_a_qualifying_event_give_one_deterministic_entry():
    out = decide_reward(campaign(), pending(), PHONE, Tallies())
    assert isinstance(out, Reward)
    assert out.entry.uid == A and out.entry.points == 100 and out.entry.entry_id == entry_id("reward", "c1", B)
    again = decide_reward(campaign(), pending(), InviteeEvent("phone_bound", B, T + 9999), Tallies())
    assert isinstance(again, Reward) and again.entry.entry_id == out.entry.entry_id  # a retry writes the same id


@pytest.mark.parametrize("referral, event, reason", [
    (pending(state="rewarded"), PHONE, NoReward.ALREADY_REWARDED),
    (pending(state="voided"), PHONE, NoReward.NOT_PENDING),
    (pending(campaign="other"), PHONE, NoReward.OTHER_CAMPAIGN),
    (pending(), InviteeEvent("phone_bound", "c" * 32, T), NoReward.NOT_THE_INVITEE),
    (pending(), InviteeEvent("event", B, T, name="first_order"), NoReward.NOT_QUALIFYING),
    (pending(), InviteeEvent("phone_bound", B, T + 31 * 86400), NoReward.REFERRAL_TOO_OLD),
])
def test_no_reward_reasons(referral, event, reason):
    assert decide_reward(campaign(), referral, event, Tallies()) is reason


def test_active_days_and_brand_events():
    days = campaign(qualify={"active_days": 3})
    assert decide_reward(days, pending(), InviteeEvent("active_day", B, T, active_days=2), Tallies()) \
        is NoReward.TOO_FEW_DAYS
    assert isinstance(decide_reward(days, pending(), InviteeEvent("active_day", B, T, active_days=3), Tallies()), Reward)
    order = campaign(qualify={"event": "first_order"})
    assert isinstance(decide_reward(order, pending(), InviteeEvent("event", B, T, name="first_order"), Tallies()), Reward)
    assert decide_reward(order, pending(), InviteeEvent("event", B, T, name="second_order"), Tallies()) \
        is NoReward.NOT_QUALIFYING


def test_caps_per_inviter_per_day_per_campaign_and_total():
    c = campaign(caps={"per_inviter_per_day": 2, "per_inviter": 5, "total": 10})
    assert isinstance(decide_reward(c, pending(), PHONE, Tallies(1, 4, 9)), Reward)
    assert decide_reward(c, pending(), PHONE, Tallies(inviter_today=2)) is NoReward.CAP_DAY
    assert decide_reward(c, pending(), PHONE, Tallies(inviter_in_campaign=5)) is NoReward.CAP_INVITER
    assert decide_reward(c, pending(), PHONE, Tallies(campaign_total=10)) is NoReward.CAP_TOTAL


def test_a_reversal_compensates_never_below_zero_and_only_what_was_paid():
    c = campaign(qualify={"event": "first_order"}, reverse_on=["order_refunded"])
    refund = InviteeEvent("event", B, T + 86400, name="order_refunded")
    out = decide_reward(c, pending(state="rewarded"), refund, Tallies(inviter_balance=250))
    assert isinstance(out, Reversal) and out.entry.points == -100 and out.shortfall == 0
    assert out.entry.entry_id == entry_id("reversal", "c1", B) and out.entry.uid == A
    spent = decide_reward(c, pending(state="rewarded"), refund, Tallies(inviter_balance=30))
    assert isinstance(spent, Reversal) and spent.entry.points == -30 and spent.shortfall == 70
    assert decide_reward(c, pending(), refund, Tallies(inviter_balance=500)) is NoReward.NOTHING_TO_REVERSE
    assert decide_reward(c, pending(state="reversed"), refund, Tallies()) is NoReward.NOTHING_TO_REVERSE


def test_what_a_reversal_could_not_take_back_is_debt_that_later_rewards_repay_first():
    c = campaign(qualify={"event": "first_order"}, reverse_on=["order_refunded"])
    refund = InviteeEvent("event", B, T + 86400, name="order_refunded")
    spent = decide_reward(c, pending(state="rewarded"), refund, Tallies(inviter_balance=0))
    assert isinstance(spent, Reversal) and spent.entry.points == 0 and spent.debt_added == 100
    order = InviteeEvent("event", B, T + 60, name="first_order")
    partly = decide_reward(c, pending(), order, Tallies(inviter_debt=30))
    assert isinstance(partly, Reward) and partly.debt_repaid == 30 and partly.entry.points == 70
    wholly = decide_reward(c, pending(), order, Tallies(inviter_debt=250))
    assert isinstance(wholly, Reward) and wholly.debt_repaid == 100 and wholly.entry.points == 0
    clean = decide_reward(c, pending(), order, Tallies())
    assert isinstance(clean, Reward) and clean.debt_repaid == 0 and clean.entry.points == 100


def test_an_event_dated_before_the_referral_does_not_reward():
    early = InviteeEvent("phone_bound", B, T - 1)
    assert decide_reward(campaign(), pending(), early, Tallies()) is NoReward.BEFORE_REFERRAL
    assert isinstance(decide_reward(campaign(), pending(), InviteeEvent("phone_bound", B, T), Tallies()), Reward)


def test_a_paid_self_referral_found_by_a_merge_is_reversed_not_refused():
    c = campaign(reverse_on=["order_refunded"])
    paid_to_self = pending(inviter=B, state="rewarded")
    refund = InviteeEvent("event", B, T + 86400, name="order_refunded")
    out = decide_reward(c, paid_to_self, refund, Tallies(inviter_balance=500))
    assert isinstance(out, Reversal) and out.entry.points == -100 and out.entry.uid == B
    merged = reverse_referral(c, paid_to_self, "merge showed a self-referral", T + 5, Tallies(inviter_balance=40))
    assert isinstance(merged, Reversal) and merged.entry.points == -40 and merged.debt_added == 60


def test_a_self_referral_record_never_pays_and_the_daily_cap_counts_shanghai_days():
    assert decide_reward(campaign(), pending(inviter=B), PHONE, Tallies()) is NoReward.SELF_REFERRAL
    from wxloop.domain.rewards import reward_day

    assert reward_day(1_799_510_400 - 1) == "2027-01-09" and reward_day(1_799_510_400) == "2027-01-10"


def test_notify_data_is_held_to_wechat_subscribe_limits():
    with pytest.raises(ConfigError) as err:
        campaign(notify={"text": "t", "template_id": "x", "data": {"phrase1": "too long"}})
    assert err.value.path == "campaigns[0].notify.data.phrase1"
    with pytest.raises(ConfigError) as err:
        campaign(notify={"text": "t", "data": {"bad key": "x"}})
    assert err.value.path == "campaigns[0].notify.data.bad key"
