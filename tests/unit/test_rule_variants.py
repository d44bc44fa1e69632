"""A/B rule replies: a rule may answer with weighted variants; each person always gets the same one."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from wxloop.domain.rules import RuleError, RuleSet, Trigger

NOW = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)


def doc(variants, **rule) -> dict:
    return {"version": "ab1", "rules": [{"id": "promo", "keywords": ["优惠"], "variants": variants, **rule},
                                        {"id": "hours", "keywords": ["hours"], "reply": {"text": "9 to 5"}}]}


VARIANTS = {"short": {"weight": 1, "reply": {"text": "10% off"}},
            "long": {"weight": 3, "reply": {"text": "Member week: 10% off and double points, {nickname}"}}}


def test_each_person_always_gets_one_variant_in_the_weights_share():
    rules = RuleSet.compile(doc(VARIANTS))
    picks = {f"o{i}": rules.decide(Trigger("text", "优惠"), now=NOW, person=f"o{i}") for i in range(4000)}
    assert all(d.rule_id == "promo" and d.experiment == "rule:promo" for d in picks.values())
    again = RuleSet.compile(doc(VARIANTS))  # another container
    assert all(again.decide(Trigger("text", "优惠"), now=NOW, person=p).variant == d.variant for p, d in picks.items())
    share = Counter(d.variant for d in picks.values())["long"] / len(picks)
    assert 0.72 < share < 0.78
    texts = {d.variant: d.reply.content for d in picks.values()}
    assert texts == {"short": "10% off", "long": "Member week: 10% off and double points, {nickname}"}
    assert {d.variant: d.needs for d in picks.values()} == {"short": frozenset(), "long": frozenset({"nickname"})}
    assert rules.placeholders_needed == {"nickname"}, "the set asks for what any variant needs"
    plain = rules.decide(Trigger("text", "hours"), now=NOW, person="o1")
    assert (plain.experiment, plain.variant) == ("", "")


def test_a_variant_rule_round_trips_through_its_canonical_document():
    rules = RuleSet.compile(doc(VARIANTS))
    copy = RuleSet.compile(rules.to_doc())
    assert copy.version == rules.version and copy.to_doc() == rules.to_doc()
    assert copy.rule("promo").variants == rules.rule("promo").variants


@pytest.mark.parametrize(("variants", "extra", "where"), [
    ({"a": {"reply": {"text": "x"}}}, {}, "rules[0].variants"),
    (VARIANTS, {"reply": {"text": "x"}}, "rules[0].variants"),
    ({"a": {"weight": 0, "reply": {"text": "x"}}, "b": {"reply": {"text": "y"}}}, {}, "rules[0].variants.a.weight"),
    ({"A": {"reply": {"text": "x"}}, "b": {"reply": {"text": "y"}}}, {}, "rules[0].variants.A"),
    ({"a": {"reply": {"text": "x"}}, "b": {"weight": 1}}, {}, "rules[0].variants.b.reply"),
    ({"a": {"reply": {"text": "x"}, "colour": "red"}, "b": {"reply": {"text": "y"}}}, {}, "rules[0].variants.a.colour"),
])
def test_bad_variants_are_refused_naming_the_field(variants, extra, where):
    with pytest.raises(RuleError) as err:
        RuleSet.compile(doc(variants, **extra))
    assert err.value.path == where


def test_the_assignment_does_not_depend_on_the_order_the_variants_are_written_in():
    forward = RuleSet.compile(doc(VARIANTS))
    backward = RuleSet.compile(doc(dict(reversed(list(VARIANTS.items())))))
    for i in range(200):
        ask = {"now": NOW, "person": f"o{i}"}
        assert forward.decide(Trigger("text", "优惠"), **ask).variant == backward.decide(Trigger("text", "优惠"), **ask).variant


def test_a_served_set_names_the_experiment_after_its_account_and_a_rule_cannot_take_a_defaults_id():
    served = RuleSet.compile(doc(VARIANTS), app_id="wx1234567890abcdef")
    decision = served.decide(Trigger("text", "优惠"), now=NOW, person="o1")
    assert decision.experiment == "rule:wx1234567890abcdef:promo"
    assert decision.variant == RuleSet.compile(doc(VARIANTS)).decide(Trigger("text", "优惠"), now=NOW,
                                                                     person="o1").variant
    clash = {"version": "x", "rules": [{"id": "defaults.reply", "keywords": ["a"], "reply": {"text": "x"}}]}
    with pytest.raises(RuleError) as err:
        RuleSet.compile(clash)
    assert err.value.path == "rules[0].id"
