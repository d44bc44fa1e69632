"""Table stream consumer: derives journey records (partial batch failures; the failed rest is retried,
then goes to the on-failure destination, so no event is dropped)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from wxloop.analytics import lake
from wxloop.metrics import OutcomeMetrics
from wxloop.services import engagement, journey

logger = Logger()
metrics = OutcomeMetrics()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
lake_batch: list = []  # this invocation's journey events, sent to the lake in one call
engaged: list = []  # this invocation's engagement events, folded into the persons' profiles at the end


def _handle(record) -> None:
    found = engagement.engagement_event(record.raw_event)
    if found is not None:
        engaged.append(found)
    written, jobs = journey.record(record.raw_event, lake_batch)
    if written:
        metrics.add_metric(name="JourneyEvents", unit="Count", value=1)
    if jobs:
        metrics.add_metric(name="JobsQueued", unit="Count", value=jobs)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    lake_batch.clear()
    engaged.clear()
    response = process_partial_response(event=event, record_handler=_handle, processor=processor, context=context)
    try:
        metrics.add_metric(name="EngagementWrites", unit="Count", value=engagement.apply(engaged))
    except Exception:  # a derived profile must not hold up the shard: count, alarm, go on
        logger.exception("engagement profiles not updated", extra={"events": len(engaged)})
        metrics.add_metric(name="EngagementFailed", unit="Count", value=len(engaged))
    try:
        sent = lake.forward(lake_batch)
    except Exception:  # analytics must not hold up the shard (the outbox jobs behind it): count, alarm, go on
        logger.exception("journey events not delivered to the lake", extra={"events": len(lake_batch)})
        metrics.add_metric(name="LakeRecordsFailed", unit="Count", value=len(lake_batch))
        return response
    if sent:
        metrics.add_metric(name="LakeRecords", unit="Count", value=sent)
    return response
