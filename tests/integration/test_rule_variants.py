"""A/B rule replies through the OA webhook: each person is answered with their variant, always the same, and
the push's journey record names the experiment and the variant (the KPI report's exposure)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import OA_APP
from tests.integration.oa_webhook_kit import post, reply_of

pytest_plugins = ["tests.integration.oa_webhook_kit"]  # fixtures: app, sim

RULES = {"version": "ab1", "rules": [{"id": "promo", "keywords": ["优惠"], "variants": {
    "short": {"weight": 1, "reply": {"text": "10% off"}},
    "long": {"weight": 1, "reply": {"text": "Member week: 10% off and double points"}}}}]}


def test_each_person_gets_their_variant_every_time_and_the_journey_records_it(aws, app, context, sim):
    from wxloop.adapters import repository
    from wxloop.analytics.schema import to_record
    from wxloop.domain.rules import RuleSet, Trigger
    from wxloop.services import journey

    repository.put_rule_set(OA_APP, RULES, "ab1")
    expected = RuleSet.compile(RULES)
    answers: dict[str, set[str]] = {}
    for i in range(12):
        openid = f"oAb{i % 6:02d}"
        out, push = post(app, context, sim, sim.text(openid, "优惠", msg_id=9000 + i), "safe")
        answers.setdefault(openid, set()).add(reply_of(sim, out, push)["Content"])
    for openid, texts in answers.items():
        want = expected.decide(Trigger("text", "优惠"), now=datetime.now(UTC), person=openid)
        assert texts == {want.reply.content}, "one person, one variant"
    assert len({t for texts in answers.values() for t in texts}) == 2, "six people see both variants"
    recorded = []
    for record in aws.stream_records():
        found = journey.new_event(record)
        if found is not None:
            recorded.append(to_record(*found))
    assert len(recorded) == 12
    assert {(r["experiment"], r["variant"] in ("short", "long")) for r in recorded} == {(f"rule:{OA_APP}:promo", True)}
