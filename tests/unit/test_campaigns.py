"""Campaigns: validation with file:line errors, segment filters, and the per-person plan."""

from pathlib import Path

import pytest

from wxloop.campaignfiles import load_campaigns
from wxloop.domain.campaigns import PersonView, SendPlan, matches, parse_campaign_doc, plan_person, send_key
from wxloop.domain.channel_pick import Reachability, Skip, SkipReason
from wxloop.domain.config_doc import ConfigError, shanghai_hour
from wxloop.domain.engagement import JourneyEvent, replay
from wxloop.rulesfile import FileError

ROOT = Path(__file__).resolve().parents[2]
OA, MP = "wx1234567890abcdef", "wxabcdef1234567890"
MIDNIGHT_SH = 1_799_510_400  # 2027-01-10 00:00 Asia/Shanghai
DAY = 86400


def base(**overrides):
    body = {
        "id": "c1", "accounts": {"oa": OA, "mp": MP}, "segment": {},
        "content": {"oa_cs": {"text": "hi"}, "mp_subscribe": {"template_id": "tmpl", "data": {"thing1": "x"}}},
        "schedule": {"start": "2027-01-10T00:00:00", "end": "2027-01-20T00:00:00"},
        "send_window": "10-21", "quiet_hours": "22-08",
    }
    body.update(overrides)
    return body


def campaign(**overrides):
    return parse_campaign_doc({"campaigns": [base(**overrides)]})[0]


def person(**kw):
    reach = kw.pop("reach", {})
    return PersonView("u" * 32, reach=Reachability(**reach), **kw)


def test_the_example_file_loads():
    campaigns, _ = load_campaigns(ROOT / "rules" / "campaigns.example.yaml")
    assert [c.id for c in campaigns] == ["dormant-back", "points-expiry"]
    dormant, expiry = campaigns
    assert dormant.segment.active_days == (7, 30) and dormant.recurring.startswith("cron(")
    assert expiry.offer.service_notice and expiry.offer.oa_service_account


@pytest.mark.parametrize("overrides, path, words", [
    ({"purpose": "marketing", "accounts": {"oa": OA, "oa_type": "service"},
      "content": {"oa_template": {"template_id": "t", "data": {"k": "v"}}}}, "campaigns[0].content.oa_template",
     "service notices only"),
    ({"purpose": "service", "accounts": {"oa": OA}, "content": {"oa_template": {"template_id": "t", "data": {"k": "v"}}}},
     "campaigns[0].content.oa_template", "service account"),
    ({"accounts": {"oa": OA}}, "campaigns[0].content.mp_subscribe", "accounts.mp"),
    ({"content": {}}, "campaigns[0].content", "at least one"),
    ({"content": {"oa_cs": {"text": "a", "news": {"title": "t", "description": "d"}}}}, "campaigns[0].content.oa_cs",
     "exactly one"),
    ({"content": {"mp_subscribe": {"template_id": "t", "data": {"thing1": "x" * 21}}}},
     "campaigns[0].content.mp_subscribe.data.thing1", "longer than 20"),
    ({"send_window": "22-23"}, "campaigns[0].send_window", "quiet hours"),
    ({"send_window": "9am-5pm"}, "campaigns[0].send_window", "whole hours"),
    ({"schedule": {"start": "2027-01-10T00:00:00", "end": "2027-01-01T00:00:00"}}, "campaigns[0].schedule.end",
     "after start"),
    ({"schedule": {"start": "2027-01-10", "end": "2027-01-20", "recurring": "every monday"}},
     "campaigns[0].schedule.recurring", "must match"),
    ({"segment": {"points": {"min": 10, "max": 1}}}, "campaigns[0].segment.points", "min is greater"),
    ({"segment": {"marketing_consent": "any"}}, "campaigns[0].segment.marketing_consent", "one of"),
    ({"segment": {"oa_tags": {"any": ["vip"]}}}, "campaigns[0].segment.oa_tags.any[0]", "integer"),
    ({"segment": {"dormant": True}}, "campaigns[0].segment.dormant", "unknown field"),
    ({"caps": {"per_day": 0}}, "campaigns[0].caps.per_day", "between"),
])
def test_invalid_campaigns_name_the_field(overrides, path, words):
    with pytest.raises(ConfigError) as err:
        campaign(**overrides)
    assert err.value.path == path and words in err.value.message


def test_file_errors_give_the_line(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(f"campaigns:\n  - id: c1\n    accounts: {{oa: {OA}}}\n    segment:\n      points: {{min: -1}}\n"
                 "    content: {oa_cs: {text: hi}}\n    schedule: {start: 2027-01-10, end: 2027-01-11}\n")
    with pytest.raises(FileError) as err:
        load_campaigns(f)
    assert err.value.line == 5 and "campaigns[0].segment.points.min" in str(err.value)


NOW = MIDNIGHT_SH + 7 * 3600


def test_opted_out_people_are_never_selected_whatever_the_segment():
    assert matches(campaign().segment, person(), NOW)
    assert not matches(campaign().segment, person(reach={"consent": "withdrawn"}), NOW)
    strict = campaign(segment={"marketing_consent": "granted"}).segment
    assert not matches(strict, person(), NOW) and matches(strict, person(reach={"consent": "granted"}), NOW)


def test_segment_filters():
    seg = campaign(segment={
        "oa_tags": {"any": [1, 2], "none": [9]}, "mp_preferences": {"topic": ["shoes", "bags"]}, "follows_oa": True,
        "uses_mp": MP, "first_touch_channel": ["xhs-spring"], "points": {"min": 100, "max": 1000},
    }).segment
    good = dict(oa_tags=frozenset({2}), mp_prefs={"topic": ("bags", "hats")}, mp_apps=frozenset({MP}),
                first_touch_channel="xhs-spring", points=500, reach={"follows_oa": True})
    assert matches(seg, person(**good), NOW)
    for change in [{"oa_tags": frozenset({3})}, {"oa_tags": frozenset({2, 9})}, {"mp_prefs": {"topic": "hats"}},
                   {"mp_prefs": {}}, {"mp_apps": frozenset()}, {"first_touch_channel": "organic"},
                   {"points": 99}, {"points": 1001}, {"reach": {"follows_oa": False}}]:
        assert not matches(seg, person(**{**good, **change}), NOW), change
    assert matches(seg, person(**{**good, "mp_prefs": {"topic": "shoes"}}), NOW)


def test_dormant_between_7_and_30_days_and_engagement_score():
    seg = campaign(segment={"last_active_days": {"min": 7, "max": 30}}).segment
    def active(days_ago):
        return replay([JourneyEvent("message", "oa", NOW - days_ago * DAY)])
    assert matches(seg, person(profile=active(10)), NOW)
    assert not matches(seg, person(profile=active(3)), NOW)
    assert not matches(seg, person(profile=active(40)), NOW)
    assert not matches(seg, person(), NOW)  # never active is not "dormant"
    engaged = campaign(segment={"engagement_score": {"min": 2.5}}).segment
    assert matches(engaged, person(profile=active(0)), NOW) and not matches(engaged, person(profile=active(30)), NOW)


def test_plan_sends_at_the_persons_hour_through_the_allowed_channel():
    evenings = replay([JourneyEvent("session", "mp", MIDNIGHT_SH - d * DAY + 20 * 3600) for d in range(1, 6)])
    p = person(profile=evenings, reach={"subscribe_credits": {"tmpl": 1}})
    plan = plan_person(campaign(), p, NOW)
    assert plan == SendPlan("c1", "u" * 32, "mp_subscribe", MP, MIDNIGHT_SH + 20 * 3600, 20)
    follower = person(reach={"follows_oa": True, "oa_identity": {"win_msg_at": NOW - 3600, "win_msg_sent": 0}})
    plan = plan_person(campaign(), follower, NOW)
    assert isinstance(plan, SendPlan) and plan.channel == "oa_cs" and plan.app_id == OA
    assert plan.send_at == MIDNIGHT_SH + 10 * 3600 and shanghai_hour(plan.send_at) == 10  # window start


def test_plan_skips_with_reasons():
    assert plan_person(campaign(), person(reach={"consent": "withdrawn"}), NOW) == Skip(SkipReason.NOT_IN_SEGMENT)
    out = plan_person(campaign(), person(), NOW)
    assert isinstance(out, Skip) and out.reason is SkipReason.NO_CREDIT
    late = MIDNIGHT_SH + 10 * DAY + 22 * 3600  # after the schedule's end
    assert plan_person(campaign(), person(reach={"subscribe_credits": {"tmpl": 1}}), late) == Skip(SkipReason.NO_SEND_TIME)


def test_mass_send_takes_followers_and_the_others_fall_back_to_the_picker():
    c = campaign(content={"oa_mass": {"media_id": "m1"}, "mp_subscribe": {"template_id": "tmpl", "data": {"thing1": "x"}}})
    evenings = replay([JourneyEvent("message", "oa", MIDNIGHT_SH - DAY + 20 * 3600)])
    plan = plan_person(c, person(profile=evenings, reach={"follows_oa": True}), NOW)
    assert isinstance(plan, SendPlan) and plan.channel == "oa_mass" and plan.app_id == OA
    assert plan.send_at == MIDNIGHT_SH + 10 * 3600  # one send to the tag: the window's start, not their hour
    plan = plan_person(c, person(reach={"subscribe_credits": {"tmpl": 1}}), NOW)
    assert isinstance(plan, SendPlan) and plan.channel == "mp_subscribe"


def test_send_keys_make_a_rerun_idempotent():
    assert send_key("c1", "r1", "u") == send_key("c1", "r1", "u") != send_key("c1", "r2", "u")


def test_mass_send_respects_the_frequency_caps():
    c = campaign(content={"oa_mass": {"text": "hello"}}, accounts={"oa": OA}, caps={"per_week": 1})
    assert isinstance(plan_person(c, person(reach={"follows_oa": True}), NOW), SendPlan)
    pushed = person(reach={"follows_oa": True, "recent_pushes": (NOW - 2 * DAY,)})
    assert plan_person(c, pushed, NOW) == Skip(SkipReason.CAP_PER_WEEK)
