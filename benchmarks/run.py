"""``make bench``: run every benchmark and write one JSON document.

    python benchmarks/run.py [--build-dir .aws-sam/build] [--out benchmarks/results.json] [--only NAME]
                             [--strict]

Each ``benchmarks/bench_*.py`` module has ``run() -> dict``; its result goes under its name. A summary of
the budgets is printed; ``--strict`` exits 1 when one is missed (timings are noisy on shared machines, so
the default only reports).
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BENCHES = {
    "webhook_warm_cpu": "benchmarks.bench_webhook_cpu",
    "dynamodb_requests": "benchmarks.bench_dynamo_requests",
    "mp_push_dynamodb_requests": "benchmarks.bench_mp_push_requests",
    "cold_start_init": "benchmarks.bench_cold_start",
    "rules_matching": "benchmarks.bench_rules",
    "token_access": "benchmarks.bench_tokens",
    "campaign_planning": "benchmarks.bench_planning",
    "mp_api": "benchmarks.bench_mp_api",
    "mp_api_cold_init": "benchmarks.bench_mp_api_cold",
    "kpi_report": "benchmarks.bench_kpi",
    "reward_requests": "benchmarks.bench_rewards",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=str(ROOT / ".aws-sam" / "build"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"))
    parser.add_argument("--only", action="append", choices=sorted(BENCHES), help="run only this one (repeatable)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a budget is missed")
    args = parser.parse_args(argv)

    results: dict[str, dict] = {}
    for name, module in BENCHES.items():
        if args.only and name not in args.only:
            continue
        started = time.perf_counter()
        try:
            bench = importlib.import_module(module)
            result = bench.run(args.build_dir) if name in ("cold_start_init", "mp_api_cold_init") else bench.run()
        except Exception as exc:  # one broken benchmark is reported, and the others still run
            result = {"error": f"{type(exc).__name__}: {exc}"[:300], "within_budget": False}
        result["seconds"] = round(time.perf_counter() - started, 1)
        results[name] = result
        verdict = {True: "within budget", False: "OVER BUDGET"}.get(result.get("within_budget"), "no budget")
        print(f"{name:20s} {verdict:14s} {_headline(result)}", flush=True)

    doc = {"python": platform.python_version(), "machine": platform.machine(), "system": platform.system(),
           "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": results}
    Path(args.out).write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    missed = [n for n, r in results.items() if r.get("within_budget") is False]
    return 1 if args.strict and missed else 0


def _headline(r: dict) -> str:
    if "error" in r:
        return f"failed: {r['error']}"
    if "ratio" in r:
        keys = [k for k in r if k not in ("ratio", "budget_ratio") and isinstance(r[k], (int, float))
                and not isinstance(r[k], bool)][:2]
        return f"ratio {r['ratio']} (budget {r.get('budget_ratio')}); " + ", ".join(f"{k} {r[k]}" for k in keys)
    if "cases" in r:
        return ", ".join(f"{c} {v['dynamodb_requests']}" for c, v in r["cases"].items() if "budget" in v)
    if "us_per_message_median" in r:
        return f"{r['us_per_message_median']} us/message median over {r['rules']} rules (budget {r['budget_us']})"
    return ", ".join(f"{k} {v}" for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool))


if __name__ == "__main__":
    sys.exit(main())
