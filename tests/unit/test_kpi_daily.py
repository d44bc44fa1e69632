"""The daily KPI run's window (Asia/Shanghai days) and the figures it publishes."""

from __future__ import annotations

from datetime import UTC, date, datetime

from wxloop.analytics import daily


def test_the_window_ends_yesterday_in_shanghai_even_just_after_its_midnight(monkeypatch):
    monkeypatch.delenv("KPI_WINDOW_DAYS", raising=False)
    # 16:30 UTC on Oct 1 is 00:30 on Oct 2 in Shanghai: yesterday there is Oct 1
    p = daily.params_for({}, now=datetime(2026, 10, 1, 16, 30, tzinfo=UTC))
    assert (p.since, p.until) == (date(2026, 9, 4), date(2026, 10, 1))
    p = daily.params_for({}, now=datetime(2026, 10, 1, 15, 59, tzinfo=UTC))
    assert p.until == date(2026, 9, 30)


def test_event_types_and_window_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("KPI_WINDOW_DAYS", "7")
    monkeypatch.setenv("KPI_CONVERSION_EVENT", "mp.first_order")
    monkeypatch.setenv("KPI_REGISTRATION_EVENTS", "mp.phone_bound, mp.member_joined")
    p = daily.params_for({"until": "2026-10-10"})
    assert (p.since, p.conversion, p.registration) == (date(2026, 10, 4), "mp.first_order",
                                                       ("mp.phone_bound", "mp.member_joined"))


def test_figures_without_data_are_not_published():
    report = {"kpis": {"time_to_conversion": [{"persons": 0, "converted": 0, "mean_days": None,
                                               "share_under_7d": None}], "referrals": []},
              "headline": {"cross_share_last_week": 0.5, "median_days_to_conversion": None},
              "derived": {"retention_uplift": [{"day": 7, "cross_rate": 0.3, "single_rate": 0.2, "uplift": 0.5}]}}
    published = dict((n, v) for n, _, v in daily.metrics_of(report))
    assert published == {"CrossPlatformShare": 50.0, "NewPersons": 0.0, "Conversions": 0.0,
                         "RetentionD7Cross": 30.0, "RetentionD7Single": 20.0, "RetentionUpliftD7": 50.0}
