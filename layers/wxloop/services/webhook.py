"""The Lambda handler of a push webhook, one for every platform: decode the HTTP API event, answer through
the platform's ``handle``, count the outcome, and answer 500 when nothing was kept (WeChat delivers again).

Only what the handlers imported before: the Powertools logger, the outcome metrics and the accounts config.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from wxloop.config import load_config
from wxloop.metrics import OutcomeMetrics
from wxloop.protocol import http
from wxloop.services.push_seam import PushNotAccepted

Handle = Callable[..., http.HttpOut]


def push_handler(kind: str, handle: Handle) -> Callable[[dict, Any], dict]:
    """The ``lambda_handler`` of the push endpoint of accounts of ``kind`` (``oa`` or ``mp``), answering with
    ``handle(request, count=)``. Loads the accounts config now, so a wrong config fails the Lambda's INIT,
    and warns about every account of ``kind`` in plain mode."""
    logger = Logger()
    metrics = OutcomeMetrics()
    for app_id in load_config().plain_mode_accounts(kind):
        logger.warning("plain message mode: push bodies are unauthenticated, use safe mode", extra={"app_id": app_id})

    def count(name: str) -> None:
        metrics.add_metric(name, "Count", 1)

    @logger.inject_lambda_context  # correlation id set below: the JMESPath option costs 15 us a request
    @metrics.log_metrics
    def lambda_handler(event: dict, context) -> dict:
        request = http.decode(event)
        logger.set_correlation_id(request.request_id)
        try:
            out = handle(request, count=count)
        except PushNotAccepted:
            out = http.HttpOut(500, "retry")
        except Exception:  # nothing was kept: WeChat delivers again, and the retry is deduped if it was
            logger.exception("push failed")
            count("Error")
            out = http.HttpOut(500, "retry")
        return http.respond(out)

    return lambda_handler
