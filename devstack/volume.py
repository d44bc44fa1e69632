"""Drive a running ``make run`` stack with many people and measure whether it stays flat.

Messages alternate between a new person (first contact) and a returning one, as the webhook sees them in
production; per hundred messages it records throughput, and for new people the request latency; the stack
process's resident memory is read from ``/proc`` before and after (Linux).

``python -m devstack.volume --messages 2000`` (``make stack-bench``) against the stack ``.local/env`` names.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from devstack.simulator import Simulator
from devstack.table import REPO_ROOT

ENV_FILE = REPO_ROOT / ".local" / "env"


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class VolumeResult:
    messages: int
    people: int
    per_hundred_rate: list[float] = field(default_factory=list)  # msg/s of each block of 100
    first_contact_ms: list[float] = field(default_factory=list)  # latency of each new person's first push
    errors: int = 0
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0

    def first_contact_median(self, first: bool) -> float:
        """Median first-contact latency (ms) over the first or the last 50 new people."""
        part = self.first_contact_ms[:50] if first else self.first_contact_ms[-50:]
        return statistics.median(part) if part else 0.0

    def summary(self) -> dict:
        rates = self.per_hundred_rate
        return {
            "messages": self.messages, "people": self.people, "errors": self.errors,
            "msg_per_s_first_100": round(rates[0], 1), "msg_per_s_last_100": round(rates[-1], 1),
            "slowdown": round(rates[0] / rates[-1], 2) if rates[-1] else None,
            "first_contact_ms_first_50": round(self.first_contact_median(True), 1),
            "first_contact_ms_last_50": round(self.first_contact_median(False), 1),
            "rss_mb_before": round(self.rss_before_mb, 1), "rss_mb_after": round(self.rss_after_mb, 1),
        }


def _send(url: str, sim: Simulator, openid: str, text: str) -> bool:
    push = sim.push(sim.text(openid, text), "safe")
    req = urllib.request.Request(f"{url}?{urllib.parse.urlencode(push.query)}", data=push.body.encode())  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - a loopback URL
            return resp.status == 200
    except (urllib.error.URLError, TimeoutError):
        return False


def run_volume(url: str, sim: Simulator, pid: int, messages: int, *, text: str = "积分") -> VolumeResult:
    """Send ``messages`` pushes: even ones from a new person, odd ones from a person already seen.
    Messages come in blocks of 100; each block's rate is recorded."""
    tag = secrets.token_hex(3)
    result = VolumeResult(messages=messages, people=(messages + 1) // 2, rss_before_mb=rss_mb(pid))
    block_start = time.perf_counter()
    for n in range(messages):
        person = n // 2 if n % 2 == 0 else max(0, n // 2 - 1)  # odd: someone who wrote before
        started = time.perf_counter()
        ok = _send(url, sim, f"oVol-{tag}-{person:05d}", text)
        if n % 2 == 0:
            result.first_contact_ms.append((time.perf_counter() - started) * 1000)
        result.errors += not ok
        if (n + 1) % 100 == 0 or n + 1 == messages:
            now = time.perf_counter()
            result.per_hundred_rate.append(((n % 100) + 1) / (now - block_start))
            block_start = now
    result.rss_after_mb = rss_mb(pid)
    return result


def _read_env(path: Path) -> dict[str, str]:
    import shlex

    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export "):].partition("=")
            out[name] = shlex.split(value)[0]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack.volume", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--env-file", type=Path, default=Path(os.environ.get("WXLOOP_ENV_FILE") or ENV_FILE))
    args = parser.parse_args(argv)
    env = _read_env(args.env_file)
    accounts = json.loads(env["WECHAT_ACCOUNTS"])["accounts"]
    app_id, acct = next((a, c) for a, c in accounts.items() if c["kind"] == "oa")
    sim = Simulator(app_id, acct["token"], acct.get("encoding_aes_key"))
    result = run_volume(f"{env['WXLOOP_GATEWAY_URL']}/wechat/oa/{app_id}", sim, int(env["WXLOOP_STACK_PID"]),
                        args.messages)
    print(json.dumps(result.summary(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
