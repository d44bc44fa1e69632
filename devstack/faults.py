"""Fault switches and a call tap for the local stack's AWS calls (dev only, never deployed).

Every botocore call made in this process (the handlers', the pumps') goes through one wrapper of
``BaseClient._make_api_call``. The wrapper counts and times each call (the tap: how many DynamoDB and SQS
requests a push costs, how long the stand-ins took) and, while a fault is switched on, fails or slows the
calls it matches, as the real services would:

- ``throttle``: the service's throttling error (``ProvisionedThroughputExceededException`` for DynamoDB,
  ``RequestThrottled`` for SQS), raised as the client's own modelled exception;
- ``error``: a 500 (``InternalServerError``);
- ``latency``: waits ``seconds``; when that exceeds the client's read timeout the call waits the read
  timeout and raises ``ReadTimeoutError``, which is what a slow service does to a bounded client.

``install()`` is idempotent; ``switch(...)`` turns a fault on (optionally for ``times`` calls or a share
``rate`` of them), ``clear()`` turns all off. ``WXLOOP_FAULTS`` (a JSON list of ``switch`` keyword sets)
switches faults on when the stack starts.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

KINDS = ("throttle", "error", "latency")
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem",
                    "SendMessage", "SendMessageBatch"})
_THROTTLE_CODE = {"dynamodb": "ProvisionedThroughputExceededException", "sqs": "RequestThrottled"}


@dataclass
class Fault:
    service: str
    kind: str
    operations: frozenset[str] = frozenset()  # empty: every operation of the service
    rate: float = 1.0
    times: int | None = None  # None: until cleared
    seconds: float = 0.0
    pumps: bool = False  # also the queue and stream pumps (their retries take the queue's visibility timeout)
    hits: int = 0

    def matches(self, service: str, operation: str, rng: random.Random) -> bool:
        if service != self.service or (self.operations and operation not in self.operations):
            return False
        if not self.pumps and threading.current_thread().name.startswith("pump-"):
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        return self.rate >= 1.0 or rng.random() < self.rate


@dataclass
class Tap:
    """What the process asked AWS: counts per ``service.Operation``, seconds spent in calls, faults hit."""

    calls: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)  # calls that raised (a failed condition writes nothing)
    seconds: float = 0.0
    injected: Counter = field(default_factory=Counter)
    request_calls: Counter = field(default_factory=Counter)  # calls outside the queue and stream pumps
    request_failed: Counter = field(default_factory=Counter)

    def writes(self, *, requests_only: bool = False) -> int:
        """Write requests that succeeded (DynamoDB puts, updates, deletes, transactions; SQS sends)."""
        counted = (self.request_calls - self.request_failed) if requests_only else (self.calls - self.failed)
        return sum(n for key, n in counted.items() if key.split(".", 1)[1] in WRITES)


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.tap = Tap()
        self.rng = random.Random(15)
        self.local = threading.local()  # per-thread tap, for per-request accounting
        self.installed = False


_state = _State()


def install() -> None:
    """Wrap botocore's call path once per process (a no-op while no fault is on, beyond the tap)."""
    from botocore.client import BaseClient

    with _state.lock:
        if _state.installed:
            return
        original = BaseClient._make_api_call

        def _make_api_call(client, operation_name, api_params):
            service = client.meta.service_model.service_name
            start, ok = time.perf_counter(), False
            try:
                _inject(client, service, operation_name)
                out = original(client, operation_name, api_params)
                ok = True
                return out
            finally:
                _account(f"{service}.{operation_name}", time.perf_counter() - start, ok)

        BaseClient._make_api_call = _make_api_call
        _state.installed = True
    for spec in json.loads(os.environ.get("WXLOOP_FAULTS") or "[]"):
        switch(**spec)


def switch(service: str, kind: str, *, operations=(), rate: float = 1.0, times: int | None = None,
           seconds: float = 0.0, pumps: bool = False) -> Fault:
    """Turn a fault on for ``service`` (``dynamodb``, ``sqs``); returns it (``hits`` counts its effects).
    Request threads only, unless ``pumps``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    fault = Fault(service, kind, frozenset(operations), rate, times, seconds, pumps)
    with _state.lock:
        _state.faults.append(fault)
    return fault


def clear() -> None:
    """Every fault off (the tap keeps counting)."""
    with _state.lock:
        _state.faults.clear()


def tap() -> Tap:
    """The process-wide tap (read it, or ``reset_tap()`` between measurements)."""
    return _state.tap


def reset_tap() -> None:
    with _state.lock:
        _state.tap = Tap()


def thread_tap() -> Tap:
    """This thread's own tap since its last ``reset_thread_tap()`` (a request runs on one thread)."""
    found = getattr(_state.local, "tap", None)
    if found is None:
        found = _state.local.tap = Tap()
    return found


def reset_thread_tap() -> Tap:
    _state.local.tap = Tap()
    return _state.local.tap


def _account(key: str, seconds: float, ok: bool) -> None:
    pump = threading.current_thread().name.startswith("pump-")
    with _state.lock:
        _state.tap.calls[key] += 1
        _state.tap.failed[key] += not ok
        _state.tap.seconds += seconds
        if not pump:
            _state.tap.request_calls[key] += 1
            _state.tap.request_failed[key] += not ok
    own = thread_tap()
    own.calls[key] += 1
    own.failed[key] += not ok
    own.seconds += seconds


def _inject(client, service: str, operation: str) -> None:
    with _state.lock:
        fault = next((f for f in _state.faults if f.matches(service, operation, _state.rng)), None)
        if fault is None:
            return
        fault.hits += 1
        _state.tap.injected[f"{service}.{fault.kind}"] += 1
    if fault.kind == "latency":
        read_timeout = client.meta.config.read_timeout or 60
        time.sleep(min(fault.seconds, read_timeout))
        if fault.seconds > read_timeout:
            from botocore.exceptions import ReadTimeoutError

            raise ReadTimeoutError(endpoint_url=client.meta.endpoint_url)
        return
    code = _THROTTLE_CODE.get(service, "ThrottlingException") if fault.kind == "throttle" else "InternalServerError"
    status = 400 if fault.kind == "throttle" else 500
    error = {"Error": {"Code": code, "Message": f"injected {fault.kind}"},
             "ResponseMetadata": {"HTTPStatusCode": status}}
    raise client.exceptions.from_code(code)(error, operation)
