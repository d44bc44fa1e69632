"""Table stream consumer: derives journey records (partial batch failures; the failed rest is retried,
then goes to the on-failure destination, so no event is dropped)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from wxloop.metrics import OutcomeMetrics
from wxloop.services import journey

logger = Logger()
metrics = OutcomeMetrics()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def _handle(record) -> None:
    written, jobs = journey.record(record.raw_event)
    if written:
        metrics.add_metric(name="JourneyEvents", unit="Count", value=1)
    if jobs:
        metrics.add_metric(name="JobsQueued", unit="Count", value=jobs)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    return process_partial_response(event=event, record_handler=_handle, processor=processor, context=context)
