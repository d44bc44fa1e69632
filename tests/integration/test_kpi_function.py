"""The daily KPI function: Athena's API (a stand-in that answers with DuckDB over a local lake, in Athena's
result format: strings, a header row, pages) -> the report -> CloudWatch metrics (EMF) for the dashboard."""

from __future__ import annotations

import io
import itertools
import json
from datetime import date

import pytest

from tests.conftest import load_handler

pytest.importorskip("duckdb")
pytest.importorskip("pyarrow")

from wxloop.adapters import aws  # noqa: E402
from wxloop.analytics import daily, demo, engines, kpi, lake  # noqa: E402

_ATHENA_TYPE = {"BIGINT": "bigint", "HUGEINT": "bigint", "INTEGER": "integer", "DOUBLE": "double",
                "VARCHAR": "varchar", "DATE": "date", "BOOLEAN": "boolean"}


class DuckAthena:
    """Athena's query API, answered by DuckDB: RUNNING once, then SUCCEEDED; results 4 rows a page."""

    def __init__(self, root, workgroup: str, database: str) -> None:
        self.engine = engines.DuckDBEngine(str(root))
        self.workgroup, self.database = workgroup, database
        self.results, self.polls, self.ids = {}, {}, itertools.count()

    def start_query_execution(self, QueryString, WorkGroup, QueryExecutionContext):  # noqa: N803
        assert (WorkGroup, QueryExecutionContext) == (self.workgroup, {"Database": self.database})
        cur = self.engine.con.execute(QueryString)
        qid = f"q{next(self.ids)}"
        cols = [(d[0], _ATHENA_TYPE[str(d[1]).split("(")[0]]) for d in cur.description]
        self.results[qid] = (cols, cur.fetchall())
        return {"QueryExecutionId": qid}

    def get_query_execution(self, QueryExecutionId):  # noqa: N803
        self.polls[QueryExecutionId] = self.polls.get(QueryExecutionId, 0) + 1
        state = "RUNNING" if self.polls[QueryExecutionId] == 1 else "SUCCEEDED"
        return {"QueryExecution": {"Status": {"State": state}, "Statistics": {"DataScannedInBytes": 1000}}}

    def get_query_results(self, QueryExecutionId, NextToken=None):  # noqa: N803
        cols, rows = self.results[QueryExecutionId]
        as_text = [{"Data": [{"VarCharValue": n} for n, _ in cols]}] + [
            {"Data": [{} if v is None else {"VarCharValue": str(v).lower() if isinstance(v, bool) else str(v)}
                      for v in r]} for r in rows]
        start = int(NextToken or 0)
        page = {"ResultSet": {"Rows": as_text[start:start + 4], "ResultSetMetadata": {
            "ColumnInfo": [{"Name": n, "Type": t} for n, t in cols]}}}
        if start + 4 < len(as_text):
            page["NextToken"] = str(start + 4)
        return page


@pytest.fixture
def athena(tmp_path, monkeypatch):
    demo.generate(600, 40, 11, start=date(2026, 9, 1)).write(lake.local_writer(tmp_path))
    monkeypatch.setenv("ATHENA_WORKGROUP", "wxloop-kpi")
    monkeypatch.setenv("LAKE_DATABASE", "wxloop_lake")
    fake = DuckAthena(tmp_path, "wxloop-kpi", "wxloop_lake")
    aws.reset()
    aws._clients["athena"] = fake
    yield fake, tmp_path
    aws.reset()


def test_the_athena_engine_reads_typed_rows_over_pages_like_duckdb(athena):
    fake, root = athena
    params = kpi.KpiParams(date(2026, 9, 1), date(2026, 10, 10))
    via_athena = kpi.run_report(engines.AthenaEngine("wxloop-kpi", "wxloop_lake", client=fake, poll=0), params)
    direct = kpi.run_report(engines.DuckDBEngine(str(root)), params)
    assert via_athena["kpis"] == direct["kpis"]
    assert len(via_athena["kpis"]["retention"]) > 4  # more than one page


def test_the_daily_function_publishes_the_kpis_as_metrics(athena, context, monkeypatch):
    fake, root = athena
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    out = io.StringIO()
    fn = load_handler("kpi")
    fn.metrics._stream = out
    result = fn.lambda_handler({"until": "2026-10-10"}, context)
    assert (result["since"], result["until"]) == ("2026-09-13", "2026-10-10")
    emf = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    values = {k: v[0] if isinstance(v, list) else v for doc in emf for k, v in doc.items()
              if k in result["metrics"] or k == "KpiBytesScanned"}
    units = {m["Name"]: m.get("Unit") for doc in emf for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert units["CrossPlatformShare"] == "Percent" and units["KpiBytesScanned"] == "Bytes"
    direct = kpi.run_report(engines.DuckDBEngine(str(root)), daily.params_for({"until": "2026-10-10"}))
    assert values["CrossPlatformShare"] == pytest.approx(direct["headline"]["cross_share_last_week"] * 100)
    assert values["MedianDaysToConversion"] == pytest.approx(direct["headline"]["median_days_to_conversion"])
    assert values["RetentionUpliftD7"] == pytest.approx(direct["headline"]["d7_uplift"] * 100)
    assert values["KpiBytesScanned"] == 1000 * len(kpi.KPIS)
    assert "RetentionD30Cross" not in values  # a 28-day window has nobody eligible on day 30: left out


def test_a_bad_until_is_refused_before_any_query(athena):
    with pytest.raises(kpi.KpiError):
        daily.params_for({"until": "yesterday"})
