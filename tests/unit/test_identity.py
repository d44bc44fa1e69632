"""Identity merge rules (pure): who survives when a unionid links two persons, and what moves."""

import pytest

from wxloop.domain.identity import decide_link, plan_merge

OA, MP = "wx1234567890abcdef", "wxabcdef1234567890"


def test_given_a_new_unionid_when_linking_then_the_identitys_person_claims_it():
    d = decide_link("u-oa", None)
    assert (d.action, d.survivor, d.loser) == ("claim", "u-oa", None)


def test_given_the_unionid_already_on_this_person_when_linking_then_nothing_happens():
    assert decide_link("u-oa", "u-oa").action == "same"


def test_given_the_unionid_on_another_person_when_linking_then_the_unions_person_survives():
    d = decide_link("u-oa", "u-mp")
    assert (d.action, d.survivor, d.loser) == ("merge", "u-mp", "u-oa")


def test_an_identity_without_person_is_an_error():
    with pytest.raises(ValueError):
        decide_link("", "u-mp")


def test_given_two_persons_when_planning_then_the_losers_openids_move_and_its_identity_is_repointed_first():
    survivor = {"uid": "u-mp", "created_at": 100, "openids": {MP: "o-mp"}, "first_touch": {"channel": "mp"}}
    loser = {"uid": "u-oa", "created_at": 200, "openids": {OA: "o-oa", "wxother000000000a": "o-x"}, "points": 7}
    plan = plan_merge(survivor, loser, unionid="un-1", identity=(OA, "o-oa"))
    assert plan.survivor == "u-mp" and plan.loser == "u-oa" and plan.unionid == "un-1"
    assert plan.repoint[0] == (OA, "o-oa")
    assert set(plan.repoint) == {(OA, "o-oa"), ("wxother000000000a", "o-x")}
    assert dict(plan.openids) == {OA: "o-oa", "wxother000000000a": "o-x"}
    assert plan.first_touch is None  # the survivor was touched first
    assert plan.loser_points == 7  # reported, not moved


def test_given_the_loser_was_touched_first_then_its_first_touch_moves_to_the_survivor():
    survivor = {"uid": "u-mp", "created_at": 300, "openids": {MP: "o-mp"}, "first_touch": {"channel": "mp"}}
    loser = {"uid": "u-oa", "created_at": 200, "openids": {OA: "o-oa"}, "first_touch": {"channel": "oa", "scene": "s1"}}
    plan = plan_merge(survivor, loser, unionid="un-1", identity=(OA, "o-oa"))
    assert plan.first_touch == {"channel": "oa", "scene": "s1"}


def test_the_survivors_own_openid_for_an_app_is_never_overwritten():
    survivor = {"uid": "u-mp", "openids": {OA: "o-keep"}}
    loser = {"uid": "u-oa", "openids": {OA: "o-oa"}}
    plan = plan_merge(survivor, loser, unionid="un-1", identity=(OA, "o-oa"))
    assert dict(plan.openids) == {}
    assert plan.repoint == ((OA, "o-oa"),)  # the identity still resolves to the survivor


def test_a_loser_without_openids_map_still_repoints_the_triggering_identity():
    plan = plan_merge({"uid": "a"}, {"uid": "b"}, unionid="un", identity=(OA, "o1"))
    assert plan.repoint == ((OA, "o1"),) and dict(plan.openids) == {OA: "o1"}


def test_given_the_merge_already_happened_then_the_plan_is_empty():
    assert plan_merge({"uid": "a"}, {"uid": "b", "merged_into": "a"}, unionid="un", identity=(OA, "o1")) is None


def test_a_loser_merged_elsewhere_or_a_merged_survivor_is_a_conflict():
    with pytest.raises(ValueError):
        plan_merge({"uid": "a"}, {"uid": "b", "merged_into": "c"}, unionid="un", identity=(OA, "o1"))
    with pytest.raises(ValueError):
        plan_merge({"uid": "a", "merged_into": "c"}, {"uid": "b"}, unionid="un", identity=(OA, "o1"))
    with pytest.raises(ValueError):
        plan_merge({"uid": "a"}, {"uid": "a"}, unionid="un", identity=(OA, "o1"))
