"""Load: a sustained run against the local gateway, and the same pushes through the handler in-process, to
separate the code's own cost from the local stand-ins' (moto over HTTP, the gateway, the client).

The in-process run also measures what the cost model needs: AWS requests per push, the time spent in them,
the bytes logged per push at the deployed log level, and the sizes of the items a push writes.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import logging
import os
import subprocess
import sys
import time

from devstack import faults
from devstack.simulator import http_event
from reliability.harness import OA, ms, percentile
from reliability.registry import Run, scenario


@scenario("load_gateway", "load", "Sustained pushes over HTTP through the local gateway (async client)")
def load_gateway(run: Run) -> None:
    h = run.harness
    acct = h.accounts["accounts"][OA]
    seconds, conc = run.size(5, 60), 16
    proc = subprocess.run(
        [sys.executable, "-m", "reliability.load_client", h.gateway, OA, acct["token"],
         acct.get("encoding_aes_key", ""), str(seconds), str(conc)],
        capture_output=True, text=True, timeout=seconds + 120, cwd=os.getcwd(), check=False)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-800:])
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    run.figures.update(doc)
    run.check("pushes were sent", doc["pushes"] > 0, doc["pushes"])
    run.check("no errors, no 5xx", doc["errors"] == 0, doc["statuses"])
    run.check("p99 inside WeChat's 5 s", doc["p99_ms"] < 4500, doc["p99_ms"])


class _Bytes(io.TextIOBase):
    def __init__(self) -> None:
        self.n = 0

    def write(self, s: str) -> int:
        self.n += len(s.encode("utf-8"))
        return len(s)


def item_size(item: dict) -> int:
    """DynamoDB's item size: attribute names plus values (numbers ~ digits/2 + 1, sets and maps summed)."""

    def size(v) -> int:
        if isinstance(v, bool) or v is None:
            return 1
        if isinstance(v, int | float):
            return len(str(v).lstrip("-").replace(".", "")) // 2 + 1
        if isinstance(v, str):
            return len(v.encode())
        if isinstance(v, bytes | bytearray):
            return len(v)
        if isinstance(v, dict):
            return 3 + sum(len(k.encode()) + size(x) + 1 for k, x in v.items())
        if isinstance(v, list | set | frozenset | tuple):
            return 3 + sum(size(x) + 1 for x in v)
        return len(str(v).encode())

    return sum(len(k.encode()) + size(v) for k, v in item.items())


@scenario("load_in_process", "load", "The same pushes through the handler in-process: the code's own cost")
def load_in_process(run: Run) -> None:
    from devstack.gateway import LambdaContext, load_function, routes_from_template

    h = run.harness
    route = next(r for r in routes_from_template() if r.template == "/wechat/oa/{app_id}")
    handler = load_function(route.function)
    sim = h.simulator(OA)
    n = run.size(300, 3000)
    people = [f"oInproc{i:05d}".ljust(28, "x") for i in range(50)]
    for p in people:  # first contacts first: the measured pushes are repeat messages (the common case)
        handler(http_event("POST", OA, *_q(sim.push(sim.text(p, "hi"), "plain"))), LambdaContext("load", 6))
    total, aws_s, calls, lat, errors = 0.0, 0.0, {}, [], 0
    for i in range(n):
        push = sim.push(sim.text(people[i % 50], f"in-process {i}"), "safe")  # plain mode adds a PutItem (PUSHQ#)
        event = http_event("POST", OA, *_q(push))
        tap = faults.reset_thread_tap()
        start = time.perf_counter()
        out = handler(event, LambdaContext("load", 6))
        took = time.perf_counter() - start
        errors += out["statusCode"] != 200  # the stand-in timing out: counted, not hidden
        total, aws_s = total + took, aws_s + tap.seconds
        lat.append(took - tap.seconds)
        for k, v in tap.calls.items():
            calls[k] = calls.get(k, 0) + v
    log_bytes = _log_bytes_per_push(handler, sim, people)
    idents = [i for i in h.items() if i["pk"] in {f"ID#{OA}#{p}" for p in people}]
    journeys = [i for i in h.items() if str(i.get("sk", "")).startswith("EV#")][:500]
    run.figures.update(
        pushes=n, errors=errors, code_ms_p50=ms(percentile(lat, 50)), code_ms_p99=ms(percentile(lat, 99)),
        code_ms_mean=ms(sum(lat) / n), stand_in_ms_mean=ms(aws_s / n), pushes_per_s_one_thread=round(n / total),
        aws_requests_per_push={k: round(v / n, 3) for k, v in sorted(calls.items())},
        log_bytes_per_push=log_bytes,
        identity_item_bytes=max(item_size(i) for i in idents) if idents else 0,
        journey_item_bytes=round(sum(item_size(i) for i in journeys) / max(1, len(journeys))))
    dynamo = sum(v for k, v in calls.items() if k.startswith("dynamodb.")) / n
    run.check("one DynamoDB request per repeat push", dynamo <= 1.05, round(dynamo, 3))
    run.check("at most 1% errors (stand-in timeouts)", errors <= n / 100, errors)
    run.check("code p99 well inside the budget", percentile(lat, 99) < 0.5, ms(percentile(lat, 99)))


def _q(push) -> tuple[dict, str]:
    return push.query, push.body


def _log_bytes_per_push(handler, sim, people: list[str], n: int = 50) -> float:
    """Bytes the handler prints per push at INFO (the deployed level): its log lines and its metrics."""
    service = logging.getLogger(os.environ.get("POWERTOOLS_SERVICE_NAME", "wxloop"))
    counter = _Bytes()
    saved = [(hd, getattr(hd, "stream", None)) for hd in service.handlers]
    level, metrics_off = service.level, os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)
    # the handler's metrics read the switch when its module loaded: publish them as deployed (EMF lines)
    metrics = inspect.unwrap(handler).__globals__.get("metrics")
    metrics_was = getattr(metrics, "disabled", None)
    try:
        if metrics_was is not None:
            metrics.disabled = False
        service.setLevel(logging.INFO)
        for hd, _ in saved:
            if hasattr(hd, "stream"):
                hd.stream = counter
        with contextlib.redirect_stdout(counter):
            for i in range(n):
                push = sim.push(sim.text(people[i % len(people)], f"log {i}"), "plain")
                handler(http_event("POST", OA, *_q(push)), _ctx())
    finally:
        if metrics_was is not None:
            metrics.disabled = metrics_was
        if metrics_off is not None:
            os.environ["POWERTOOLS_METRICS_DISABLED"] = metrics_off
        service.setLevel(level)
        for hd, stream in saved:
            if stream is not None:
                hd.stream = stream
    return round(counter.n / n, 1)


def _ctx():
    from devstack.gateway import LambdaContext

    return LambdaContext("load", 6)
