"""Job worker: SQS batches of jobs (``wxloop.services.jobs``), with partial batch failure reporting; and,
on its daily schedule (``{"action": "renew_channels"}``), one ``channel_renew`` job per channel link due.

A failed record is reported in ``batchItemFailures`` and hidden for a delay that grows with its receive count
(``jobs.delay_retry``: 30 s, 60 s, … 900 s) before it comes back; a poison message fails on every receive, so
the queue's redrive policy moves it to the DLQ (``maxReceiveCount``).
"""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from wxloop.config import load_config
from wxloop.services import channels, jobs

logger = Logger()
metrics = jobs.metrics
processor = BatchProcessor(event_type=EventType.SQS)
load_config()  # at INIT: a wrong accounts config fails the start, naming the field


def record_handler(record: SQSRecord):
    try:
        return str(jobs.handle_message(record.body, message_id=record.message_id))
    except Exception as exc:  # SQS retries it; the body holds personal data, so only the type and code are logged
        if not isinstance(exc, jobs.PoisonJob):  # a poison job is already logged without its body
            logger.warning("job failed, will be retried",
                           extra={"message_id": record.message_id, **jobs.error_fields(exc)})
        jobs.delay_retry(record.raw_event)
        raise


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    if event.get("action") == "renew_channels":
        return {"queued": channels.queue_renewals()}
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
