"""Cold start, honestly: INIT plus the first push (what a person waits for), beside a bare boto3 client plus
one request, both against the same local DynamoDB, each in a fresh interpreter; samples alternate.

This measures the source tree with the dev environment's packages; ``benchmarks/bench_cold_start.py``
measures the built artifact (``make bench``). The 1.2x target is reported, not enforced here.

Both sides run from compiled bytecode, as deployed: ``sam build`` ships the layer's and the function's
``.pyc`` and site-packages have theirs, so a sample that compiled the source tree would charge the webhook
a cost Lambda never pays. The bytecode goes to a scratch ``PYTHONPYCACHEPREFIX``, written by a warm-up run.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile

from reliability.harness import OA, repo_path
from reliability.registry import Run, scenario

TARGET_RATIO = 1.2

WEBHOOK = """
import json, os, sys, time
sys.path[:0] = [{fn!r}, {layers!r}]
event = json.loads(os.environ["BENCH_EVENT"])
t0 = time.perf_counter()
import app
t1 = time.perf_counter()
event["requestContext"]["timeEpoch"] = int(time.time() * 1000)
class Ctx:
    function_name, memory_limit_in_mb, aws_request_id = "cold", 512, "r"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cold"
sys.stdout, real = open(os.devnull, "w"), sys.stdout
out = app.lambda_handler(event, Ctx())
t2 = time.perf_counter()
sys.stdout = real
print(json.dumps({{"init": t1 - t0, "first": t2 - t1, "status": out["statusCode"]}}))
"""

BASELINE = """
import json, os, time
t0 = time.perf_counter()
import boto3
c = boto3.client("dynamodb")
t1 = time.perf_counter()
c.get_item(TableName=os.environ["TABLE_NAME"], Key={"pk": {"S": "x"}, "sk": {"S": "x"}})
t2 = time.perf_counter()
print(json.dumps({"init": t1 - t0, "first": t2 - t1, "status": 200}))
"""


def _sample(code: str, env: dict) -> dict:
    """One fresh interpreter: its INIT and first-request wall times, and the CPU seconds it used in all (on a
    loaded machine the CPU time is the steadier figure: it leaves out the time spent waiting for a core)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode:
        raise RuntimeError(out.stderr[-600:])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "cpu": cpu}


@scenario("cold_start", "cold start", "INIT + first push of oa_webhook vs a bare boto3 client + one request")
def cold_start(run: Run) -> None:
    h = run.harness
    sim = h.simulator(OA)
    from devstack.simulator import http_event

    env = {**os.environ, "POWERTOOLS_LOG_LEVEL": "CRITICAL", "PYTHONPYCACHEPREFIX": tempfile.mkdtemp(prefix="wxloop-pyc-")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    code = WEBHOOK.format(fn=str(repo_path("functions", "oa_webhook")), layers=str(repo_path("layers")))
    hooks, bases = [], []
    openid = "oColdStart000000000000000001"
    push = sim.push(sim.text(openid, "hi"), "plain")
    env["BENCH_EVENT"] = json.dumps(http_event("POST", OA, push.query, push.body))
    try:
        _sample(code, env), _sample(BASELINE, env)  # first contact and the bytecode once, outside the samples
        for i in range(run.size(5, 11)):  # interleaved, so the machine's load falls on both alike
            push = sim.push(sim.text(openid, f"cold {i}"), "plain")
            env["BENCH_EVENT"] = json.dumps(http_event("POST", OA, push.query, push.body))
            hooks.append(_sample(code, env))
            bases.append(_sample(BASELINE, env))
    finally:
        shutil.rmtree(env["PYTHONPYCACHEPREFIX"], ignore_errors=True)

    def med(rows: list[dict], key: str) -> float:
        return statistics.median(r[key] if key != "both" else r["init"] + r["first"] for r in rows)

    ratio = med(hooks, "both") / med(bases, "both")
    cpu_ratio = med(hooks, "cpu") / med(bases, "cpu")
    run.figures.update(samples=len(hooks), webhook_init_ms=round(med(hooks, "init") * 1000),
                       webhook_first_push_ms=round(med(hooks, "first") * 1000),
                       webhook_total_ms=round(med(hooks, "both") * 1000),
                       baseline_init_ms=round(med(bases, "init") * 1000),
                       baseline_first_request_ms=round(med(bases, "first") * 1000),
                       baseline_total_ms=round(med(bases, "both") * 1000), ratio=round(ratio, 2),
                       webhook_cpu_ms=round(med(hooks, "cpu") * 1000), baseline_cpu_ms=round(med(bases, "cpu") * 1000),
                       cpu_ratio=round(cpu_ratio, 2), within_target=ratio <= TARGET_RATIO)
    run.check("every cold push answered 200", all(r["status"] == 200 for r in hooks), [r["status"] for r in hooks])
