"""The journey lake: one writer port, two implementations with the same layout.

- ``FirehoseWriter`` (deployed): JSON records to a Kinesis Data Firehose delivery stream, which converts
  them to Parquet and writes ``s3://<lake>/journey/dt=YYYY-MM-DD/`` (botocore only, no pyarrow in Lambda).
- ``LocalParquetWriter`` (``make run``, demo traffic, tests): Parquet files under
  ``<root>/journey/dt=YYYY-MM-DD/``, the same columns and partitions, so one SQL text reads both.

Delivery is at least once (a retried stream batch sends its records again); the KPI SQL drops duplicate
records, so a repeat never counts twice. ``forward`` is what the stream function calls once per batch. The
stream function does not fail a batch for the lake: a delivery that fails after Firehose retries is counted
(``LakeRecordsFailed``, alarmed) and the table keeps the journey records.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from wxloop.analytics.schema import COLUMNS, SchemaError, partition_of, to_record
from wxloop.settings import settings

logger = logging.getLogger(__name__)
JOURNEY_DIR = "journey"
ERASED_DIR = "erased"
FIREHOSE_MAX_RECORDS = 500  # PutRecordBatch limits: 500 records, 4 MiB per call, 1,000 KiB per record
FIREHOSE_MAX_BYTES = 4 * 1024 * 1024 - 64 * 1024
FIREHOSE_ATTEMPTS = 3


class LakeError(RuntimeError):
    """Records the lake did not take (after retries): the caller fails so its batch is delivered again."""


class LakeWriter(Protocol):
    def write(self, records: Sequence[Mapping[str, Any]]) -> int:
        """Store v1 records (``schema.to_record``); returns how many were written. Raises LakeError."""
        ...


class FirehoseWriter:
    """PutRecordBatch to one delivery stream, newline-delimited JSON, failed records retried."""

    def __init__(self, stream_name: str, client: Any = None) -> None:
        self.stream_name = stream_name
        self._client = client

    def _firehose(self):
        if self._client is None:
            from wxloop.adapters import aws

            self._client = aws.client("firehose")
        return self._client

    def write(self, records: Sequence[Mapping[str, Any]]) -> int:
        blobs = [(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
                 for r in records]
        for chunk in _chunks(blobs):
            self._put(chunk)
        return len(blobs)

    def _put(self, blobs: list[bytes]) -> None:
        pending = blobs
        for _ in range(FIREHOSE_ATTEMPTS):
            out = self._firehose().put_record_batch(DeliveryStreamName=self.stream_name,
                                                    Records=[{"Data": b} for b in pending])
            if not out.get("FailedPutCount"):
                return
            pending = [b for b, r in zip(pending, out.get("RequestResponses") or (), strict=False)
                       if r.get("ErrorCode")]
        raise LakeError(f"{len(pending)} journey records not accepted by {self.stream_name}")


def _chunks(blobs: list[bytes]) -> Iterable[list[bytes]]:
    chunk: list[bytes] = []
    size = 0
    for blob in blobs:
        if chunk and (len(chunk) >= FIREHOSE_MAX_RECORDS or size + len(blob) > FIREHOSE_MAX_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(blob)
        size += len(blob)
    if chunk:
        yield chunk


def arrow_schema():
    """The pyarrow schema of the lake's Parquet files (the columns of ``schema.COLUMNS``)."""
    import pyarrow as pa

    kinds = {"string": pa.string(), "timestamp_ms": pa.timestamp("ms"), "bool": pa.bool_(), "int32": pa.int32()}
    return pa.schema([(name, kinds[arrow]) for name, _, arrow in COLUMNS])


class LocalParquetWriter:
    """Parquet files under ``root/journey/dt=…/`` (one new file per partition per call: writers never clash)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def write(self, records: Sequence[Mapping[str, Any]]) -> int:
        by_day: dict[str, list[Mapping[str, Any]]] = {}
        for r in records:
            by_day.setdefault(partition_of(int(r["ts"])), []).append(r)
        for day, rows in by_day.items():
            self.write_columns(day, {name: [r.get(name) for r in rows] for name, _, _ in COLUMNS})
        return len(records)

    def write_columns(self, day: str, columns: Mapping[str, list]) -> Path:
        """Write one partition's rows given column-wise (``ts`` in epoch ms); returns the file written."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = arrow_schema()
        arrays = [pa.array(columns[f.name], type=pa.int64() if f.name == "ts" else f.type).cast(f.type)
                  for f in schema]
        folder = self.root / JOURNEY_DIR / f"dt={day}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{uuid.uuid4().hex}.parquet"
        tmp = path.with_suffix(".tmp")
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema), tmp, compression="snappy")  # what Firehose writes
        tmp.rename(path)  # readers never see a half-written file
        return path

    def write_erased(self, persons: Iterable[str]) -> Path:
        """Add persons to the erasure list every KPI excludes (``erased/``, one column ``person``)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        folder = self.root / ERASED_DIR
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{uuid.uuid4().hex}.parquet"
        pq.write_table(pa.table({"person": pa.array(list(persons), type=pa.string())}), path)
        return path


def local_writer(path: str | os.PathLike) -> LocalParquetWriter:
    """The writer ``make run`` plugs into the stream pump (``.local/lake/``)."""
    return LocalParquetWriter(path)


_writer: LakeWriter | None = None
_configured = False


def configure(writer: LakeWriter | None) -> None:
    """Set the writer ``forward`` uses (the local stack and tests); None turns forwarding off."""
    global _writer, _configured
    _writer, _configured = writer, True


def reset() -> None:
    """Forget the writer: the next ``forward`` reads the environment again (tests)."""
    global _writer, _configured
    _writer, _configured = None, False


def _current() -> LakeWriter | None:
    global _writer, _configured
    if not _configured:
        stream, path = settings().lake_stream_name, settings().lake_path
        _writer = FirehoseWriter(stream) if stream else local_writer(path) if path else None
        _configured = True
    return _writer


def forward(batch: Sequence[tuple[str, Mapping[str, Any]]]) -> int:
    """Send a stream batch's journey events ((uid, event) pairs) to the lake in one call.

    Uses ``LAKE_STREAM_NAME`` (Firehose) or ``LAKE_PATH`` (local Parquet), else does nothing. An event that
    cannot be a v1 record is logged and skipped (it stays in the table); a lake failure raises LakeError."""
    writer = _current()
    if writer is None or not batch:
        return 0
    records = []
    for uid, event in batch:
        try:
            records.append(to_record(uid, event))
        except SchemaError as exc:
            logger.warning("journey event not sent to the lake: %s", exc)
    return writer.write(records) if records else 0
