"""Campaign planner (EventBridge Scheduler and its own SQS queue; ``wxloop.services.campaigns``).

Events: ``{"action": "start", "campaign": ID}`` (a recurring schedule) starts a run and queues one task per
scan segment; ``{"action": "release"}`` (the tick) queues the sends of due hour buckets; SQS records are
segment tasks, each planning pages until the invocation's time runs short, then queued again to continue.
"""

import json
import time
from datetime import datetime

from aws_lambda_powertools import Logger

from wxloop.adapters import queue
from wxloop.services import campaigns

logger = Logger()


def _segments(records: list, time_left) -> None:
    for record in records:  # batch size 1 in the template: a task may use the whole invocation
        task = json.loads(record["body"])
        status = campaigns.run_segment(task["campaign"], task["run"], int(task["segment"]), time_left=time_left)
        logger.info("segment", extra={**task, "status": status})
        if status == "more":
            queue.send_many([task], url=queue.plan_queue_url())


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    def time_left() -> float:
        return context.get_remaining_time_in_millis() / 1000

    now = int(time.time())
    if "Records" in event:
        _segments(event["Records"], time_left)
        return {"batchItemFailures": []}
    if event.get("action") == "start":  # the scheduled time names the run: a retried invocation finds it
        at = int(datetime.fromisoformat(event["scheduled_at"]).timestamp()) if event.get("scheduled_at") else now
        try:
            return {"run": campaigns.start(str(event["campaign"]), now=at, segments=int(event.get("segments") or 4))}
        except campaigns.store.RunExists:
            return {"run": campaigns.run_id(at), "existing": True}
    if event.get("action") == "release":
        return {"queued": campaigns.release_due(now, time_left=time_left)}
    raise ValueError("unknown campaigns event")
