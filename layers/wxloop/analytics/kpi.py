"""The KPI runner: one SQL text per KPI, the same on DuckDB (local lake) and Athena (Glue table).

Each ``sql/<kpi>.sql`` starts with ``WITH`` and reads ``events``, ``first_touch`` and ``conversions``, which
the prelude defines (``sql/_events.sql``, then ``sql/_persons.sql``) from two tables the engine binds by
name: ``journey`` (the lake) and ``erased`` (persons every KPI excludes). The runner fills the ``:name``
parameters with literals it builds itself from typed values (dates, validated event types, a number), so
no caller text ever reaches the SQL.

Athena gets each KPI as one statement, the prelude inlined as common table expressions. An engine that can
keep temporary tables (DuckDB) builds the prelude's tables once per report instead, from the same text,
and runs each KPI's own part against them: the same SQL, computed once rather than nine times.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from typing import Any, Protocol

from wxloop.domain import experiments

KPIS = ("cross_platform_share", "time_to_conversion", "conversion_histogram", "retention", "funnel",
        "referrals", "channels", "engagement", "ab_variants")
DEFAULT_CONVERSION = "mp.order_paid"
DEFAULT_REGISTRATION = ("mp.phone_bound", "mp.registered")
TARGET_SHARE = 0.40
TARGET_DAYS = 7.0
TARGET_UPLIFT = 0.50
ARRIVAL_LAG_DAYS = 2  # Firehose partitions by arrival: a record may land in a later UTC day than it happened
_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_PARAM = re.compile(r":([a-z_]+)\b")
# the prelude's parts, in order, and the tables each one provides to the KPI queries
PRELUDE = (("_events", ("events",)), ("_persons", ("first_touch", "conversions")))


class KpiError(ValueError):
    """Wrong report parameters, or a KPI query that failed."""


class Engine(Protocol):
    name: str

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run one SQL text; rows as dicts with plain Python values (str dates, int, float, None)."""
        ...


class MaterializingEngine(Engine, Protocol):
    def materialize(self, name: str, sql: str) -> None:
        """Keep the result of ``sql`` as a temporary table ``name`` (replacing one of that name)."""
        ...


@dataclass(frozen=True)
class KpiParams:
    since: date
    until: date
    conversion: str = DEFAULT_CONVERSION
    registration: tuple[str, ...] = DEFAULT_REGISTRATION
    target_share: float = TARGET_SHARE
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.since > self.until:
            raise KpiError(f"--since {self.since} is after --until {self.until}")
        for t in (self.conversion, *self.registration):
            if not _TYPE.match(t) or len(t) > 64:
                raise KpiError(f"{t!r} is not an event type (like mp.order_paid)")
        if not self.registration:
            raise KpiError("name at least one registration event type")
        if not 0 <= self.target_share <= 1:
            raise KpiError("the target share is between 0 and 1")

    def literals(self) -> dict[str, str]:
        """Every ``:name`` the SQL files use, as SQL literals both dialects read."""
        # the window ends at the end of :until in Asia/Shanghai = 16:00 UTC that day
        ts_until = f"{self.until.isoformat()} 16:00:00"
        return {
            "since": f"DATE '{self.since.isoformat()}'",
            "until": f"DATE '{self.until.isoformat()}'",
            "ts_until": f"TIMESTAMP '{ts_until}'",
            "dt_until": f"'{(self.until + timedelta(days=ARRIVAL_LAG_DAYS)).isoformat()}'",
            "conversion": f"'{self.conversion}'",
            "registration": "(" + ", ".join(f"'{t}'" for t in self.registration) + ")",
            "target_share": repr(float(self.target_share)),
        }


def sql_text(name: str) -> str:
    """The SQL file of a KPI (or ``_events`` for the prelude), comments included."""
    if name not in KPIS and name not in dict(PRELUDE):
        raise KpiError(f"unknown KPI {name!r}")
    return resources.files("wxloop.analytics").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def _strip_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--")).strip()


def render(name: str, params: KpiParams, *, prelude: bool = True) -> str:
    """The query of one KPI with its parameters: ``WITH <prelude>, <the KPI's own CTEs> SELECT …``, or
    without the prelude (``prelude=False``) for an engine that holds the prelude's tables already."""
    body = _strip_comments(sql_text(name))
    if not body.upper().startswith("WITH"):
        raise KpiError(f"{name}.sql must start with WITH")
    parts = [_strip_comments(sql_text(part)) for part, _ in PRELUDE] if prelude else []
    text = "WITH\n" + ",\n".join([*parts, body[4:].lstrip()])
    return _fill(name, text, params)


def prelude_tables(params: KpiParams) -> list[tuple[str, str]]:
    """(table, query) pairs that build the prelude's tables in order, each part reading the tables before."""
    out = []
    for part, tables in PRELUDE:
        ctes = _strip_comments(sql_text(part))
        out += [(t, _fill(part, f"WITH\n{ctes}\nSELECT * FROM {t}", params)) for t in tables]
    return out


def _fill(name: str, text: str, params: KpiParams) -> str:
    values = params.literals()

    def fill(match: re.Match) -> str:
        if match.group(1) not in values:
            raise KpiError(f"{name}.sql uses an unknown parameter :{match.group(1)}")
        return values[match.group(1)]

    return _PARAM.sub(fill, text)


def run_report(engine: Engine, params: KpiParams,
               progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Run every KPI on ``engine`` and return the report document (the JSON the CLI prints and the HTML
    embeds): parameters, each KPI's rows, and the headline figures against the product's targets."""
    results: dict[str, list[dict[str, Any]]] = {}
    steps = len(KPIS) + 1
    materialize = getattr(engine, "materialize", None)
    if materialize is not None:
        if progress:
            progress(0, steps, "reading the lake")
        for table, sql in prelude_tables(params):
            materialize(table, sql)
    for i, name in enumerate(KPIS, start=1):
        if progress:
            progress(i, steps, name)
        rows = engine.query(render(name, params, prelude=materialize is None))
        results[name] = [{k: _stable(v) for k, v in row.items()} for row in rows]
    if progress:
        progress(steps, steps, "done")
    return {
        "params": {"since": params.since.isoformat(), "until": params.until.isoformat(),
                   "conversion": params.conversion, "registration": list(params.registration),
                   "engine": engine.name, "timezone": "Asia/Shanghai"},
        "kpis": results,
        "derived": {"retention_uplift": retention_uplift(results["retention"]),
                    "ab": ab_comparisons(results["ab_variants"])},
        "headline": headline(results, params),
    }


def _stable(value: Any) -> Any:
    # parallel float sums differ in the last bits from run to run: 12 significant digits are reproducible
    return float(f"{value:.12g}") if isinstance(value, float) else value


def retention_uplift(rows: Sequence[dict[str, Any]], days: Sequence[int] = (1, 7, 30)) -> list[dict[str, Any]]:
    """Per day n: cross and single retention rates and the uplift (cross / single - 1; None when single is
    0 or a segment has nobody eligible), against the +50% target."""
    by = {(r["segment"], int(r["day"])): r for r in rows}
    out = []
    for n in days:
        cross, single = by.get(("cross", n)), by.get(("single", n))
        rc = cross["rate"] if cross else None
        rs = single["rate"] if single else None
        uplift = rc / rs - 1 if rc is not None and rs else None
        out.append({"day": n, "cross_rate": rc, "single_rate": rs, "uplift": uplift,
                    "cross_eligible": cross["eligible"] if cross else 0,
                    "single_eligible": single["eligible"] if single else 0,
                    "meets_target": None if uplift is None else uplift > TARGET_UPLIFT})
    return out


def ab_comparisons(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per experiment and variant: conversion with a 95% Wilson interval; each variant after the first
    (alphabetical: name the control so it sorts first, e.g. ``a``/``control``) tested against the first."""
    out: list[dict[str, Any]] = []
    by_exp: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_exp.setdefault(r["experiment"], []).append(r)
    for exp, variants in sorted(by_exp.items()):
        variants = sorted(variants, key=lambda r: r["variant"])
        base = variants[0]
        for v in variants:
            n, s = int(v["exposed"]), int(v["converted"])
            low, high = experiments.wilson_interval(s, n)
            entry = {"experiment": exp, "variant": v["variant"], "exposed": n, "converted": s,
                     "rate": s / n if n else None, "ci_low": low, "ci_high": high,
                     "baseline": base["variant"], "p_value": None, "significant": None}
            if v is not base:
                cmp = experiments.two_proportion_test(int(base["converted"]), int(base["exposed"]), s, n)
                entry.update(p_value=cmp.p_value, significant=cmp.significant)
            out.append(entry)
    return out


def headline(results: dict[str, list[dict[str, Any]]], params: KpiParams) -> dict[str, Any]:
    """The three target KPIs: cross-platform share of the last whole week in the window (the last week
    when none is whole) and of all weeks pooled, median days to conversion, D7 retention uplift."""
    weeks = results["cross_platform_share"]
    active = sum(int(w["active_persons"]) for w in weeks)
    cross = sum(int(w["cross_platform_persons"]) for w in weeks)
    whole = [w for w in weeks if date.fromisoformat(w["week"]) >= params.since
             and date.fromisoformat(w["week"]) + timedelta(days=6) <= params.until]
    last = (whole or weeks)[-1] if (whole or weeks) else None
    ttc = results["time_to_conversion"][0] if results["time_to_conversion"] else {}
    median = ttc.get("median_days")
    d7 = next((u for u in retention_uplift(results["retention"]) if u["day"] == 7), {})
    return {
        "cross_share_week": last["week"] if last else None,
        "cross_share_last_week": last["cross_share"] if last else None,
        "cross_share_all_weeks": cross / active if active else None, "cross_share_target": params.target_share,
        "cross_share_meets_target": None if last is None else last["cross_share"] >= params.target_share,
        "median_days_to_conversion": median, "days_target": TARGET_DAYS,
        "conversion_meets_target": None if median is None else median < TARGET_DAYS,
        "d7_uplift": d7.get("uplift"), "uplift_target": TARGET_UPLIFT, "uplift_meets_target": d7.get("meets_target"),
    }
