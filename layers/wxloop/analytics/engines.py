"""Query engines for the KPI runner: DuckDB over the Parquet lake, Athena over the Glue table.

Both bind the names the SQL uses: ``journey`` (the lake, with its ``dt`` partition) and ``erased``.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from wxloop.analytics.lake import ERASED_DIR, JOURNEY_DIR


class EngineError(RuntimeError):
    """A query the engine could not run (the message says which and why)."""


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


class DuckDBEngine:
    """DuckDB in process, reading ``<lake>/journey/dt=*/*.parquet`` (a folder, or an ``s3://`` prefix when
    DuckDB's httpfs extension is available) and ``<lake>/erased/*.parquet`` when present."""

    name = "duckdb"

    def __init__(self, lake: str, *, threads: int | None = None, memory_limit: str = "1GB") -> None:
        import duckdb

        self.lake = lake.rstrip("/")
        self.con = duckdb.connect(":memory:")
        self.con.execute(f"SET memory_limit = '{_quote(memory_limit)}'")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        remote = self.lake.startswith("s3://")
        if remote:
            self.con.execute("LOAD httpfs")
        journey = f"{self.lake}/{JOURNEY_DIR}/*/*.parquet"
        if not remote and not any(Path(self.lake, JOURNEY_DIR).glob("dt=*/*.parquet")):
            raise EngineError(f"no journey data under {self.lake}/{JOURNEY_DIR}/ (run `wxloop demo traffic`?)")
        # a view cannot take bound parameters: the operator's own path goes in as an escaped literal
        self.con.execute(
            "CREATE VIEW journey AS SELECT * FROM read_parquet("  # noqa: S608
            f"'{_quote(journey)}', hive_partitioning = true, hive_types = {{'dt': VARCHAR}}, union_by_name = true)")
        erased = Path(self.lake, ERASED_DIR)
        if not remote and any(erased.glob("*.parquet")):
            glob = _quote(f"{erased}/*.parquet")  # escaped literal, as above
            self.con.execute(f"CREATE VIEW erased AS SELECT person FROM read_parquet('{glob}')")  # noqa: S608
        else:
            self.con.execute("CREATE VIEW erased AS SELECT CAST(NULL AS VARCHAR) AS person WHERE 1 = 0")

    def materialize(self, name: str, sql: str) -> None:
        """Keep a query's result as the temporary table ``name`` (the KPI prelude's tables)."""
        if not name.isidentifier():
            raise EngineError(f"not a table name: {name!r}")
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
        except Exception as exc:
            raise EngineError(f"duckdb: {exc}") from exc

    def query(self, sql: str) -> list[dict[str, Any]]:
        try:
            cur = self.con.execute(sql)
        except Exception as exc:
            raise EngineError(f"duckdb: {exc}") from exc
        names = [d[0] for d in cur.description]
        return [{n: _plain(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


def _quote(text: str) -> str:
    return text.replace("'", "''")


_ATHENA_INT = {"tinyint", "smallint", "integer", "int", "bigint"}
_ATHENA_FLOAT = {"double", "float", "real", "decimal"}


def _athena_value(raw: str | None, kind: str) -> Any:
    if raw is None:
        return None
    kind = kind.lower().split("(")[0]
    if kind in _ATHENA_INT:
        return int(raw)
    if kind in _ATHENA_FLOAT:
        return float(raw)
    if kind == "boolean":
        return raw == "true"
    return raw


class AthenaEngine:
    """Athena in a workgroup (which fixes the results bucket and the bytes-scanned limit), tables in
    ``database``. Queries run one after another; each is polled until it ends or ``timeout`` passes."""

    name = "athena"

    def __init__(self, workgroup: str, database: str, *, client: Any = None, timeout: float = 240,
                 poll: float = 0.25) -> None:
        self.workgroup, self.database = workgroup, database
        self.timeout, self.poll = timeout, poll
        if client is None:
            from wxloop.adapters import aws

            client = aws.client("athena")
        self.client = client
        self.bytes_scanned = 0

    def query(self, sql: str) -> list[dict[str, Any]]:
        qid = self.client.start_query_execution(
            QueryString=sql, WorkGroup=self.workgroup,
            QueryExecutionContext={"Database": self.database})["QueryExecutionId"]
        deadline, wait = time.monotonic() + self.timeout, self.poll
        while True:
            ex = self.client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
            state = ex["Status"]["State"]
            if state == "SUCCEEDED":
                self.bytes_scanned += int(ex.get("Statistics", {}).get("DataScannedInBytes", 0))
                break
            if state in ("FAILED", "CANCELLED"):
                raise EngineError(f"athena {qid}: {state}: {ex['Status'].get('StateChangeReason', '')}")
            if time.monotonic() > deadline:
                self.client.stop_query_execution(QueryExecutionId=qid)
                raise EngineError(f"athena {qid}: still running after {self.timeout:.0f} s")
            time.sleep(wait)
            wait = min(wait * 2, 4.0)  # short queries answer in a second or two; long ones need no busy polling
        return self._rows(qid)

    def _rows(self, qid: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        token, columns, first = None, None, True
        while True:
            kwargs = {"QueryExecutionId": qid, **({"NextToken": token} if token else {})}
            page = self.client.get_query_results(**kwargs)
            rs = page["ResultSet"]
            if columns is None:
                columns = [(c["Name"], c["Type"]) for c in rs["ResultSetMetadata"]["ColumnInfo"]]
            data = rs.get("Rows", [])
            if first:
                data, first = data[1:], False  # the first row of the first page repeats the column names
            for row in data:
                values = [d.get("VarCharValue") for d in row["Data"]]
                rows.append({n: _athena_value(v, k) for (n, k), v in zip(columns, values, strict=True)})
            token = page.get("NextToken")
            if not token:
                return rows
