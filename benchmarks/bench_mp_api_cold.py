"""Cold INIT of the mp_api function: a fresh interpreter times ``import app`` (what Lambda's INIT runs,
module-level set-up included: the config check and the resolver with its routes and models).

With a built artifact (``make build``) the function and the layer as ``sam build`` left them are used (the
layer rebuilt for this machine when it is not arm64, as in ``bench_cold_start``); without one, the source
tree (``functions/mp_api`` + ``layers``) with the dev environment's packages, reported as such. Beside it,
``import boto3; boto3.client("dynamodb")`` in the same kind of interpreter. Reported, no budget; medians.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from benchmarks._env import ROOT, dumps, setup_env

INIT = """
import sys, time, json
sys.path[:0] = [{fn!r}, {layer!r}]
sys.path.append({purelib!r})
t0 = time.perf_counter()
import app
print(json.dumps({{"init": time.perf_counter() - t0}}))
"""

BASELINE = """
import sys, time, json
sys.path.append({purelib!r})
t0 = time.perf_counter()
import boto3
boto3.client("dynamodb")
print(json.dumps({{"init": time.perf_counter() - t0}}))
"""


def _sample(code: str, env: dict) -> float:
    out = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True,
                         check=False, cwd=tempfile.gettempdir())
    if out.returncode != 0:
        raise RuntimeError(f"cold-start sample failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["init"]


def run(build_dir: str | Path = ROOT / ".aws-sam" / "build", samples: int = 11) -> dict:
    env = dict(setup_env())
    env.update({k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")})
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    purelib = sysconfig.get_paths()["purelib"]
    built = Path(build_dir).resolve() / "MpApiFunction"
    work = Path(tempfile.mkdtemp(prefix="wxloop-mp-cold-"))
    try:
        if (built / "app.py").exists():
            from benchmarks.bench_cold_start import _host_layer

            fn, layer, mode = built, _host_layer(Path(build_dir).resolve(), work), "built artifact"
        else:
            fn, layer, mode = ROOT / "functions" / "mp_api", ROOT / "layers", "source tree (no build)"
        code = INIT.format(fn=str(fn), layer=str(layer), purelib=purelib)
        base = BASELINE.format(purelib=purelib)
        _sample(code, env), _sample(base, env)  # warm the OS file cache
        inits, bases = [], []
        for _ in range(samples):
            inits.append(_sample(code, env))
            bases.append(_sample(base, env))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    init, baseline = statistics.median(inits), statistics.median(bases)
    return {"name": "mp_api_cold_init", "unit": "ms", "mp_api_init": round(init * 1000, 1),
            "baseline_boto3_client": round(baseline * 1000, 1), "ratio": round(init / baseline, 2),
            "samples": samples, "mode": mode}


if __name__ == "__main__":
    print(dumps(run()))
