"""Consent rules (pure): states, newer wins, a withdrawal wins a merge and a tie, what each purpose allows."""

from __future__ import annotations

import pytest

from wxloop.domain import consent
from wxloop.domain.consent import Consent


def _person(**states) -> dict:
    return {consent.attribute(p): {"g": g, "v": "v1", "at": at, "src": "mp_api"} for p, (g, at) in states.items()}


def test_nothing_recorded_is_unknown_and_unknown_allows_nothing():
    assert consent.state({}, "analytics") == "unknown"
    assert not consent.allows(None, "phone")
    assert consent.ledger({})["marketing"] == {"state": "unknown", "policy_version": None, "at": None, "source": None}


def test_newer_wins_and_a_withdrawal_wins_a_tie():
    stored = Consent("marketing", True, "v1", 100, "mp_api").to_item()
    assert consent.newer(stored, Consent("marketing", False, "v1", 101, "oa_keyword"))
    assert not consent.newer(stored, Consent("marketing", False, "v1", 99, "oa_keyword"))
    assert consent.newer(stored, Consent("marketing", False, "v1", 100, "oa_keyword"))
    assert not consent.newer(Consent("marketing", False, "v1", 100, "x").to_item(),
                             Consent("marketing", True, "v1", 100, "mp_api"))


def test_a_merge_keeps_a_withdrawal_from_either_side_even_an_older_one():
    survivor, loser = _person(marketing=(True, 200), analytics=(True, 50)), _person(marketing=(False, 100))
    merged = consent.merged_consents(survivor, loser)
    assert merged[consent.attribute("marketing")]["g"] is False
    assert merged[consent.attribute("analytics")]["g"] is True
    assert consent.attribute("phone") not in merged


def test_events_beyond_the_strictly_necessary_need_analytics():
    names = ["view", "order_paid", "tap"]
    assert consent.keep_events({}, names) == [False, True, False]
    assert consent.keep_events(_person(analytics=(True, 1)), names) == [True, True, True]
    assert consent.keep_events(_person(analytics=(False, 2)), names) == [False, True, False]


def test_preference_segments_need_personalisation_and_campaigns_read_marketing():
    person = {"prefs": {"topics": ["coffee"]}, **_person(personalisation=(True, 1), marketing=(False, 1))}
    assert consent.segment_prefs(person) == {"topics": ("coffee",)}
    assert consent.segment_prefs({**person, **_person(personalisation=(False, 2))}) == {}
    assert consent.campaign_consent(person) == "withdrawn"


def test_unknown_purposes_are_refused():
    with pytest.raises(ValueError):
        consent.check_purpose("everything")


def test_a_rule_may_opt_out_of_marketing_and_nothing_else():
    from wxloop.domain.rules.errors import RuleError
    from wxloop.domain.rules.parse import parse_document

    doc = {"rules": [{"id": "td", "keywords": ["TD"], "action": "opt_out_marketing", "reply": {"text": "ok"}}]}
    assert parse_document(doc, app_id=None).rules[0].action == "opt_out_marketing"
    doc["rules"][0]["action"] = "erase_everyone"
    with pytest.raises(RuleError, match=r"rules\[0\]\.action"):
        parse_document(doc, app_id=None)
