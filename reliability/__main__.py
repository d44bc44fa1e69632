"""``python -m reliability [--short] [--only NAME ...] [--out FILE] [--readme]``: run the scenarios against
an in-process local stack, print the table, write the JSON report (and the table in docs/reliability.md)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
import warnings

from reliability.registry import execute, load_all
from reliability.report import REPORT_DOC, render_table, update_report_doc

DEFAULT_OUT = "benchmarks/reliability.json"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="reliability", description=__doc__.splitlines()[0])
    p.add_argument("--short", action="store_true", help="the CI version: seconds per scenario")
    p.add_argument("--only", nargs="*", default=None, help="scenario names (default: all)")
    p.add_argument("--out", default=None, help=f"JSON report (default {DEFAULT_OUT} for a full run)")
    p.add_argument("--readme", action="store_true", help="write the table into docs/reliability.md")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    warnings.filterwarnings("ignore")
    scenarios = load_all()
    chosen = [scenarios[n] for n in args.only] if args.only else list(scenarios.values())
    harness = None
    if any(s.needs_stack for s in chosen):
        from reliability.harness import Harness

        harness = Harness().start()
    results = []
    try:
        for sc in chosen:
            print(f"… {sc.name}", file=sys.stderr, flush=True)
            results.append(execute(sc, harness, short=args.short))
            print(f"  {'ok' if results[-1]['ok'] else 'FAILED'} in {results[-1]['seconds']} s", file=sys.stderr)
            print(json.dumps(results[-1], default=str)[:4000], file=sys.stderr, flush=True)  # kept if the run is cut short
    finally:
        if harness:
            harness.stop()
    report = {"run": "short" if args.short else "full", "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "python": platform.python_version(), "machine": platform.machine(),
              "cpus": os.cpu_count(), "aws_read_timeout_s": os.environ.get("WXLOOP_AWS_READ_TIMEOUT"), "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
              "ok": all(r["ok"] for r in results), "scenarios": results}
    table = render_table(report)
    print(table)
    for r in results:
        for c in r["checks"]:
            if not c["ok"]:
                print(f"FAILED {r['scenario']}: {c['check']}: {c['detail']}")
    out = args.out or (None if args.short or args.only else DEFAULT_OUT)
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1, ensure_ascii=False, default=str)
            fh.write("\n")
    if args.readme:
        update_report_doc(REPORT_DOC, table)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
