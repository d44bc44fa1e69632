"""The scenario registry: one function per scenario, each returning figures and checks.

A scenario is ``fn(run: Run) -> None``; it fills ``run.figures`` (numbers for the report) and calls
``run.check(name, passed, detail)`` for every promise it tests. A scenario that raises fails with the
exception as its detail. New parts of wxloop add their scenarios by decorating one function in a module
listed in ``MODULES``.
"""

from __future__ import annotations

import importlib
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Modules whose import registers scenarios, in report order.
MODULES = ("reliability.storm", "reliability.faults", "reliability.races", "reliability.security",
           "reliability.fuzz", "reliability.api_schema", "reliability.load", "reliability.cold_start",
           "reliability.cost")


@dataclass
class Run:
    """What a scenario gets: the stack harness, whether this is the short (CI) run, and where to report."""

    name: str
    harness: Any
    short: bool
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)

    def size(self, short: int, full: int) -> int:
        return short if self.short else full

    def check(self, name: str, passed: bool, detail: Any = "") -> bool:
        self.checks.append({"check": name, "ok": bool(passed), "detail": detail})
        return bool(passed)


@dataclass(frozen=True)
class Scenario:
    name: str
    section: str
    summary: str
    fn: Callable[[Run], None]
    needs_stack: bool = True


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, section: str, summary: str, *, needs_stack: bool = True):
    """Register ``fn`` as scenario ``name`` under report ``section`` (storm, faults, races, ...)."""

    def register(fn: Callable[[Run], None]) -> Callable[[Run], None]:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name!r} registered twice")
        SCENARIOS[name] = Scenario(name, section, summary, fn, needs_stack)
        return fn

    return register


def load_all() -> dict[str, Scenario]:
    for module in MODULES:
        importlib.import_module(module)
    return SCENARIOS


def execute(sc: Scenario, harness: Any, *, short: bool) -> dict[str, Any]:
    """Run one scenario; its result as the report stores it (``ok`` only when every check passed)."""
    run = Run(sc.name, harness, short)
    start = time.perf_counter()
    try:
        sc.fn(run)
    except Exception as exc:  # a crash is a failed scenario with its traceback, not a failed runner
        run.check("ran to the end", False, "".join(traceback.format_exception_only(exc)).strip())
        run.figures["traceback"] = traceback.format_exc(limit=8)
    ok = bool(run.checks) and all(c["ok"] for c in run.checks)
    if harness is not None:
        harness.results[sc.name] = run.figures  # later scenarios (the cost model) read earlier figures
    return {"scenario": sc.name, "section": sc.section, "summary": sc.summary, "ok": ok,
            "seconds": round(time.perf_counter() - start, 2), "figures": run.figures, "checks": run.checks}
