"""``wxloop kpi`` and ``wxloop demo traffic`` (the main CLI dispatches here).

    wxloop kpi [--since DATE] [--until DATE] [--engine duckdb|athena] [--format table|json|html]
               [--lake PATH] [-o FILE] [--conversion TYPE] [--registration TYPE ...]
               [--workgroup NAME] [--database NAME]
    wxloop demo traffic [--persons N] [--days D] [--seed S] [--start DATE] [--lake PATH]

Dates are Asia/Shanghai days. The default window is the 28 days up to yesterday. ``--lake`` is a folder
(default ``.local/lake``, what ``make run`` writes) or an ``s3://`` prefix; Athena reads the Glue table in
``--database`` (env ``LAKE_DATABASE``) through ``--workgroup`` (env ``ATHENA_WORKGROUP``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import TextIO

from wxloop.settings import settings

DEFAULT_LAKE = os.path.join(".local", "lake")


def _day(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a date like 2026-10-31") from None


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1 or value > 10_000_000:
        raise argparse.ArgumentTypeError("between 1 and 10,000,000")
    return value


def shanghai_today() -> date:
    return (datetime.now(UTC) + timedelta(hours=8)).date()


def add_parsers(top) -> None:
    """Add ``kpi`` and ``demo`` to the CLI's top-level subparsers."""
    from wxloop.analytics.kpi import DEFAULT_CONVERSION, DEFAULT_REGISTRATION

    k = top.add_parser("kpi", help="the journey KPI report (DuckDB on the lake, or Athena)")
    k.set_defaults(command="report")
    k.add_argument("--since", type=_day, help="first day (default: 27 days before --until)")
    k.add_argument("--until", type=_day, help="last day (default: yesterday, Asia/Shanghai)")
    k.add_argument("--engine", choices=["duckdb", "athena"], default="duckdb")
    k.add_argument("--format", choices=["table", "json", "html"], default="table")
    k.add_argument("--lake", default=DEFAULT_LAKE, help="lake folder or s3:// prefix (duckdb)")
    k.add_argument("-o", "--output", help="write to this file instead of standard output")
    k.add_argument("--conversion", default=DEFAULT_CONVERSION, help="the conversion event type")
    k.add_argument("--registration", nargs="+", default=list(DEFAULT_REGISTRATION), help="registration event types")
    k.add_argument("--workgroup", default=settings().athena_workgroup or None, help="Athena workgroup")
    k.add_argument("--database", default=settings().lake_database or None, help="Glue database of the lake")
    k.add_argument("--no-progress", action="store_true", help="no progress bar on standard error")

    demo = top.add_parser("demo", help="synthetic data for trying the report")
    dsub = demo.add_subparsers(dest="command", required=True)
    t = dsub.add_parser("traffic", help="write synthetic journeys (with ground truth) into the lake")
    t.add_argument("--persons", type=_positive, default=5000)
    t.add_argument("--days", type=_positive, default=60)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--start", type=_day, help="first day (default: --days days before today)")
    t.add_argument("--lake", default=DEFAULT_LAKE, help="lake folder")
    t.add_argument("--conversion", default=DEFAULT_CONVERSION)


def _progress(enabled: bool):
    tty = sys.stderr.isatty()

    def show(done: int, total: int, what: str) -> None:
        if not enabled:
            return
        bar = "#" * (20 * done // total) + "." * (20 - 20 * done // total)
        end = "\n" if done == total or not tty else ""
        print(f"\r[{bar}] {done}/{total} {what:<24}", end=end, file=sys.stderr, flush=True)

    return show


def _engine(args):
    from wxloop.analytics import engines

    if args.engine == "athena":
        if not args.workgroup or not args.database:
            raise ValueError("--engine athena needs --workgroup and --database (or ATHENA_WORKGROUP, LAKE_DATABASE)")
        return engines.AthenaEngine(args.workgroup, args.database)
    return engines.DuckDBEngine(args.lake)


def kpi_report(args, out: TextIO) -> int:
    from wxloop.analytics import engines, kpi, report
    from wxloop.cli import EXIT_NO_MATCH, EXIT_OK, CliError

    until = args.until or shanghai_today() - timedelta(days=1)
    params = kpi.KpiParams(args.since or until - timedelta(days=27), until, conversion=args.conversion,
                           registration=tuple(args.registration))
    try:
        started = time.perf_counter()
        doc = kpi.run_report(_engine(args), params, _progress(not args.no_progress))
    except engines.EngineError as exc:
        raise CliError(str(exc), EXIT_NO_MATCH) from None
    doc["params"]["seconds"] = round(time.perf_counter() - started, 2)
    text = {"json": lambda d: json.dumps(d, indent=2, ensure_ascii=False, sort_keys=True) + "\n",
            "html": report.html, "table": report.text_tables}[args.format](doc)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(f"wrote {args.format} report to {args.output}", file=out)
    else:
        out.write(text)
    return EXIT_OK


def demo_traffic(args, out: TextIO) -> int:
    from wxloop.analytics import demo, lake
    from wxloop.analytics.kpi import KpiParams
    from wxloop.cli import EXIT_OK

    KpiParams(date(2000, 1, 1), date(2000, 1, 1), conversion=args.conversion)  # the same type check
    traffic = demo.generate(args.persons, args.days, args.seed, start=args.start, conversion=args.conversion)
    written = traffic.write(lake.local_writer(args.lake))
    end = traffic.start + timedelta(days=args.days - 1)
    print(f"wrote {written:,} events of {args.persons:,} persons ({traffic.start} .. {end}) to {args.lake}",
          file=out)
    print("ground truth: " + json.dumps(traffic.truth, sort_keys=True), file=out)
    print(f"report: wxloop kpi --since {traffic.start} --until {end} --format html -o kpi.html --lake {args.lake}",
          file=out)
    return EXIT_OK


COMMANDS = {("kpi", "report"): kpi_report, ("demo", "traffic"): demo_traffic}
