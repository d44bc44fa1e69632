"""Outcome counters as CloudWatch embedded metric format (EMF): a Powertools metrics provider.

Every function counts outcomes (``Replied``, ``Deduped``, ``Rejected_signature``, ``job.cs_send.ok``, …)
and publishes them once per invocation through Powertools' ``@metrics.log_metrics``. Powertools' own
CloudWatch provider validates units and resolutions and re-reads its settings on every call, which costs
the webhook ~40 us a message (a quarter of its whole CPU budget beside wechatpy); this provider plugs into
the same ``BaseProvider`` interface (``add_metric`` / ``flush_metrics`` / ``log_metrics``) and writes the
same EMF document, with its settings read once per container:

- namespace ``POWERTOOLS_METRICS_NAMESPACE``, one dimension ``service`` = ``POWERTOOLS_SERVICE_NAME``;
- ``POWERTOOLS_METRICS_DISABLED=true`` turns publishing off (local runs);
- at most 100 metric names per document (the EMF limit): a fuller set is flushed early;
- standard resolution (60 s) only: ``resolution`` is accepted for interface compatibility and ignored.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any

from aws_lambda_powertools.metrics.provider import BaseProvider

from wxloop.settings import settings

MAX_METRICS = 100
_encode = json.JSONEncoder(separators=(",", ":")).encode  # one encoder: json.dumps(..., separators=) builds one a call
UNITS = frozenset({
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
    "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
    "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
})


class MetricError(ValueError):
    """A metric CloudWatch would reject (empty or over-long name, unknown unit, not a number)."""


class OutcomeMetrics(BaseProvider):
    """Counters (and other values) of one invocation, written as one EMF line by ``flush_metrics``."""

    def __init__(self, namespace: str | None = None, service: str | None = None, *, stream=None) -> None:
        env = settings()
        self.namespace = namespace or env.metrics_namespace
        self.service = service or env.service_name
        self.disabled = env.metrics_disabled
        self._stream = stream
        self._values: dict[str, list[float]] = {}
        self._units: dict[str, str] = {}
        self._heads: dict[tuple, tuple[str, str]] = {}  # EMF text around the timestamp, per metric set
        self._keys: dict[str, str] = {}  # metric name -> its JSON string

    def add_metric(self, name: str, unit: Any = "Count", value: float = 1, resolution: int = 60) -> None:
        unit = getattr(unit, "value", unit)  # MetricUnit members and plain strings alike
        if not name or len(name) > 255:
            raise MetricError(f"metric name must be 1-255 characters: {name!r}")
        if unit not in UNITS:
            raise MetricError(f"unknown unit {unit!r} for {name}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise MetricError(f"{name}: {value!r} is not a finite number")
        values = self._values.get(name)
        if values is None:
            if len(self._values) == MAX_METRICS:
                self.flush_metrics()
            values = self._values[name] = []
            self._units[name] = unit
        values.append(float(value))

    def serialize_metric_set(self, timestamp_ms: int | None = None) -> dict:
        """The EMF document of what was added since the last flush."""
        doc: dict[str, Any] = {
            "_aws": {
                "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [["service"]],
                    "Metrics": [{"Name": name, "Unit": self._units[name]} for name in self._values],
                }],
            },
            "service": self.service,
        }
        doc.update(self._values)
        return doc

    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None:
        if not self._values:
            if raise_on_empty_metrics:
                raise MetricError("no metrics to publish")
            return
        if not self.disabled:
            stream = self._stream or sys.stdout  # Lambda ships stdout to CloudWatch Logs, which reads EMF
            stream.write(self.emf_line(int(time.time() * 1000)))
        self.clear_metrics()

    def emf_line(self, timestamp_ms: int) -> str:
        """``serialize_metric_set`` as one line of JSON, from text cached per metric set: the same metric
        names recur on every invocation, and encoding the whole document each time costs more than the
        rest of publishing."""
        names = tuple(self._units.items())
        head = self._heads.get(names)
        if head is None:
            if len(self._heads) >= 256:
                self._heads.clear()
            metrics = _encode([{"Name": name, "Unit": unit} for name, unit in names])
            head = self._heads[names] = (
                '{"_aws":{"Timestamp":',
                ',"CloudWatchMetrics":[{"Namespace":' + _encode(self.namespace) + ',"Dimensions":[["service"]],'
                '"Metrics":' + metrics + '}]},"service":' + _encode(self.service),
            )
        parts = [head[0], str(timestamp_ms), head[1]]
        for name, values in self._values.items():
            key = self._keys.get(name)
            if key is None:
                key = self._keys[name] = _encode(name)
            parts.append(f",{key}:[{','.join(map(repr, values))}]")
        parts.append("}\n")
        return "".join(parts)

    def clear_metrics(self) -> None:
        self._values = {}
        self._units = {}

    def add_cold_start_metric(self, context: Any) -> None:
        self.add_metric("ColdStart", "Count", 1)

    @property
    def pending(self) -> dict[str, list[float]]:
        """What the next flush would publish (tests and diagnostics)."""
        return {name: list(values) for name, values in self._values.items()}
