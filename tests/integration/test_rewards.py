"""Invites → referrals → rewards exactly once, against moto: attribution rules, caps by conditional counters,
reversals and debt, merges, and a seeded concurrent run after which every ledger sums to its balance."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import ACCOUNTS, MP_APP, OA_APP

pytest_plugins = ["tests.integration.conftest_wechat"]  # fake_wechat

KEYS = ACCOUNTS["session_keys"]
REWARDS_DOC = {"version": 1, "campaigns": [
    {"id": "welcome-phone", "qualify": "phone_bound", "points": 100,
     "caps": {"per_inviter_per_day": 3, "per_inviter": 5},
     "notify": {"text": "Your friend joined: 100 points", "template_id": "tmpl-reward", "data": {"thing1": "Joined"}}},
    {"id": "first-order", "qualify": {"event": "first_order"}, "points": 500, "reverse_on": ["order_refunded"]},
    {"id": "loyal", "qualify": {"active_days": 3}, "points": 50},
]}


@pytest.fixture
def rewards(aws):
    from wxloop.adapters.dynamo import rewards as store
    from wxloop.services import rewards

    store.put_reward_config(REWARDS_DOC, version="1", now=int(time.time()))
    rewards.reset()
    yield rewards
    rewards.reset()


def person(openid: str, *, app: str = MP_APP, at: int | None = None) -> str:
    from wxloop.adapters import mp_store

    at = int(time.time()) if at is None else at
    return mp_store.create_mp_identity(app, openid, now=at, event={"id": f"e-{openid}", "type": "mp.first_launch",
                                                                   "app": app, "at": at},
                                       first_touch={"channel": "mp", "app_id": app, "at": at})


def ref_of(uid: str, campaign: str = "welcome-phone", at: int | None = None) -> str:
    from wxloop.domain.invites import InviteRef, sign_ref

    return sign_ref(InviteRef(uid, campaign, int(time.time()) if at is None else at), KEYS)


def ledger_sum(aws, uid: str) -> int:
    return sum(int(i["points"]) for i in aws.items() if i["pk"] == f"USER#{uid}" and i["sk"].startswith("LEDGER#"))


def balance(uid: str) -> int:
    from wxloop.adapters.dynamo import rewards as store

    return store.person_points(uid)[0]


def phone(uid: str):
    from wxloop.domain.rewards import InviteeEvent

    return InviteeEvent("phone_bound", uid, int(time.time()))


def test_a_signed_reference_makes_a_pending_referral_and_a_bound_phone_pays_once(aws, rewards):
    a = person("oA", at=int(time.time()) - 5000)
    b = person("oB")
    assert rewards.attribute(MP_APP, b, ref=ref_of(a)) == "pending"
    assert rewards.attribute(MP_APP, b, ref=ref_of(a)) == "already_referred"  # first touch wins
    assert rewards.qualify(phone(b)) == "rewarded"
    assert rewards.qualify(phone(b)) == "already_rewarded"
    assert balance(a) == ledger_sum(aws, a) == 100


def test_self_referral_tampered_expired_and_unknown_references_are_refused(aws, rewards):
    a = person("oA2", at=int(time.time()) - 5000)
    assert rewards.attribute(MP_APP, a, ref=ref_of(a)) == "self_referral"
    b = person("oB2")
    good = ref_of(a)
    tampered = good.replace(a, person("oC2"))
    assert rewards.attribute(MP_APP, b, ref=tampered) == "ref_bad_signature"
    assert rewards.attribute(MP_APP, b, ref=ref_of(a, at=int(time.time()) - 31 * 86400)) == "ref_expired"
    assert rewards.attribute(MP_APP, b, ref="1.x.y.!.w") == "ref_malformed"
    assert rewards.attribute(MP_APP, b, code="zzzzzzzzzz") == "unknown_code"
    assert rewards.attribute(MP_APP, b, ref=ref_of(a, campaign="nope")) == "unknown_campaign"
    assert not [i for i in aws.items() if i["pk"].startswith("REF#")]


def test_someone_seen_before_is_not_new_and_a_code_works_like_a_reference(aws, rewards):
    a = person("oA3", at=int(time.time()) - 5000)
    old = person("oOld", at=int(time.time()) - 86400)
    code = rewards.invite_for(MP_APP, a)["code"]
    assert rewards.attribute(MP_APP, old, code=code) == "not_new"
    fresh = person("oFresh")
    assert rewards.attribute(MP_APP, fresh, code=code) == "pending"


def test_fifty_concurrent_qualifying_events_for_one_invitee_pay_exactly_once(aws, rewards):
    a = person("oA4", at=int(time.time()) - 5000)
    b = person("oB4")
    assert rewards.attribute(MP_APP, b, ref=ref_of(a)) == "pending"
    barrier = threading.Barrier(50)

    def go(_):
        barrier.wait()
        return rewards.qualify(phone(b))

    with ThreadPoolExecutor(50) as pool:
        outcomes = list(pool.map(go, range(50)))
    assert outcomes.count("rewarded") == 1, outcomes
    assert set(outcomes) <= {"rewarded", "already_rewarded", "repeat"}
    assert balance(a) == ledger_sum(aws, a) == 100
    assert len([i for i in aws.items() if i["sk"].startswith("LEDGER#")]) == 1


def test_caps_per_inviter_per_day_and_in_the_campaign_hold_under_concurrency(aws, rewards):
    from wxloop.adapters.dynamo import rewards as store

    a = person("oA5", at=int(time.time()) - 5000)
    invitees = [person(f"oI5-{i}") for i in range(8)]
    for b in invitees:
        assert rewards.attribute(MP_APP, b, ref=ref_of(a)) == "pending"
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda b: rewards.qualify(phone(b)), invitees))
    assert outcomes.count("rewarded") == 3, outcomes  # per_inviter_per_day: 3
    assert set(outcomes) == {"rewarded", "cap_per_inviter_per_day"}
    assert balance(a) == ledger_sum(aws, a) == 300
    assert store.counter("welcome-phone", f"INV#{a}") == 3


def test_a_refund_writes_a_compensating_entry_and_a_spent_balance_becomes_debt(aws, rewards):
    from wxloop.adapters.dynamo import rewards as store
    from wxloop.domain.rewards import InviteeEvent, LedgerEntry

    a = person("oA6", at=int(time.time()) - 5000)
    b = person("oB6")
    assert rewards.attribute(MP_APP, b, ref=ref_of(a, "first-order")) == "pending"
    now = int(time.time())
    assert rewards.qualify(InviteeEvent("event", b, now, name="first_order")) == "rewarded"
    assert store.apply_debit(LedgerEntry("debit#t#1", a, -400, "spent", "", "", now)).status == "done"
    assert rewards.qualify(InviteeEvent("event", b, now, name="order_refunded")) == "reversed"
    assert rewards.qualify(InviteeEvent("event", b, now, name="order_refunded")) == "nothing_to_reverse"
    assert store.person_points(a) == (0, 400)
    assert ledger_sum(aws, a) == 0
    # the next reward repays the debt first
    c = person("oC6")
    assert rewards.attribute(MP_APP, c, ref=ref_of(a, "first-order")) == "pending"
    assert rewards.qualify(InviteeEvent("event", c, int(time.time()) + 1, name="first_order")) == "rewarded"
    assert store.person_points(a) == (100, 0) and ledger_sum(aws, a) == 100


def test_active_days_count_distinct_days_and_pay_at_the_threshold(aws, rewards):
    a = person("oA7", at=int(time.time()) - 5000)
    b = person("oB7")
    assert rewards.attribute(MP_APP, b, ref=ref_of(a, "loyal")) == "pending"
    day = 86400
    now = int(time.time())
    assert rewards.active_day(b, now) == "too_few_days"
    assert rewards.active_day(b, now + 60) == "too_few_days"  # the same day again
    assert rewards.active_day(b, now + day) == "too_few_days"
    assert rewards.active_day(b, now + 2 * day) == "rewarded"
    assert rewards.active_day(b, now + 3 * day) == "no_referral"
    assert balance(a) == 50


def test_unfollow_refollow_and_a_second_login_cannot_farm(aws, rewards):
    a = person("oA8", at=int(time.time()) - 5000)
    b = person("oB8")
    assert rewards.attribute(MP_APP, b, ref=ref_of(a)) == "pending"
    assert rewards.qualify(phone(b)) == "rewarded"
    # a later arrival of the same person (re-follow, another login) through another invite
    c = person("oC8", at=int(time.time()) - 5000)
    assert rewards.attribute(MP_APP, b, ref=ref_of(c)) == "already_referred"
    assert rewards.qualify(phone(b)) == "already_rewarded"
    assert balance(c) == 0


def test_oa_first_then_mp_later_the_merge_voids_a_referral_of_someone_who_existed(aws, rewards):
    a = person("oA9", at=int(time.time()) - 5000)
    oa_side = person("oOA9", app=OA_APP, at=int(time.time()) - 3600)
    mp_side = person("oMP9")
    assert rewards.attribute(MP_APP, mp_side, ref=ref_of(a)) == "pending"
    from wxloop.adapters.dynamo import people

    people.link_unionid(OA_APP, "oOA9", "u9", int(time.time()))
    survivor = people.link_unionid(MP_APP, "oMP9", "u9", int(time.time()))
    assert survivor == oa_side
    done = rewards.on_merge(survivor, mp_side)
    assert done["voided"] == [mp_side]
    from wxloop.adapters.dynamo import referrals

    assert referrals.get_referral(mp_side)["reason"] == "existed_before"
    assert rewards.qualify(phone(survivor)) == "no_referral"


def test_a_merge_that_shows_a_paid_self_referral_reverses_it(aws, rewards):
    a_mp = person("oSelfA", at=int(time.time()) - 5000)
    b = person("oSelfB")
    assert rewards.attribute(MP_APP, b, ref=ref_of(a_mp)) == "pending"
    assert rewards.qualify(phone(b)) == "rewarded"
    done = rewards.on_merge(a_mp, b)  # b turns out to be a_mp
    assert done["reversed"] == ["reversed"]
    assert balance(a_mp) == ledger_sum(aws, a_mp) == 0


def test_seeded_concurrent_run_keeps_every_ledger_equal_to_its_balance(aws, rewards):
    """Rewards, reversals and debits racing from threads: no balance below zero, every ledger sums to it."""
    from wxloop.adapters.dynamo import rewards as store
    from wxloop.domain.rewards import InviteeEvent, LedgerEntry

    rng = random.Random(11)
    inviters = [person(f"oR-inv{i}", at=int(time.time()) - 5000) for i in range(4)]
    invitees = []
    for i in range(40):
        b = person(f"oR-b{i}")
        assert rewards.attribute(MP_APP, b, ref=ref_of(rng.choice(inviters), "first-order")) == "pending"
        invitees.append(b)
    now = int(time.time())
    ops = []
    for n in range(1200):
        kind = rng.random()
        if kind < 0.45:
            ops.append(("event", rng.choice(invitees), "first_order"))
        elif kind < 0.7:
            ops.append(("event", rng.choice(invitees), "order_refunded"))
        else:
            ops.append(("debit", rng.choice(inviters), rng.randint(1, 700), f"k{n % 300}"))

    def run(op):
        if op[0] == "event":
            return rewards.qualify(InviteeEvent("event", op[1], now, name=op[2]))
        return store.apply_debit(LedgerEntry(f"debit#t#{op[1]}#{op[3]}", op[1], -op[2], "spent", "", "", now)).status

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(run, ops))
    assert "contended" not in outcomes
    assert outcomes.count("rewarded") >= 1 and outcomes.count("reversed") >= 1 and outcomes.count("done") >= 1
    for uid in inviters:
        points, debt = store.person_points(uid)
        assert points >= 0 and debt >= 0
        assert points == ledger_sum(aws, uid), uid


def test_a_reward_queues_one_notice_and_the_worker_tells_the_inviter_by_what_is_allowed(aws, rewards, fake_wechat):
    from wxloop.services import jobs

    a = person("oTellA", at=int(time.time()) - 5000)
    b = person("oTellB")
    assert rewards.attribute(MP_APP, b, ref=ref_of(a)) == "pending"
    assert rewards.qualify(phone(b)) == "rewarded"
    notices = [j for j in aws.jobs() if j["kind"] == "reward_notice"]
    assert len(notices) == 1 and notices[0]["uid"] == a
    aws.run_stream()  # a replay of the stream queues nothing more
    assert not [j for j in aws.jobs() if j["kind"] == "reward_notice"]
    outcome = jobs.run(notices[0])
    assert outcome.status == "ok" and "told:subscribe" in outcome.detail  # no CS window: the subscribe template
    sent = fake_wechat.calls("/cgi-bin/message/subscribe/send")
    assert len(sent) == 1 and sent[0]["json"]["template_id"] == "tmpl-reward"
