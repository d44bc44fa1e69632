"""(c) Cold INIT of the built oa_webhook artifact vs ``import boto3; boto3.client("dynamodb")``.

Each sample is a fresh interpreter (``python -S``: no site-packages, so nothing leaks in from the dev
environment) that times, in-process, exactly what Lambda's INIT phase runs: importing the handler module
from the built function + layer (with the ``.pyc`` that ``sam build`` precompiled), module-level set-up
included. The baseline is the same interpreter importing boto3 and creating a DynamoDB client.
Samples alternate between the two; medians are reported. Budget: artifact <= 1.2x baseline.

The Lambda layer is built for arm64. On another machine the layer's native wheels (cryptography,
pydantic-core, ...) cannot load, so the layer is rebuilt once for this machine's platform with the same
Makefile (same sources, same precompiled ``.pyc``); the function artifact is used as built.

Also reported (not budgeted): the first request after INIT (botocore client creation, ~all of it; the
DynamoDB call itself stubbed), which Lambda bills to the first invocation, and INIT + first request beside
the baseline: the whole cold path, since the baseline creates its client inside its measured span while
the webhook creates its DynamoDB client on the first push that writes (URL verification and rejected
requests never pay for it), before it checks its time budget.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from benchmarks._env import OA_AES_KEY, OA_APP, OA_TOKEN, ROOT, dumps, setup_env

ARTIFACT = """
import sys, time, json, os
sys.path[:0] = [{fn!r}, {layer!r}]
sys.path.append({purelib!r})  # where Lambda's runtime provides boto3/botocore, after the layer
t0 = time.perf_counter()
import app
t1 = time.perf_counter()
first = None
if {first_request!r}:
    from wxloop.adapters import aws
    class Stub:
        def __init__(self, real): self.real = real
        def update_item(self, **kw): return {{"Attributes": {{"uid": {{"S": "u1"}}}}}}
        def get_item(self, **kw): return {{}}
    t2 = time.perf_counter()
    aws._clients["dynamodb"] = Stub(aws.client("dynamodb"))
    event = json.loads(os.environ["BENCH_EVENT"])
    event["requestContext"]["timeEpoch"] = int(time.time() * 1000)
    class Ctx:
        function_name, memory_limit_in_mb, aws_request_id = "bench", 512, "r"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    sys.stdout, logs = open(os.devnull, "w"), sys.stdout  # EMF metrics and logs
    out = app.lambda_handler(event, Ctx())
    first = time.perf_counter() - t2
    sys.stdout = logs
    assert out["statusCode"] == 200, out
print(json.dumps({{"init": t1 - t0, "first_request": first}}))
"""

BASELINE = """
import sys, time, json
sys.path.append({purelib!r})
t0 = time.perf_counter()
import boto3
boto3.client("dynamodb")
print(json.dumps({{"init": time.perf_counter() - t0}}))
"""


def _host_layer(build_dir: Path, work: Path) -> Path:
    """The built layer if this machine can load it, else the same layer rebuilt for this machine."""
    built = build_dir / "WxloopLayer" / "python"
    if platform.machine() in ("aarch64", "arm64") and sys.platform.startswith("linux"):
        return built
    target = work / "layer"
    plat = f"manylinux2014_{platform.machine()}"
    built_here = subprocess.run(
        ["make", "-s", "-C", str(ROOT / "layers"), "build-WxloopLayer", f"ARTIFACTS_DIR={target}",
         f"PLATFORM={plat}", f"PY313={sys.executable}"], capture_output=True, text=True, check=False)
    if built_here.returncode != 0:
        raise RuntimeError(f"layer build for {plat} failed:\n{built_here.stderr[-2000:]}")
    return target / "python"


def _sample(code: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True,
                         check=False, cwd=tempfile.gettempdir())
    if out.returncode != 0:
        raise RuntimeError(f"cold-start sample failed:\n{out.stdout[-3000:]}\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(build_dir: str | Path = ROOT / ".aws-sam" / "build", samples: int = 15) -> dict:
    build_dir = Path(build_dir).resolve()  # the samples run in another working directory
    function = build_dir / "OaWebhookFunction"
    if not (function / "app.py").exists():
        return {"name": "cold_start_init", "skipped": f"no built artifact in {build_dir}: run `make build`"}
    env = dict(setup_env())
    from devstack.simulator import Simulator, http_event

    sim = Simulator(OA_APP, OA_TOKEN, OA_AES_KEY)
    push = sim.push(sim.text("oColdStart", "hello"), "safe")
    env.update({k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")})
    env.update(PYTHONDONTWRITEBYTECODE="1", RULES_REFRESH_SECONDS="3600",
               BENCH_EVENT=json.dumps(http_event("POST", OA_APP, push.query, push.body)))
    env.pop("RULES_FILE", None)  # the deployed function has no rule file; rules come from the table
    purelib = sysconfig.get_paths()["purelib"]
    work = Path(tempfile.mkdtemp(prefix="wxloop-cold-"))
    try:
        layer = _host_layer(build_dir, work)
        artifact = ARTIFACT.format(fn=str(function), layer=str(layer), purelib=purelib, first_request=False)
        with_first = ARTIFACT.format(fn=str(function), layer=str(layer), purelib=purelib, first_request=True)
        baseline = BASELINE.format(purelib=purelib)
        _sample(artifact, env), _sample(baseline, env)  # warm the OS file cache for both
        arts, bases, firsts = [], [], []
        for _ in range(samples):
            arts.append(_sample(artifact, env)["init"])
            bases.append(_sample(baseline, env)["init"])
        for _ in range(max(3, samples // 3)):
            firsts.append(_sample(with_first, env)["first_request"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    art, base, first = statistics.median(arts), statistics.median(bases), statistics.median(firsts)
    ratio = art / base
    return {"name": "cold_start_init", "unit": "ms", "artifact_init": round(art * 1000, 1),
            "baseline_boto3_client": round(base * 1000, 1), "ratio": round(ratio, 2), "budget_ratio": 1.2,
            "within_budget": ratio <= 1.2, "samples": samples,
            "first_request_after_init": round(first * 1000, 1),
            "init_plus_first_request_ratio": round((art + first) / base, 2),
            "layer": "as built (arm64)" if layer.is_relative_to(build_dir) else
                     f"rebuilt for {platform.machine()} from the same Makefile"}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-dir", default=str(ROOT / ".aws-sam" / "build"))
    print(dumps(run(parser.parse_args().build_dir)))
