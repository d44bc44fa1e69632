"""The deployed lake's erasure (S3 + Athena, botocore only): see ``wxloop.services.privacy.lake``.

Environment: ``LAKE_BUCKET``, ``LAKE_DATABASE``, ``ATHENA_WORKGROUP``. Athena writes the erasure list
(``INSERT INTO erased``) and each affected partition's compacted copy (``UNLOAD`` to
``compaction/{run}/dt=…/``); S3 then copies the copy in and deletes the partition's old objects (listed
before the UNLOAD, so Firehose files that arrive meanwhile are kept). Uuids and app ids are the only
values put in SQL, checked first.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable

from wxloop.settings import settings

_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
POLL_SECONDS = 1.0
QUERY_TIMEOUT_SECONDS = 600


def _literal(value: str) -> str:
    if not _SAFE.match(value):
        raise ValueError("not a uid")
    return f"'{value}'"


class AthenaLake:
    def __init__(self, bucket: str, database: str, workgroup: str, *, athena=None, s3=None) -> None:
        self.bucket, self.database, self.workgroup = bucket, database, workgroup
        self._athena, self._s3 = athena, s3

    @classmethod
    def from_env(cls) -> AthenaLake:
        env = settings()
        missing = [name for name, value in (("LAKE_BUCKET", env.lake_bucket), ("LAKE_DATABASE", env.lake_database),
                                            ("ATHENA_WORKGROUP", env.athena_workgroup)) if not value]
        if missing:
            raise RuntimeError(f"the lake needs {', '.join(missing)}")
        return cls(env.lake_bucket, env.lake_database, env.athena_workgroup)

    def _clients(self):
        if self._athena is None:
            from wxloop.adapters import aws

            self._athena, self._s3 = aws.client("athena"), aws.client("s3")
        return self._athena, self._s3

    def _run(self, sql: str) -> list[list[str]]:
        athena, _ = self._clients()
        qid = athena.start_query_execution(QueryString=sql, WorkGroup=self.workgroup,
                                           QueryExecutionContext={"Database": self.database})["QueryExecutionId"]
        deadline = time.monotonic() + QUERY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            state = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"]
            if state == "SUCCEEDED":
                rows = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"][1:]
                return [[c.get("VarCharValue", "") for c in r["Data"]] for r in rows]
            if state in ("FAILED", "CANCELLED"):
                raise RuntimeError(f"athena query {qid} {state.lower()}")
            time.sleep(POLL_SECONDS)
        raise RuntimeError(f"athena query {qid} timed out")

    def add(self, persons: Iterable[str], at: int) -> None:
        values = ", ".join(f"({_literal(p)})" for p in sorted(set(persons)))
        if values:
            self._run(f"INSERT INTO erased (person) VALUES {values}")  # noqa: S608 - uuids checked above

    def compact(self, *, now: int, keep_seconds: int) -> dict:
        names = " OR ".join(f"{c} IN (SELECT person FROM erased)" for c in ("person", "inviter", "merged_from"))  # noqa: S608 - fixed names
        days = [r[0] for r in self._run(f"SELECT DISTINCT dt FROM journey WHERE {names}")]  # noqa: S608
        run = uuid.uuid4().hex
        for day in days:
            self._compact_partition(day, run)
        listed = self._prune_list(now, keep_seconds)
        return {"partitions": len(days), "rows_removed": None, "listed": listed}

    def _compact_partition(self, day: str, run: str) -> None:
        if not re.match(r"^\d{4}-\d{2}-\d{2}$", day):
            raise ValueError("not a partition day")
        _, s3 = self._clients()
        prefix = f"journey/dt={day}/"
        old = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
               for o in page.get("Contents") or ()]
        cols = ("event_id, CASE WHEN person IN (SELECT person FROM erased) THEN NULL ELSE person END AS person, "
                "platform, app, type, ts, by_user, channel, campaign, experiment, variant, "
                "CASE WHEN inviter IN (SELECT person FROM erased) THEN NULL ELSE inviter END AS inviter, "
                "CASE WHEN merged_from IN (SELECT person FROM erased) THEN NULL ELSE merged_from END AS merged_from, "
                "detail, v")
        staging = f"compaction/{run}/dt={day}/"
        self._run(f"UNLOAD (SELECT {cols} FROM journey WHERE dt = '{day}' "  # noqa: S608 - day checked above
                  f"AND person NOT IN (SELECT person FROM erased)) "
                  f"TO 's3://{self.bucket}/{staging}' WITH (format = 'PARQUET', compression = 'SNAPPY')")
        new = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=staging)
               for o in page.get("Contents") or ()]
        for key in new:
            s3.copy_object(Bucket=self.bucket, Key=prefix + f"compacted-{run}-" + key.rsplit("/", 1)[-1],
                           CopySource={"Bucket": self.bucket, "Key": key})
        for start in range(0, len(old + new), 1000):
            batch = (old + new)[start:start + 1000]
            s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})

    def _prune_list(self, now: int, keep_seconds: int) -> int:
        """Entries are dropped only when no compaction is pending for them: with ``keep_seconds`` 0 the list
        empties; otherwise objects of the list older than ``keep_seconds`` are deleted."""
        _, s3 = self._clients()
        objects = [o for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix="erased/")
                   for o in page.get("Contents") or ()]
        old = [o["Key"] for o in objects if now - int(o["LastModified"].timestamp()) >= keep_seconds]
        for start in range(0, len(old), 1000):
            s3.delete_objects(Bucket=self.bucket,
                              Delete={"Objects": [{"Key": k} for k in old[start:start + 1000]], "Quiet": True})
        return len(objects) - len(old)
