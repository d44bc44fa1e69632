"""Benchmark: the full KPI report (every KPI query) over 1M journey events of 100k persons on DuckDB.

Budget: <= 10 s and <= 1 GiB peak memory. The lake is generated first (``wxloop demo traffic``'s generator,
not timed); the report then runs in a fresh child process, so its peak RSS is the report's alone. Also
reports the lake's Parquet size, the bytes one report reads (the columns the SQL touches), and the Athena
cost of the same report at 100M events (bytes scanned x $5 per TB).

    python benchmarks/bench_kpi.py          # prints JSON
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "layers") not in sys.path:
    sys.path.insert(0, str(ROOT / "layers"))

PERSONS, DAYS, SEED = 100_000, 90, 42
BUDGET_SECONDS, BUDGET_BYTES = 10.0, 1 << 30
ATHENA_USD_PER_TB = 5.0
START = date(2026, 7, 1)
CHILD = """
import json, resource, sys, time
from datetime import date
sys.path.insert(0, {layers!r})
from wxloop.analytics import engines, kpi
t = time.perf_counter()
engine = engines.DuckDBEngine({lake!r}, memory_limit="900MB")
report = kpi.run_report(engine, kpi.KpiParams(date.fromisoformat({since!r}), date.fromisoformat({until!r})))
use = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"seconds": time.perf_counter() - t, "cpu_seconds": use.ru_utime + use.ru_stime}}))
"""


def _scanned_bytes(lake: Path) -> tuple[int, int]:
    """(all Parquet bytes, bytes of the columns the KPI SQL reads), from the files' metadata."""
    import pyarrow.parquet as pq

    from wxloop.analytics.kpi import render

    sql = render("funnel", _params())
    total = used = 0
    for path in lake.glob("journey/dt=*/*.parquet"):
        meta = pq.ParquetFile(path).metadata
        total += path.stat().st_size
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            for c in range(rg.num_columns):
                col = rg.column(c)
                if f" {col.path_in_schema}" in sql or f".{col.path_in_schema}" in sql:
                    used += col.total_compressed_size
    return total, used


def _params():
    from datetime import timedelta

    from wxloop.analytics.kpi import KpiParams

    return KpiParams(START, START + timedelta(days=DAYS - 1))


def run() -> dict:
    from wxloop.analytics import demo, kpi, lake

    with tempfile.TemporaryDirectory(prefix="wxloop-kpi-bench-") as tmp:
        t = time.perf_counter()
        traffic = demo.generate(PERSONS, DAYS, SEED, start=START)
        events = traffic.write(lake.local_writer(tmp))
        generate_seconds = time.perf_counter() - t
        del traffic
        total, used = _scanned_bytes(Path(tmp))
        p = _params()
        code = CHILD.format(layers=str(ROOT / "layers"), lake=tmp, since=p.since.isoformat(), until=p.until.isoformat())
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
        child = json.loads(out.stdout.strip().splitlines()[-1])
    scale = 100_000_000 / events
    scanned_100m = used * scale * len(kpi.KPIS)
    return {
        "events": events, "persons": PERSONS, "queries": len(kpi.KPIS),
        "report_seconds": round(child["seconds"], 2), "budget_seconds": BUDGET_SECONDS,
        "report_cpu_seconds": round(child["cpu_seconds"], 2), "load_average_1m": round(os.getloadavg()[0], 1),
        "peak_rss_mib": round(peak / 2**20, 1), "budget_mib": BUDGET_BYTES >> 20,
        "peak_rss_note": "max RSS of any child so far" if before else "report process",
        "generate_seconds": round(generate_seconds, 1),
        "parquet_mib": round(total / 2**20, 1), "bytes_per_event": round(total / events, 1),
        "columns_read_mib_per_query": round(used / 2**20, 1),
        "athena_100m_tb_scanned": round(scanned_100m / 1e12, 4),
        "athena_100m_usd": round(scanned_100m / 1e12 * ATHENA_USD_PER_TB, 2),
        "within_budget": child["seconds"] <= BUDGET_SECONDS and peak <= BUDGET_BYTES,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2, sort_keys=True))
