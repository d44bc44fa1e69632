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
    assert plan.points == 7  # moved: added to the survivor, taken off the loser
    assert plan.loser_guard["points"] == 7  # the move holds only while the balance is the one read


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


# --- how two persons' values combine ---------------------------------------------------------------

from wxloop.domain.identity import combine_consent, combine_follow, combine_prefs, merge_event  # noqa: E402


def _plan(survivor: dict, loser: dict, **kw):
    return plan_merge({"uid": "s", **survivor}, {"uid": "l", **loser}, unionid="un", identity=(MP, "o-mp"), **kw)


def test_given_two_follow_observations_then_the_newer_one_wins():
    assert combine_follow({"f": False, "at": 5}, {"f": True, "at": 9}) == {"f": True, "at": 9}
    assert combine_follow({"f": True, "at": 9}, {"f": False, "at": 5}) == {"f": True, "at": 9}
    assert combine_follow(None, {"f": True, "at": 1}) == {"f": True, "at": 1}
    assert combine_follow({"f": True, "at": 1}, None) == {"f": True, "at": 1}


def test_given_a_loser_that_unfollowed_later_then_the_survivor_takes_the_unfollow():
    plan = _plan({"fol_oa": {"f": True, "at": 10}}, {"fol_oa": {"f": False, "at": 20}})
    assert plan.sets["fol_oa"] == {"f": False, "at": 20}
    assert plan.survivor_guard["fol_oa"] == {"f": True, "at": 10}


def test_preferences_are_the_union_with_the_survivors_order_first():
    merged = combine_prefs({"topics": ["b", "a"], "v": 5, "at": 1}, {"topics": ["a", "c"], "v": 7, "at": 0})
    assert merged == {"topics": ["b", "a", "c"], "v": 7, "at": 1}
    plan = _plan({"prefs": {"topics": ["b"], "v": 1, "at": 1}, "topics_seen": {"b"}},
                 {"prefs": {"topics": ["c"], "v": 2, "at": 2}, "topics_seen": {"c", "old"}})
    assert plan.sets["prefs"]["topics"] == ["b", "c"] and plan.topics_seen == {"c", "old"}


def test_consent_a_withdrawal_on_either_side_wins():
    granted, withdrawn = {"state": "granted", "at": 50}, {"state": "withdrawn", "at": 10}
    assert combine_consent(granted, withdrawn) is withdrawn
    assert combine_consent(withdrawn, granted) is withdrawn
    later = {"state": "withdrawn", "at": 60}
    assert combine_consent(withdrawn, later) is later
    assert combine_consent(granted, {"state": "granted", "at": 99}) is granted  # two grants: the survivor's
    assert combine_consent(None, granted) is granted


def test_consent_plan_names_only_purposes_that_change():
    plan = _plan({}, {}, survivor_consent={"marketing": {"state": "granted", "at": 5}, "service": {"state": "granted"}},
                 loser_consent={"marketing": {"state": "withdrawn", "at": 3}, "service": {"state": "granted"},
                                "analytics": {"state": "granted", "at": 1}})
    assert plan.consent == {"marketing": {"state": "withdrawn", "at": 3}, "analytics": {"state": "granted", "at": 1}}


def test_points_add_and_prompt_stamps_take_the_later_and_session_keys_fill_gaps():
    plan = _plan({"points": 3, "fpd_oa": 100, "mpsk_mp1": {"k": "a"}},
                 {"points": 4, "fpd_oa": 200, "fps_oa": 50, "mpsk_mp1": {"k": "b"}, "mpsk_mp2": {"k": "c"},
                  "rl_3": 99})
    assert plan.points == 4
    assert plan.sets == {"fpd_oa": 200, "fps_oa": 50, "mpsk_mp2": {"k": "c"}}  # rate slots never move


def test_the_phone_bound_later_wins_and_is_flagged_for_resealing():
    newer = _plan({"phone": {"c": b"s"}, "phone_masked": "138****0001", "phone_at": 10},
                  {"phone": {"c": b"l"}, "phone_masked": "139****0002", "phone_at": 20})
    assert newer.phone_from_loser and newer.sets["phone_masked"] == "139****0002"
    assert newer.survivor_guard["phone"] == {"c": b"s"} and newer.loser_guard["phone"] == {"c": b"l"}
    older = _plan({"phone": {"c": b"s"}, "phone_at": 30}, {"phone": {"c": b"l"}, "phone_at": 20})
    assert not older.phone_from_loser and "phone_masked" not in older.sets


def test_the_first_touch_compares_touch_times_then_creation_times():
    early = _plan({"created_at": 1, "first_touch": {"kind": "mp", "at": 900}},
                  {"created_at": 2, "first_touch": {"kind": "qr", "at": 100}})
    assert early.first_touch == {"kind": "qr", "at": 100} and early.survivor_guard["first_touch"]["at"] == 900
    assert _plan({"first_touch": {"kind": "mp", "at": 100}}, {"first_touch": {"kind": "qr", "at": 100}}).first_touch is None
    assert _plan({}, {"first_touch": {"kind": "qr"}}).first_touch == {"kind": "qr"}


def test_the_merge_event_names_the_survivor_and_the_merged_uid_and_is_no_user_action():
    ev = merge_event(_plan({}, {}), app_id=MP, platform="mp", now=7)
    assert ev["type"] == "person.merged" and ev["merged_from"] == "l" and ev["by_user"] is False
    from wxloop.analytics.schema import to_record

    record = to_record("s", ev)
    assert (record["person"], record["merged_from"], record["platform"], record["by_user"]) == ("s", "l", "mp", False)


def test_the_summary_lists_what_moved_without_pii():
    plan = _plan({}, {"points": 2, "phone": {"c": b"x"}, "phone_masked": "138****0001", "phone_at": 1})
    summary = plan.summary()
    assert summary["points"] == 2 and summary["phone"] is True and "138****0001" not in str(summary)


def test_a_merge_that_brings_an_oa_openid_mirrors_the_topics_onto_that_oa():
    from wxloop.domain.identity import tag_sync_jobs

    survivor = {"uid": "s", "openids": {MP: "o-mp"}, "prefs": {"topics": ["tea"], "v": 9}, "topics_seen": {"old"}}
    plan = plan_merge(survivor, {"uid": "l", "openids": {OA: "o-oa"}}, unionid="un", identity=(OA, "o-oa"))
    [job] = tag_sync_jobs(plan, survivor, frozenset({OA}))
    assert job["kind"] == "tag_topics" and (job["app_id"], job["openid"], job["uid"]) == (OA, "o-oa", "s")
    assert job["topics"] == ["tea"] and job["remove"] == ["old"] and job["version"] == 9
    assert tag_sync_jobs(plan, survivor, frozenset()) == []  # no OA among the openids
    assert tag_sync_jobs(plan, {**survivor, "prefs": {"topics": []}}, frozenset({OA})) == []
    same = plan_merge({**survivor, "openids": {OA: "o-oa"}}, {"uid": "l"}, unionid="un", identity=(MP, "o2"))
    assert tag_sync_jobs(same, {**survivor, "openids": {OA: "o-oa"}}, frozenset({OA})) == []  # nothing changed
    assert merge_event(plan, app_id=OA, platform="oa", now=1, jobs=[job])["jobs"] == [job]
