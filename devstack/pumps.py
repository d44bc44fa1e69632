"""Local stand-ins for Lambda's event source mappings: SQS → worker, table stream → stream function."""

from __future__ import annotations

import logging
import secrets
import threading
import time

from devstack.gateway import LambdaContext

log = logging.getLogger("devstack")


def _sqs_event(messages: list[dict], queue_arn: str) -> dict:
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": {k: str(v) for k, v in (m.get("Attributes") or {}).items()}, "messageAttributes": {},
        "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    } for m in messages]}


def pump_queue(sqs, queue_url: str, handler, stop: threading.Event, *, name: str = "WorkerFunction",
               timeout: float = 30) -> threading.Thread:
    """Deliver queue messages to ``handler`` in batches, deleting those it did not report as failed."""
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def loop():
        while not stop.is_set():
            try:
                got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                          AttributeNames=["All"])
                msgs = got.get("Messages", [])
                if not msgs:
                    continue
                out = handler(_sqs_event(msgs, arn), LambdaContext(name, timeout)) or {}
                failed = {f["itemIdentifier"] for f in out.get("batchItemFailures", [])}
                for m in msgs:
                    if m["MessageId"] not in failed:
                        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            except Exception as exc:
                log.warning("queue pump: %r", exc)
                stop.wait(1)

    t = threading.Thread(target=loop, name=f"pump-{name}", daemon=True)
    t.start()
    return t


def pump_stream(streams, stream_arn: str, handler, stop: threading.Event, *, name: str = "StreamFunction",
                timeout: float = 30) -> threading.Thread:
    """Deliver the table's stream records to ``handler`` (one shard iterator per shard, from the start)."""

    def loop():
        iterators: dict[str, str | None] = {}
        while not stop.is_set():
            try:
                shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
                for shard in shards:
                    sid = shard["ShardId"]
                    if sid not in iterators:
                        iterators[sid] = streams.get_shard_iterator(
                            StreamArn=stream_arn, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
                for sid, it in list(iterators.items()):
                    if not it:
                        continue
                    out = streams.get_records(ShardIterator=it, Limit=100)
                    iterators[sid] = out.get("NextShardIterator")
                    records = out.get("Records", [])
                    if records:
                        for r in records:
                            r.setdefault("eventSourceARN", stream_arn)
                        handler({"Records": _jsonable(records)}, LambdaContext(name, timeout))
                stop.wait(0.5)
            except Exception as exc:
                log.warning("stream pump: %r", exc)
                stop.wait(1)

    t = threading.Thread(target=loop, name=f"pump-{name}-{secrets.token_hex(2)}", daemon=True)
    t.start()
    return t


def _jsonable(value):
    """boto3 gives datetimes and bytes where Lambda's event has numbers and base64 strings."""
    import base64
    import datetime

    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime.datetime):
        return int(value.timestamp())
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
