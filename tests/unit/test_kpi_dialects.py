"""The KPI SQL stays in the subset DuckDB and Athena (Trino) both accept, and its parameters are built,
never pasted: each rendered query parses in both dialects, and no construct only one of them has slips in."""

from __future__ import annotations

import re
from datetime import date

import pytest

from wxloop.analytics import kpi

sqlglot = pytest.importorskip("sqlglot")
PARAMS = kpi.KpiParams(date(2026, 10, 1), date(2026, 10, 31))
# constructs one engine has and the other lacks (or reads differently)
NOT_PORTABLE = {
    r"::": "DuckDB cast shorthand", r"//": "DuckDB integer division", r"\bQUALIFY\b": "no QUALIFY in Trino",
    r"\bmedian\s*\(": "DuckDB only", r"\bquantile": "DuckDB only", r"approx_percentile": "Trino only",
    r"\bdate_add\s*\(": "argument order differs", r"\bsequence\s*\(": "Trino only",
    r"\bgenerate_series\b": "DuckDB only", r"\bstrftime\b": "DuckDB only", r"\bILIKE\b": "DuckDB only",
    r"AT TIME ZONE": "Trino keeps the zone, DuckDB drops it: use ts + INTERVAL '8' HOUR",
    r"\bepoch": "differs", r"date_diff\('second'": "DuckDB counts boundaries, Trino elapsed time",
    r"\bVALUES\s+\d": "VALUES 1, 2 is one row in DuckDB, two in Trino",
}


@pytest.mark.parametrize("name", kpi.KPIS)
@pytest.mark.parametrize("dialect", ["trino", "duckdb"])
def test_each_rendered_kpi_parses_in_both_dialects(name, dialect):
    sqlglot.parse_one(kpi.render(name, PARAMS), read=dialect, error_level=sqlglot.ErrorLevel.RAISE)


@pytest.mark.parametrize("name", [*kpi.KPIS, "_events", "_persons"])
def test_no_construct_only_one_engine_understands(name):
    body = "\n".join(line.split("--")[0] for line in kpi.sql_text(name).splitlines())
    for pattern, why in NOT_PORTABLE.items():
        assert not re.search(pattern, body, re.IGNORECASE), f"{name}.sql: {pattern} ({why})"


def test_parameters_are_literals_built_from_typed_values():
    sql = kpi.render("funnel", PARAMS)
    assert ":" not in re.sub(r"'[^']*'", "", sql)  # every :name was filled
    assert "DATE '2026-10-01'" in sql and "TIMESTAMP '2026-10-31 16:00:00'" in sql
    assert "('mp.phone_bound', 'mp.registered')" in sql


@pytest.mark.parametrize("bad", ["x'; DROP TABLE journey; --", "MP.Order", "", "a" * 70, "mp..x"])
def test_an_event_type_that_is_not_one_is_refused(bad):
    with pytest.raises(kpi.KpiError):
        kpi.KpiParams(date(2026, 10, 1), date(2026, 10, 2), conversion=bad)
    with pytest.raises(kpi.KpiError):
        kpi.KpiParams(date(2026, 10, 1), date(2026, 10, 2), registration=(bad,))


def test_a_window_that_ends_before_it_starts_is_refused():
    with pytest.raises(kpi.KpiError, match="after"):
        kpi.KpiParams(date(2026, 10, 2), date(2026, 10, 1))


def test_an_unknown_kpi_name_is_refused():
    with pytest.raises(kpi.KpiError):
        kpi.sql_text("../../etc/passwd")
