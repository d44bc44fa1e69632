"""The daily KPI run (``functions/kpi``): the report over the last 28 days on Athena, as CloudWatch metrics.

Environment: ``ATHENA_WORKGROUP`` (fixes the results bucket and the bytes-scanned limit), ``LAKE_DATABASE``
(the Glue database of ``journey`` and ``erased``), optional ``KPI_CONVERSION_EVENT`` and
``KPI_REGISTRATION_EVENTS`` (comma-separated), ``KPI_WINDOW_DAYS`` (default 28).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from wxloop.analytics import kpi
from wxloop.settings import settings

WINDOW_DAYS = 28


def params_for(event: Mapping[str, Any], now: datetime | None = None) -> kpi.KpiParams:
    """The window ending yesterday (Asia/Shanghai), or on ``event["until"]`` (an ISO date, for backfills)."""
    today = ((now or datetime.now(UTC)) + timedelta(hours=8)).date()
    raw = event.get("until") if isinstance(event, Mapping) else None
    try:
        until = date.fromisoformat(raw) if isinstance(raw, str) else today - timedelta(days=1)
    except ValueError:
        raise kpi.KpiError(f"until: {raw!r} is not an ISO date") from None
    env = settings()
    days = env.kpi_window_days
    registration = tuple(t.strip() for t in env.kpi_registration_events.split(",") if t.strip())
    return kpi.KpiParams(until - timedelta(days=days - 1), until,
                         conversion=env.kpi_conversion_event or kpi.DEFAULT_CONVERSION,
                         registration=registration or kpi.DEFAULT_REGISTRATION)


def metrics_of(report: Mapping[str, Any]) -> list[tuple[str, str, float]]:
    """(name, unit, value) of every KPI figure the dashboard shows; figures without data are left out."""
    k, h = report["kpis"], report["headline"]
    ttc = (k["time_to_conversion"] or [{}])[0]
    ref = (k["referrals"] or [{}])[0]
    out = [("CrossPlatformShare", "Percent", _pct(h["cross_share_last_week"])),
           ("MedianDaysToConversion", "None", h["median_days_to_conversion"]),
           ("MeanDaysToConversion", "None", ttc.get("mean_days")),
           ("ConvertedUnder7Days", "Percent", _pct(ttc.get("share_under_7d"))),
           ("NewPersons", "Count", ttc.get("persons")),
           ("Conversions", "Count", ttc.get("converted")),
           ("ActivePersons", "Count", ref.get("active_persons")),
           ("KFactor", "None", ref.get("k_factor")),
           ("InviteConversion", "Percent", _pct(ref.get("invite_conversion")))]
    for u in report["derived"]["retention_uplift"]:
        out += [(f"RetentionD{u['day']}Cross", "Percent", _pct(u["cross_rate"])),
                (f"RetentionD{u['day']}Single", "Percent", _pct(u["single_rate"])),
                (f"RetentionUpliftD{u['day']}", "Percent", _pct(u["uplift"]))]
    return [(name, unit, float(v)) for name, unit, v in out if v is not None]


def _pct(v: float | None) -> float | None:
    return None if v is None else v * 100


def run(metrics, event: Mapping[str, Any], engine: kpi.Engine | None = None) -> dict[str, Any]:
    """Run the report on Athena (or ``engine``) and add each figure to ``metrics``; returns what it published."""
    params = params_for(event)
    if engine is None:
        from wxloop.analytics.engines import AthenaEngine

        engine = AthenaEngine(settings().athena_workgroup, settings().lake_database)
    report = kpi.run_report(engine, params)
    published = metrics_of(report)
    for name, unit, value in published:
        metrics.add_metric(name=name, unit=unit, value=value)
    scanned = getattr(engine, "bytes_scanned", None)
    if scanned is not None:
        metrics.add_metric(name="KpiBytesScanned", unit="Bytes", value=scanned)
    return {"since": params.since.isoformat(), "until": params.until.isoformat(),
            "metrics": {name: value for name, _, value in published}}
