"""Erasure in the journey lake: the erasure list (``erased/``, which every KPI query excludes at once) and the
compaction that rewrites affected partitions without the erased persons (scheduled daily, so within 24 h).

Rows of an erased person go; rows of other people that name one (``inviter``, ``merged_from``) keep their
event with that column emptied. The list keeps an entry until a compaction ``keep_seconds`` after the
erasure (late stream deliveries are caught by it), then drops it, so the lake ends holding no identifier.

- ``LocalLake`` (``LAKE_PATH``: ``make run``, tests): pyarrow over the local folder.
- ``AthenaLake`` (``LAKE_BUCKET``, deployed): the list through Athena ``INSERT INTO erased``; compaction
  by Athena ``UNLOAD`` of each affected partition to a staging prefix, then S3 copies over the partition's
  old objects (botocore only: no pyarrow in Lambda).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from datetime import UTC
from pathlib import Path
from typing import Protocol

from wxloop.analytics.lake import ERASED_DIR, JOURNEY_DIR, LocalParquetWriter
from wxloop.settings import settings

NAMING_COLUMNS = ("inviter", "merged_from")  # other people's rows that may name an erased person


class ErasureLake(Protocol):
    def add(self, persons: Iterable[str], at: int) -> None:
        """Put persons on the erasure list (idempotent in effect)."""
        ...

    def compact(self, *, now: int, keep_seconds: int) -> dict:
        """Rewrite affected partitions without listed persons; drop list entries older than
        ``keep_seconds``. Returns counts (``partitions``, ``rows_removed``, ``listed``)."""
        ...


class LocalLake:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def add(self, persons: Iterable[str], at: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        people = sorted(set(persons))
        if not people:
            return
        folder = self.root / ERASED_DIR
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.table({"person": pa.array(people, pa.string()), "at": pa.array([at] * len(people), pa.int64())})
        pq.write_table(table, folder / f"part-{uuid.uuid4().hex}.parquet")

    def _listed(self) -> dict[str, int]:
        import pyarrow.parquet as pq

        out: dict[str, int] = {}
        for path in sorted((self.root / ERASED_DIR).glob("*.parquet")):
            table = pq.read_table(path).to_pydict()
            ats = table.get("at") or [0] * len(table["person"])
            for person, at in zip(table["person"], ats, strict=True):
                out[person] = max(out.get(person, 0), int(at or 0))
        return out

    def compact(self, *, now: int, keep_seconds: int) -> dict:
        listed = self._listed()
        if not listed:
            return {"partitions": 0, "rows_removed": 0, "listed": 0}
        partitions, removed = set(), 0
        for path in sorted((self.root / JOURNEY_DIR).glob("dt=*/*.parquet")):
            gone = self._rewrite(path, set(listed))
            if gone is not None:
                partitions.add(path.parent.name)
                removed += gone
        keep = {p: at for p, at in listed.items() if now - at < keep_seconds}
        self._replace_list(keep)
        return {"partitions": len(partitions), "rows_removed": removed, "listed": len(keep)}

    def _rewrite(self, path: Path, erased: set[str]) -> int | None:
        """Rewrite one file without erased persons' rows (others' columns naming one emptied); None when
        the file names nobody erased."""
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        rows = table.to_pylist()
        touched = [r for r in rows if r.get("person") in erased or any(r.get(c) in erased for c in NAMING_COLUMNS)]
        if not touched:
            return None
        kept = []
        for r in rows:
            if r.get("person") in erased:
                continue
            kept.append({**r, **{c: None for c in NAMING_COLUMNS if r.get(c) in erased}})
        if kept:
            columns = {f.name: [r.get(f.name) for r in kept] for f in table.schema}
            columns["ts"] = [_epoch_ms(t) for t in columns["ts"]]  # the writer takes epoch ms
            LocalParquetWriter(self.root).write_columns(path.parent.name.removeprefix("dt="), columns)
        path.unlink()  # the new file is in place first: a reader never misses kept rows
        return len(rows) - len(kept)

    def _replace_list(self, keep: dict[str, int]) -> None:
        folder = self.root / ERASED_DIR
        old = list(folder.glob("*.parquet"))
        if keep:
            import pyarrow as pa
            import pyarrow.parquet as pq

            people = sorted(keep)
            pq.write_table(pa.table({"person": pa.array(people, pa.string()),
                                     "at": pa.array([keep[p] for p in people], pa.int64())}),
                           folder / f"part-{uuid.uuid4().hex}.parquet")
        for path in old:
            path.unlink()


def _epoch_ms(at) -> int | None:
    """A Parquet timestamp (naive, UTC) as epoch milliseconds."""
    if at is None:
        return None
    return int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() * 1000)


class NoLake:
    """No lake configured: nothing to list or compact."""

    def add(self, persons: Iterable[str], at: int) -> None:
        return None

    def compact(self, *, now: int, keep_seconds: int) -> dict:
        return {"partitions": 0, "rows_removed": 0, "listed": 0}


def current() -> ErasureLake:
    """The lake of this process: ``LAKE_BUCKET`` (Athena + S3), ``LAKE_PATH`` (local), else none."""
    env = settings()
    if env.lake_bucket:
        from wxloop.services.privacy.athena_lake import AthenaLake

        return AthenaLake.from_env()
    if env.lake_path:
        return LocalLake(env.lake_path)
    return NoLake()
