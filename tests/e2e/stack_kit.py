"""Starting ``make run``'s stack in its own process for the e2e tests, and talking to it over HTTP."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS = json.loads((ROOT / "config" / "demo-accounts.json").read_text(encoding="utf-8"))["accounts"]
OA = next(app for app, acct in ACCOUNTS.items() if acct["kind"] == "oa")
STARTUP_SECONDS = 60  # a cold start imports moto, boto3 and wechatpy: seconds, not minutes
STARTUP_ATTEMPTS = 3  # the stack picks its embedded AWS port itself: another process may take it first
BANNER_END = "simulator click"  # the last line the stack prints once everything is up


def http(url: str, body: bytes | None = None, *, method: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method=method or ("POST" if body is not None else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


class _Output:
    """Everything a child process prints, read by a thread so that no read can block the tests."""

    def __init__(self, stream) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.ended = False  # the process closed its output (it exited)
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        for line in iter(stream.readline, ""):
            self.lines.put(line)
        self.lines.put(None)  # end of output: the process closed it (exited)

    def wait_for(self, marker: str, deadline: float) -> bool:
        """True once a printed line contains ``marker``; False at the end of the output or the deadline."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return False
            if line is None:
                self.ended = True
                return False
            self.seen.append(line)
            if marker in line:
                return True

    def text(self) -> str:
        return "".join(self.seen)

    def drain(self, timeout: float) -> str:
        """All output so far (after the process ended: all of it)."""
        self._thread.join(timeout)
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return self.text()
            if line is not None:
                self.seen.append(line)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=15)


def start_stack(command: tuple[str, ...] = (sys.executable, "-m", "devstack.stack"),
                 startup_seconds: float = STARTUP_SECONDS) -> tuple[subprocess.Popen, _Output, str]:
    """Start the stack on ports the OS picks (``WXLOOP_*PORT=0``; the stack prints the URL it bound); kill it
    and fail with its output when it does not come up in time; retry when a port it picked was taken."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WECHAT_", "TABLE_", "QUEUE_"))}
    env.update(WXLOOP_PORT="0", WXLOOP_AWS_PORT="0", WXLOOP_WECHAT_PORT="0", PYTHONUNBUFFERED="1",
               WXLOOP_ENV_FILE=str(Path(tempfile.mkdtemp(prefix="wxloop-e2e-")) / "env"))
    report = ""
    for attempt in range(1, STARTUP_ATTEMPTS + 1):
        proc = subprocess.Popen(list(command), cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out = _Output(proc.stdout)
        if out.wait_for(BANNER_END, time.monotonic() + startup_seconds) and proc.poll() is None:
            return proc, out, out.text()
        if out.ended:  # it closed its output: give it a moment to exit (threads of its own may linger)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        _kill(proc)
        printed = out.drain(timeout=5)
        why = f"exit code {proc.returncode}" if out.ended else f"no banner within {startup_seconds} s: killed"
        report += f"--- attempt {attempt} ({why}):\n{printed}\n"
        if "Address already in use" not in printed:
            break
    pytest.fail(f"the local stack did not start:\n{report}")




def stack_urls(printed: str) -> dict:
    """The URLs the stack printed: the OA webhook, the fake WeChat API, the embedded AWS."""
    gateway = re.search(rf"(http://127\.0\.0\.1:\d+)/wechat/oa/{OA}\b", printed)
    fake = re.search(r"fake WeChat API:\s+(http://\S+)", printed)
    aws = re.search(r"embedded AWS \(moto\):\s+(http://\S+)", printed)
    if not (gateway and fake and aws):
        pytest.fail(f"the local stack printed no URLs:\n{printed}")
    env_file = re.search(r"CLI environment:\s+(\S+)", printed)
    return {"url": f"{gateway.group(1)}/wechat/oa/{OA}", "gateway": gateway.group(1), "fake": fake.group(1),
            "aws": aws.group(1), "env_file": env_file.group(1) if env_file else None, "printed": printed}


def shutdown(proc: subprocess.Popen, out: _Output) -> tuple[int | None, str]:
    """SIGTERM (as Ctrl-C), then kill after 15 s; returns the exit code (None: it had to be killed) and
    everything it printed."""
    proc.terminate()
    try:
        code = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        code = None
    _kill(proc)
    return code, out.drain(timeout=5)
