"""The report's Markdown table (one row per scenario: verdict, key figures) and its place in
``docs/reliability.md``."""

from __future__ import annotations

from pathlib import Path

from devstack.table import REPO_ROOT

REPORT_DOC = REPO_ROOT / "docs" / "reliability.md"
BEGIN = "<!-- reliability:begin (written by make reliability) -->"
END = "<!-- reliability:end -->"
SKIP = {"traceback", "statuses_by_fault", "cost"}


def _fmt(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render_table(report: dict) -> str:
    """A Markdown table of every scenario's verdict and figures."""
    lines = [f"Run: {report['run']}, {report['at']}, Python {report['python']} on {report['machine']}, "
             f"{report.get('cpus')} CPUs, load average {report.get('load_average_at_end')} at the end, "
             f"AWS read timeout {report.get('aws_read_timeout_s')} s against the stand-in.", "",
             "| Scenario | Section | Verdict | Figures |", "|---|---|---|---|"]
    for r in report["scenarios"]:
        figures = "; ".join(f"{k} {_fmt(v)}" for k, v in r["figures"].items() if k not in SKIP)
        failed = [c["check"] for c in r["checks"] if not c["ok"]]
        verdict = "pass" if r["ok"] else "FAIL: " + ", ".join(failed)
        lines.append(f"| `{r['scenario']}` | {r['section']} | {verdict} | {figures.replace('|', '/')} |")
    return "\n".join(lines)


NEW_DOC = """# Reliability figures

The last full run of `make reliability` (storms, faults, races, security, fuzz, load, cold start, cost);
`make reliability SHORT=1` is the version CI runs after `make test`. `benchmarks/reliability.json` holds the
same run with every figure.

"""


def update_report_doc(path: Path, table: str) -> None:
    """Replace the text between the markers with ``table``; a missing file is created with the markers, and
    an existing one without them gets them appended (nothing else in it is touched)."""
    text = path.read_text(encoding="utf-8") if path.exists() else NEW_DOC
    if BEGIN not in text or END not in text:
        text = f"{text.rstrip()}\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}", encoding="utf-8")
