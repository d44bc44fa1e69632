"""A/B variants: sticky weighted assignment, Wilson intervals and the two-proportion test."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from wxloop.analytics import kpi
from wxloop.domain.experiments import assign_variant, two_proportion_test, wilson_interval


def test_assignment_is_sticky_and_independent_of_the_order_of_calls():
    first = [assign_variant(f"p{i}", "exp1", {"a": 1, "b": 1}) for i in range(200)]
    again = [assign_variant(f"p{i}", "exp1", {"a": 1, "b": 1}) for i in reversed(range(200))][::-1]
    assert first == again


def test_weights_are_honoured_within_sampling_error():
    counts = Counter(assign_variant(f"p{i}", "exp2", {"a": 0.2, "b": 0.3, "c": 0.5}) for i in range(20000))
    for name, weight in (("a", 0.2), ("b", 0.3), ("c", 0.5)):
        assert abs(counts[name] / 20000 - weight) < 0.015, counts


def test_experiments_are_independent_of_each_other():
    one = [assign_variant(f"p{i}", "exp-one", {"a": 1, "b": 1}) for i in range(2000)]
    two = [assign_variant(f"p{i}", "exp-two", {"a": 1, "b": 1}) for i in range(2000)]
    same = sum(x == y for x, y in zip(one, two, strict=True)) / 2000
    assert 0.45 < same < 0.55


def test_a_zero_weight_variant_is_never_chosen():
    assert {assign_variant(f"p{i}", "e", [("off", 0), ("on", 1)]) for i in range(500)} == {"on"}


@pytest.mark.parametrize("weights", [{}, {"a": -1, "b": 2}, {"a": 0}, {"a": math.nan}, {"a": math.inf}])
def test_bad_weights_are_refused(weights):
    with pytest.raises(ValueError):
        assign_variant("p", "e", weights)


def test_wilson_interval_matches_the_textbook_value():
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 0.0)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and 0 < high < 0.35


def test_two_proportion_test():
    big = two_proportion_test(100, 1000, 150, 1000)  # 10% vs 15%: z about 3.38
    assert big.z == pytest.approx(3.38, abs=0.01) and big.significant and big.p_value < 0.001
    small = two_proportion_test(10, 100, 12, 100)
    assert not small.significant and small.p_value > 0.5
    assert two_proportion_test(0, 0, 5, 10).p_value == 1.0
    assert not two_proportion_test(0, 10, 0, 10).significant


def test_report_compares_each_variant_with_the_first():
    rows = [{"experiment": "e", "variant": "b", "exposed": 1000, "converted": 150},
            {"experiment": "e", "variant": "a", "exposed": 1000, "converted": 100}]
    a, b = kpi.ab_comparisons(rows)
    assert (a["variant"], a["p_value"], b["baseline"]) == ("a", None, "a")
    assert b["significant"] is True and b["ci_low"] < 0.15 < b["ci_high"]
