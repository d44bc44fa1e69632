"""Every KPI's SQL on DuckDB against an independent Python computation (tests/unit/kpi_oracle.py), on
generated traffic (several seeds) and on hand-made edge cases: merged persons (and a merge chain), persons
with only system events, cohorts at the window's edges, Asia/Shanghai midnight, erasure, duplicates."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, date, datetime, timedelta

import pytest

pytest.importorskip("duckdb")
pytest.importorskip("pyarrow")

from tests.unit.kpi_oracle import Oracle  # noqa: E402
from wxloop.analytics import demo, engines, kpi, lake  # noqa: E402
from wxloop.analytics.schema import COLUMN_NAMES  # noqa: E402

CONV, REG = "mp.order_paid", ("mp.phone_bound",)
_ids = itertools.count()


def assert_rows_equal(got: list[dict], want: list[dict], what: str) -> None:
    assert len(got) == len(want), f"{what}: {len(got)} rows, expected {len(want)}\n{got}\n{want}"
    for g, w in zip(got, want, strict=True):
        assert set(g) == set(w), f"{what}: columns {sorted(g)} != {sorted(w)}"
        for k in w:
            if isinstance(w[k], float) and g[k] is not None:
                assert math.isclose(g[k], w[k], rel_tol=1e-9, abs_tol=1e-9), f"{what}.{k}: {g[k]} != {w[k]}\n{g}\n{w}"
            else:
                assert g[k] == w[k], f"{what}.{k}: {g[k]!r} != {w[k]!r}\n{g}\n{w}"


def run_all(root, since, until, rows, erased=()):
    oracle = Oracle(rows, since=since, until=until, conversion=CONV, registration=REG, erased=erased)
    engine = engines.DuckDBEngine(str(root))
    params = kpi.KpiParams(since, until, conversion=CONV, registration=REG)
    for name in kpi.KPIS:
        got = engine.query(kpi.render(name, params))
        assert_rows_equal(got, getattr(oracle, name)(), name)
    return engine, params


@pytest.mark.parametrize("seed", [1, 7, 2026])
def test_every_kpi_matches_the_independent_computation_on_generated_traffic(tmp_path, seed):
    traffic = demo.generate(400, 50, seed, start=date(2026, 9, 1), conversion=CONV)
    traffic.write(lake.local_writer(tmp_path))
    # a window that cuts cohorts at both edges (traffic starts before it and goes on after it)
    engine, params = run_all(tmp_path, date(2026, 9, 10), date(2026, 10, 12), traffic.rows())
    # the report builds the prelude's tables once and runs each KPI's own part: the same numbers
    report = kpi.run_report(engines.DuckDBEngine(str(tmp_path)), params)
    for name in kpi.KPIS:
        assert_rows_equal(report["kpis"][name], engine.query(kpi.render(name, params)), f"materialized {name}")
    assert report["kpis"]["funnel"] and report["kpis"]["retention"] and report["kpis"]["ab_variants"]


def test_ground_truth_of_the_whole_window(tmp_path):
    traffic = demo.generate(500, 30, 3, start=date(2026, 9, 1), conversion=CONV)
    traffic.write(lake.local_writer(tmp_path))
    engine = engines.DuckDBEngine(str(tmp_path))
    params = kpi.KpiParams(date(2026, 9, 1), date(2026, 10, 15), conversion=CONV, registration=REG)
    ttc = engine.query(kpi.render("time_to_conversion", params))[0]
    referrals = engine.query(kpi.render("referrals", params))[0]
    # merged aliases and duplicate deliveries never add persons; every converter is counted once
    assert ttc["persons"] == traffic.truth["persons"]
    assert ttc["converted"] == traffic.truth["converted"]
    assert referrals["invitees"] == traffic.truth["invitees"]
    assert traffic.truth["merged"] > 0 and traffic.truth["duplicates"] > 0


# ------------------------------------------------------------------------------------- edge cases


def at(local: str) -> int:
    """Epoch ms of an Asia/Shanghai wall-clock time like '2026-10-05 23:59:59.999'."""
    dt = datetime.fromisoformat(local).replace(tzinfo=UTC) - timedelta(hours=8)
    return int(dt.timestamp() * 1000)


def ev(person, etype, local, *, platform=None, by_user=True, **extra):
    row = dict.fromkeys(COLUMN_NAMES)
    row.update(event_id=f"e{next(_ids)}", person=person, platform=platform or etype.split(".")[0], app="wx0",
               type=etype, ts=at(local), by_user=by_user, v=1, **extra)
    return row


def edge_rows():
    return [
        # a: OA at 23:59:59.999 Shanghai on Oct 4 (UTC Oct 4 15:59) -> first day Oct 4, before the window
        ev("a", "oa.subscribe", "2026-10-04 23:59:59.999", channel="qr_store"),
        ev("a", "mp.launch", "2026-10-05 00:00:00.000"),
        # b: first touch exactly at the window's first local midnight; crosses the same day; converts
        ev("b", "oa.subscribe", "2026-10-05 00:00:00.000", channel="article"),
        ev("b", "mp.launch", "2026-10-05 08:00:00", experiment="x", variant="a"),
        ev("b", "mp.phone_bound", "2026-10-05 09:00:00"),
        ev("b", CONV, "2026-10-08 09:00:00"),
        ev("b", "oa.text", "2026-10-06 12:00:00"),
        ev("b", "oa.text", "2026-10-12 12:00:00"),
        # c (openid-only) merged into d, d later merged into e: one person e, first touch c's
        ev("c", "oa.subscribe", "2026-10-06 10:00:00", channel="menu"),
        ev("d", "mp.launch", "2026-10-06 11:00:00", experiment="x", variant="b"),
        ev("d", "person.merged", "2026-10-06 11:00:00", platform="mp", by_user=False, merged_from="c"),
        ev("e", "person.merged", "2026-10-07 11:00:00", platform="mp", by_user=False, merged_from="d"),
        ev("e", "mp.phone_bound", "2026-10-07 12:00:00"),
        ev("e", CONV, "2026-10-07 13:00:00"),
        ev("e", "oa.click", "2026-10-07 13:30:00", experiment="x", variant="a"),  # later exposure: ignored
        # f: only system events (sends, rewards): never a person of any KPI
        ev("f", "oa.send.cs", "2026-10-06 10:00:00", by_user=False),
        ev("f", "reward.granted", "2026-10-06 10:00:00", platform="mp", by_user=False),
        # g: invited by b (and once by itself: ignored); converts after the attribution
        ev("g", "mp.launch", "2026-10-09 10:00:00", channel="referral"),
        ev("g", "referral.attributed", "2026-10-09 10:00:01", platform="mp", by_user=False, inviter="g"),
        ev("g", "referral.attributed", "2026-10-09 10:00:02", platform="mp", by_user=False, inviter="b"),
        ev("g", "mp.phone_bound", "2026-10-09 11:00:00"),
        ev("g", CONV, "2026-10-10 11:00:00"),
        # h: erased (issue 14's list): gone from every KPI, and as an inviter too
        ev("h", "oa.subscribe", "2026-10-06 10:00:00", channel="qr_store"),
        ev("h", "mp.launch", "2026-10-06 10:05:00"),
        ev("k", "mp.launch", "2026-10-07 10:00:00", channel="referral"),
        ev("k", "referral.attributed", "2026-10-07 10:00:01", platform="mp", by_user=False, inviter="h"),
        # m: first touch on the window's last day at 23:59:59.999, converts just after the window
        ev("m", "oa.subscribe", "2026-10-12 23:59:59.999", channel="article"),
        ev("m", CONV, "2026-10-13 00:00:00.000", platform="mp"),
        # n: first touch after the window
        ev("n", "oa.subscribe", "2026-10-13 00:00:00.000"),
        # p, q: customers reached by an A/B campaign send (system events only, so in no other KPI); p orders
        # before and again after the send (converted), q only before (not converted)
        ev("p", CONV, "2026-10-06 09:00:00", by_user=False),
        ev("p", "oa.send.cs", "2026-10-07 10:00:00", by_user=False, experiment="campaign:y", variant="b"),
        ev("p", CONV, "2026-10-08 09:00:00", by_user=False),
        ev("q", CONV, "2026-10-06 09:00:00", by_user=False),
        ev("q", "oa.send.cs", "2026-10-07 10:00:00", by_user=False, experiment="campaign:y", variant="b"),
    ]


@pytest.fixture
def edge_lake(tmp_path):
    rows = edge_rows()
    rows.append(dict(rows[3]))  # a duplicate delivery of b's MP launch
    writer = lake.local_writer(tmp_path)
    writer.write(rows)
    writer.write_erased(["h"])
    return tmp_path, rows


def test_edge_cases_match_the_independent_computation(edge_lake):
    root, rows = edge_lake
    run_all(root, date(2026, 10, 5), date(2026, 10, 12), rows, erased={"h"})


def test_edge_cases_give_the_numbers_worked_out_by_hand(edge_lake):
    root, _ = edge_lake
    engine = engines.DuckDBEngine(str(root))
    params = kpi.KpiParams(date(2026, 10, 5), date(2026, 10, 12), conversion=CONV, registration=REG)
    q = lambda name: engine.query(kpi.render(name, params))  # noqa: E731
    ttc = q("time_to_conversion")[0]
    # cohort: b, e (first touch c's on Oct 6), g, k, m; not a (Oct 4), f (no own action), h (erased), n (after)
    assert ttc["persons"] == 5 and ttc["converted"] == 3  # b (3 d), e (27 h), g (25 h); m after the window
    assert ttc["median_days"] == pytest.approx(27 / 24)
    funnel = {r["channel"]: r for r in q("funnel")}
    assert funnel["menu"] == {"channel": "menu", "persons": 1, "oa_touch": 1, "mp_open": 1, "registered": 1,
                              "converted": 1}
    assert funnel["referral"]["persons"] == 2 and funnel["referral"]["oa_touch"] == 0
    weeks = q("cross_platform_share")
    assert [w["week"] for w in weeks] == ["2026-10-05", "2026-10-12"]
    # week of Oct 5: a (MP only in window), b (both), e (both, merged), g, k -> 2 of 5 cross
    assert (weeks[0]["active_persons"], weeks[0]["cross_platform_persons"]) == (5, 2)
    # the headline takes the last whole week of the window, not the one-day week of Oct 12
    head = kpi.headline({"cross_platform_share": weeks, "time_to_conversion": [ttc], "retention": []}, params)
    assert (head["cross_share_week"], head["cross_share_last_week"]) == ("2026-10-05", 0.4)
    ref = q("referrals")[0]
    assert (ref["inviters"], ref["invitees"], ref["converted_invitees"]) == (1, 1, 1)  # b -> g; h erased
    ab = {r["variant"]: r for r in q("ab_variants") if r["experiment"] == "x"}
    assert ab["a"]["exposed"] == 1 and ab["b"]["exposed"] == 1  # e's first exposure (as d) was b
    (y,) = [r for r in q("ab_variants") if r["experiment"] == "campaign:y"]
    assert (y["exposed"], y["converted"]) == (2, 1), "a conversion after the send counts, one before it does not"


def test_a_person_with_no_events_and_an_empty_window_give_empty_results(tmp_path):
    lake.local_writer(tmp_path).write([ev("a", "oa.subscribe", "2026-10-04 10:00:00")])
    engine = engines.DuckDBEngine(str(tmp_path))
    params = kpi.KpiParams(date(2026, 11, 1), date(2026, 11, 30), conversion=CONV, registration=REG)
    report = kpi.run_report(engine, params)
    assert report["kpis"]["time_to_conversion"] == [{"persons": 0, "converted": 0, "conversion_rate": None,
                                                     "median_days": None, "mean_days": None,
                                                     "share_under_7d": None}]
    assert report["kpis"]["cross_platform_share"] == [] and report["kpis"]["funnel"] == []
    assert report["headline"]["cross_share_meets_target"] is None


def test_the_engine_refuses_a_folder_without_a_lake(tmp_path):
    with pytest.raises(engines.EngineError, match="no journey data"):
        engines.DuckDBEngine(str(tmp_path))
