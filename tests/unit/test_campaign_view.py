"""What the planner reads of a person item: only what the campaign's segment filters on, and the
reachability of the people in the segment from their identity and credit items."""

from __future__ import annotations

from wxloop.domain.campaigns import Planner, parse_campaign
from wxloop.domain.channel_pick import SkipReason
from wxloop.services.campaign_view import Views

OA, MP = "wx1234567890abcdef", "wxabcdef1234567890"
NOW = 1_799_532_000  # 2027-01-10 06:00 Asia/Shanghai


def campaign(**segment):
    return parse_campaign({
        "id": "c", "accounts": {"oa": OA, "mp": MP}, "segment": segment,
        "content": {"oa_cs": {"text": "hi"}, "mp_subscribe": {"template_id": "tpl", "data": {"thing1": "x"}}},
        "schedule": {"start": "2027-01-10T00:00:00", "end": "2027-01-17T00:00:00"}, "send_window": "10-21",
    }, "c")


PERSON = {"pk": "USER#u1", "sk": "PROFILE", "uid": "u1", "openids": {OA: "o-oa", MP: "o-mp"}, "points": 40,
          f"fol_{OA}": {"f": True, "at": NOW - 86400}, "oa_tags": [3], "active_at": NOW - 10 * 86400}


def test_a_segment_reads_only_the_attributes_it_filters_on():
    plain, by_points = Views(campaign()), Views(campaign(points={"min": 10}))
    assert "points" not in plain.person_attributes and "points" in by_points.person_attributes
    assert plain.filter_view(PERSON).points == 0 and by_points.filter_view(PERSON).points == 40
    assert f"fol_{OA}" in plain.person_attributes and plain.filter_view(PERSON).reach.follows_oa


def test_the_last_active_filter_reads_active_at_without_the_profile():
    views = Views(campaign(last_active_days={"min": 7, "max": 30}))
    view = views.filter_view({**PERSON, "eng": "{not json"})
    planner = Planner(views.campaign, NOW)
    assert planner.member(view) and view.profile is None, "the profile is not parsed for the filter"
    assert not planner.member(views.filter_view({**PERSON, "active_at": NOW - 3 * 86400}))


def test_reachability_comes_from_the_identities_and_a_channel_closed_after_its_window_stays_closed():
    views = Views(campaign())
    keys = views.reach_keys(PERSON)
    assert keys == [(f"ID#{OA}#o-oa", "ID"), (f"ID#{MP}#o-mp", "ID"), (f"ID#{MP}#o-mp", "SUB#tpl")]
    oa_id = {"win_msg_at": NOW - 3600, "win_msg_sent": 1, "closed": {"cs": {"code": 45015, "at": NOW - 60}}}
    credit = {"remaining": 2, "updated_at": NOW - 7200}
    view = views.full_view(PERSON, {keys[0]: oa_id, keys[2]: credit})
    assert view.reach.closed == frozenset({"oa_cs"}) and view.reach.subscribe_credits == {"tpl": 2}
    plan = Planner(views.campaign, NOW).plan_member(view)
    assert plan.channel == "mp_subscribe", "the closed CS channel falls back to the credit"
    reopened = {**oa_id, "win_msg_at": NOW - 30}  # the person wrote again after the 45015
    assert Planner(views.campaign, NOW).plan_member(
        views.full_view(PERSON, {keys[0]: reopened, keys[2]: credit})).channel == "oa_cs"
    unfollowed = views.full_view(PERSON, {keys[0]: {**reopened, "following": False}})
    assert Planner(views.campaign, NOW).plan_member(unfollowed).reason is SkipReason.NO_CREDIT
