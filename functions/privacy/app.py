"""Privacy jobs: export documents (SQS from the MP API) and, on schedules, resumed erasures with their
sweeps, the lake's compaction and the retention purge. Logs carry request ids and counts only."""

import json
import os
import time

from aws_lambda_powertools import Logger

from wxloop.services.privacy import erasure, export, lake, retention

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    if "Records" in (event or {}):  # SQS: erasures and export requests; a failed one is retried by SQS, then the DLQ
        failures = []
        for record in event["Records"]:
            try:
                job = json.loads(record["body"])
                if job.get("kind") == "erase":
                    erasure.run(str(job["request_id"]), now=int(time.time()))
                else:
                    export.build(str(job["uid"]), str(job["export_id"]))
            except Exception:
                logger.exception("export failed", extra={"message_id": record.get("messageId")})
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}
    task, now = (event or {}).get("task", "resume"), int(time.time())
    if task == "compact":
        out = lake.current().compact(now=now, keep_seconds=int(os.environ.get("LAKE_ERASED_KEEP_SECONDS") or 86400))
    elif task == "purge":
        out = retention.purge(now=now)
    else:
        out = erasure.resume(now=now)
    logger.info("privacy task done", extra={"task": task, **{k: v for k, v in out.items() if v is not None}})
    return out
