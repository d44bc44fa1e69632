"""Attribution: first touch wins, only newcomers count, no self-referral, merges void with a reason."""

from wxloop.domain.attribution import (
    NEW_GRACE,
    PersonFacts,
    Referral,
    RefusalReason,
    Refused,
    Touch,
    decide_referral,
    first_touch,
    referral_after_merge,
)

T = 1_790_000_000
OA, MP, MP2 = "wx1234567890abcdef", "wxabcdef1234567890", "wxabcdef1234567891"
LINKED = frozenset({OA, MP, MP2})
INVITER = PersonFacts("a" * 32, unionid="union-a", openids={MP: "o-a-mp"}, first_seen={MP: T - 10 * 86400})
TOUCH = Touch("invite", MP, T, scene="1007", campaign="spring")


def newcomer(**kw):
    return PersonFacts("b" * 32, openids={MP: "o-b-mp"}, first_seen={MP: T}, **kw)


def test_first_touch_wins_and_a_tie_keeps_the_one_recorded():
    poster = Touch("store-poster", OA, T - 100)
    assert first_touch(None, TOUCH) is TOUCH
    assert first_touch(poster, TOUCH) is poster
    assert first_touch(TOUCH, poster) is poster  # a merge brings in an earlier touch
    same_time = Touch("xhs", MP, T)
    assert first_touch(TOUCH, same_time) is TOUCH


def test_a_newcomer_arriving_by_invite_gets_a_pending_referral():
    decision = decide_referral(newcomer(), INVITER, TOUCH, LINKED, None)
    assert decision == Referral("b" * 32, "a" * 32, "spring", "invite", T, "pending")


def test_self_referral_is_refused_by_uid_openid_or_unionid():
    by_uid = PersonFacts(INVITER.uid, first_seen={MP: T})
    by_openid = PersonFacts("c" * 32, openids={MP: "o-a-mp"}, first_seen={MP: T})
    by_union = newcomer(unionid="union-a")
    for invitee in (by_uid, by_openid, by_union):
        assert decide_referral(invitee, INVITER, TOUCH, LINKED, None) == Refused(RefusalReason.SELF_REFERRAL)


def test_a_person_any_linked_app_saw_before_is_not_new():
    old_on_oa = PersonFacts("b" * 32, first_seen={MP: T, OA: T - 3 * 86400})
    assert decide_referral(old_on_oa, INVITER, TOUCH, LINKED, None) == Refused(RefusalReason.NOT_NEW)
    just_written = PersonFacts("b" * 32, first_seen={MP: T - NEW_GRACE})
    assert isinstance(decide_referral(just_written, INVITER, TOUCH, LINKED, None), Referral)
    seen_on_unlinked_app = PersonFacts("b" * 32, first_seen={MP: T, "wxffffffffffffffff": T - 86400})
    assert isinstance(decide_referral(seen_on_unlinked_app, INVITER, TOUCH, LINKED, None), Referral)


def test_an_existing_referral_stands_first_touch_wins():
    earlier = Referral("b" * 32, "d" * 32, "spring", "invite", T - 5)
    assert decide_referral(newcomer(), INVITER, TOUCH, LINKED, earlier) == Refused(RefusalReason.ALREADY_REFERRED)


def test_oa_first_then_mp_merge_keeps_a_referral_when_the_invitee_was_new_everywhere():
    pending = Referral("b" * 32, INVITER.uid, "spring", "invite", T)
    merged = PersonFacts("s" * 32, unionid="union-b", openids={MP: "o-b-mp", OA: "o-b-oa"},
                         first_seen={MP: T, OA: T + 3600})
    out = referral_after_merge(None, pending, merged, "b" * 32, LINKED)
    assert out.keep is not None and out.keep.invitee == "s" * 32 and out.keep.state == "pending"
    assert out.voided == ()


def test_a_merge_showing_an_earlier_contact_voids_the_pending_referral():
    pending = Referral("b" * 32, INVITER.uid, "spring", "invite", T)
    merged = PersonFacts("s" * 32, openids={MP: "o-b-mp", OA: "o-b-oa"}, first_seen={MP: T, OA: T - 86400})
    out = referral_after_merge(None, pending, merged, "b" * 32, LINKED)
    assert out.keep is None
    assert [(r.state, r.reason) for r in out.voided] == [("voided", "existed_before")]


def test_a_merge_into_the_inviter_voids_as_self_referral():
    pending = Referral("b" * 32, INVITER.uid, "spring", "invite", T)
    merged = PersonFacts(INVITER.uid, first_seen={MP: T})
    out = referral_after_merge(None, pending, merged, "b" * 32, LINKED)
    assert out.keep is None and out.voided[0].reason == "merged_with_inviter"


def test_two_referrals_meet_the_earlier_wins_and_a_paid_one_is_never_voided():
    merged = PersonFacts("s" * 32, first_seen={MP: T, OA: T})
    early = Referral("s" * 32, "d" * 32, "spring", "invite", T)
    late = Referral("b" * 32, "e" * 32, "spring", "invite", T + 50)
    out = referral_after_merge(early, late, merged, "b" * 32, LINKED)
    assert out.keep == early and [r.reason for r in out.voided] == ["later_touch"]
    paid = Referral("b" * 32, "e" * 32, "spring", "invite", T + 50, state="rewarded")
    out = referral_after_merge(early, paid, merged, "b" * 32, LINKED)
    assert out.keep is not None and out.keep.state == "rewarded" and out.keep.inviter == "e" * 32
    assert [r.reason for r in out.voided] == ["later_touch"] and out.rewarded_twice == ()
    both = referral_after_merge(Referral("s" * 32, "d" * 32, "spring", "invite", T, state="rewarded"),
                                paid, merged, "b" * 32, LINKED)
    assert both.keep is not None and both.keep.inviter == "d" * 32 and both.rewarded_twice == (paid,)


def test_no_referral_on_either_side_keeps_nothing():
    out = referral_after_merge(None, None, PersonFacts("s" * 32), "b" * 32, LINKED)
    assert out.keep is None and out.voided == ()


def test_refollowing_or_a_second_mp_cannot_farm_a_new_referral():
    refollower = PersonFacts("b" * 32, openids={OA: "o-b-oa"}, first_seen={OA: T - 30 * 86400})
    refollow = Touch("invite", OA, T, campaign="spring")
    assert decide_referral(refollower, INVITER, refollow, LINKED, None) == Refused(RefusalReason.NOT_NEW)
    second_mp = PersonFacts("b" * 32, openids={MP: "o-b-mp", MP2: "o-b-mp2"}, first_seen={MP: T - 86400, MP2: T})
    via_mp2 = Touch("invite", MP2, T, campaign="spring")
    assert decide_referral(second_mp, INVITER, via_mp2, LINKED, None) == Refused(RefusalReason.NOT_NEW)


def test_an_openid_on_a_linked_app_without_a_first_contact_time_is_not_new():
    legacy = PersonFacts("b" * 32, openids={MP: "o-b-mp", OA: "o-b-oa"}, first_seen={MP: T})
    assert decide_referral(legacy, INVITER, TOUCH, LINKED, None) == Refused(RefusalReason.NOT_NEW)


def test_a_paid_self_referral_through_a_second_identity_is_handed_back_for_reversal_after_the_merge():
    """The inviter opens their own link in the MP as a second, not yet linked identity and gets paid; the
    merge that shows it must not keep the referral (inviter == invitee) but return it to be reversed."""
    inviter = PersonFacts("u1" * 16, None, {OA: "o-a-oa"}, {OA: T - 100 * 86400})
    second = PersonFacts("u2" * 16, None, {MP: "o-a-mp"}, {MP: T})
    ref = decide_referral(second, inviter, TOUCH, LINKED, None)
    assert isinstance(ref, Referral)  # nothing ties the two identities yet
    paid = Referral(ref.invitee, ref.inviter, ref.campaign, ref.channel, ref.created_at, state="rewarded")
    merged = PersonFacts(inviter.uid, "union-x", {OA: "o-a-oa", MP: "o-a-mp"}, {OA: T - 100 * 86400, MP: T})
    out = referral_after_merge(None, paid, merged, second.uid, LINKED)
    assert out.keep is None and out.voided == ()
    assert [(r.invitee, r.inviter, r.state) for r in out.self_referred] == [(inviter.uid, inviter.uid, "rewarded")]
    other_way = PersonFacts(second.uid, "union-x", merged.openids, merged.first_seen)
    out = referral_after_merge(paid, None, other_way, inviter.uid, LINKED)
    assert out.keep is None and len(out.self_referred) == 1
