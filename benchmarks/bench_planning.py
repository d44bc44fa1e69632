"""Benchmark: planning one person for a campaign (segment filter + channel picker + send hour; budget 50 µs).

The headline is the planner's own path (``wxloop.services.campaigns.plan_page``: person items as a scan
returns them → filter view → segment filter → identities and credit of members → picker → send hour) over
20,000 demo people (``wxloop.demo_people``); the domain alone (``plan_person`` on prepared views) is
reported beside it.

A campaign with a typical segment (dormant 7–30 days, a tag exclusion, a points floor, a preference) and three
channels (OA customer service, MP customer service, MP subscribe) is planned for 20,000 generated people with
engagement profiles, CS windows, subscribe credits, consent states and recent pushes (about a third in the
segment). Each repeat plans every person; the result is the median over repeats of the CPU time per person
(``time.process_time_ns``), with counts per outcome as a sanity check.

    python benchmarks/bench_planning.py          # prints JSON
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

try:
    from wxloop.domain.campaigns import PersonView, Skip, matches, parse_campaign_doc, plan_person
except ImportError:  # run from a checkout without PYTHONPATH=layers
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers"))
    from wxloop.domain.campaigns import PersonView, Skip, matches, parse_campaign_doc, plan_person
from wxloop.domain.campaigns import Campaign, Planner
from wxloop.domain.channel_pick import Reachability
from wxloop.domain.engagement import JourneyEvent, replay

BUDGET_US = 50.0
PEOPLE = 20_000
OA, MP = "wx1234567890abcdef", "wxabcdef1234567890"
NOW = 1_799_532_000  # 2027-01-10 06:00 Asia/Shanghai, before the send window opens
CAMPAIGN = {
    "id": "bench", "accounts": {"oa": OA, "mp": MP},
    "segment": {"last_active_days": {"min": 7, "max": 30}, "oa_tags": {"none": [99]}, "points": {"min": 10},
                "mp_preferences": {"topic": ["shoes", "bags", "hats"]}},
    "content": {"oa_cs": {"text": "hi"}, "mp_cs": {"text": "hi"},
                "mp_subscribe": {"template_id": "tmpl", "data": {"thing1": "new"}}},
    "schedule": {"start": "2027-01-10T00:00:00", "end": "2027-01-17T00:00:00"},
    "caps": {"per_day": 1, "per_week": 3}, "send_window": "10-21", "quiet_hours": "22-08",
}

# The same campaign on the demo people's data: their subscribe template, no preference filter (they have none).
PATH_CAMPAIGN = {**CAMPAIGN, "id": "bench-path",
                 "segment": {k: v for k, v in CAMPAIGN["segment"].items() if k != "mp_preferences"},
                 "content": {**CAMPAIGN["content"], "mp_subscribe": {"template_id": "tmpl-new-arrivals",
                                                                     "data": {"thing1": "new"}}}}


def build_people(rng: random.Random) -> list[PersonView]:
    people = []
    for i in range(PEOPLE):
        days_ago = rng.choice([1, 3, 8, 12, 20, 25, 40, 90])
        events = [JourneyEvent(rng.choice(["message", "session", "page_view"]), rng.choice(["oa", "mp"]),
                               NOW - days_ago * 86400 - rng.randint(0, 40) * 86400 + rng.randint(0, 86399))
                  for _ in range(rng.randint(1, 12))]
        last = max(e.at for e in events)
        window = {"win_msg_at": last, "win_msg_sent": rng.randint(0, 5)}
        reach = Reachability(
            follows_oa=rng.random() < 0.6, oa_identity=window if rng.random() < 0.5 else None,
            mp_identity=window if rng.random() < 0.5 else None,
            subscribe_credits={"tmpl": rng.randint(0, 2)}, consent=rng.choice(["granted", "unknown", "unknown",
                                                                             "withdrawn"]),
            recent_pushes=tuple(NOW - rng.randint(1, 10) * 86400 for _ in range(rng.randint(0, 3))),
        )
        people.append(PersonView(
            f"{i:032x}", oa_tags=frozenset(rng.sample(range(1, 100), rng.randint(0, 3))),
            mp_prefs={"topic": rng.choice(["shoes", "bags", "food", ("hats", "food")])}, mp_apps=frozenset({MP}),
            points=rng.randint(0, 500), profile=replay(events), reach=reach))
    return people


def _time(campaign: Campaign, people: list[PersonView], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.process_time_ns()
        planner = Planner(campaign, NOW)  # once per run, as the planner does
        for person in people:
            planner.plan(person)
        out.append((time.process_time_ns() - t0) / len(people) / 1000)
    return out


def build_items(rng: random.Random) -> tuple[list[dict], dict]:
    """Person items as a scan returns them, and the identity/credit items by key (the batched read)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from wxloop.demo_people import person_items

    persons, others = [], {}
    for i in range(PEOPLE):
        for item in person_items(i, rng, NOW):
            if item["sk"] == "PROFILE":
                persons.append(item)
            else:
                others[(item["pk"], item["sk"])] = item
    return persons, others


def _time_planner(campaign: Campaign, persons: list[dict], others: dict, repeats: int) -> tuple[list[float], dict]:
    """The planner's own path per page: the filter view from the person item, the segment filter,
    the full view (identities, credit, closed channels) for members, the picker and the send hour."""
    from wxloop.services.campaigns import PAGE_LIMIT, plan_page

    def read(keys):
        return {k: others[k] for k in keys if k in others}

    out, counts = [], None
    for _ in range(repeats):
        t0 = time.process_time_ns()
        total: Counter = Counter()
        for start in range(0, len(persons), PAGE_LIMIT):  # people per page: at most the items of a scan page
            total.update(plan_page(campaign, persons[start:start + PAGE_LIMIT], NOW, read)[1])
        out.append((time.process_time_ns() - t0) / len(persons) / 1000)
        counts = total
    return out, dict(sorted((counts or {}).items()))


def run(repeats: int = 5) -> dict:
    campaign = parse_campaign_doc({"campaigns": [CAMPAIGN]})[0]
    persons, others = build_items(random.Random(20270110))
    path_campaign = parse_campaign_doc({"campaigns": [PATH_CAMPAIGN]})[0]
    path_runs, path_counts = _time_planner(path_campaign, persons, others, repeats)
    people = build_people(random.Random(20270110))
    outcomes = Counter(p.reason.value if isinstance(p, Skip) else p.channel
                       for p in (plan_person(campaign, person, NOW) for person in people))
    selected = [p for p in people if matches(campaign.segment, p, NOW)]
    per_person, per_selected = _time(campaign, people, repeats), _time(campaign, selected, repeats)
    median = statistics.median(path_runs)
    return {
        "us_per_person_median": round(median, 2),  # the planner path (plan_page over person items)
        "people": len(people),
        "planner_path_runs": [round(x, 2) for x in path_runs],
        "planner_path_counts": path_counts,
        "us_per_person_domain_only_median": round(statistics.median(per_person), 2),
        "us_per_person_runs": [round(x, 2) for x in per_person],
        "us_per_person_in_segment_median": round(statistics.median(per_selected), 2),  # the full path
        "outcomes": dict(sorted(outcomes.items())),
        "budget_us": BUDGET_US,
        "within_budget": median <= BUDGET_US,
        "python": sys.version.split()[0],
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
