"""Official Account push endpoint: GET|POST /wechat/oa/{app_id} (HTTP API, payload v2.0).

No event-handler resolver here: one route, and its import costs ~60 ms of cold start.
"""

import base64
import binascii

from aws_lambda_powertools import Logger

from wxloop.config import load_config
from wxloop.metrics import OutcomeMetrics
from wxloop.services import oa_push

logger = Logger()
metrics = OutcomeMetrics()
load_config()  # at INIT: a wrong accounts config fails the start, naming the field


def _count(name: str) -> None:
    metrics.add_metric(name, "Count", 1)


@logger.inject_lambda_context  # correlation id set below: the JMESPath option costs 15 us a request
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    logger.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
    deadline = oa_push.deadline_for((event.get("requestContext") or {}).get("timeEpoch"))
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "GET")
    app_id = (event.get("pathParameters") or {}).get("app_id", "")
    query = event.get("queryStringParameters") or {}
    body = event.get("body") or ""
    try:
        raw = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else body.encode("utf-8")
    except (binascii.Error, ValueError):  # API Gateway encodes bodies itself: this is no WeChat request
        _count("Rejected_bad_body")
        return {"statusCode": 400, "headers": {"Content-Type": "text/plain; charset=utf-8"}, "body": "bad body"}
    try:
        if method == "GET":
            out = oa_push.handle_get(app_id, query, _count)
        elif method == "POST":
            out = oa_push.handle_post(app_id, query, raw, deadline=deadline, count=_count)
        else:
            out = oa_push.HttpOut(405, "method not allowed")
    except oa_push.PushNotAccepted:
        out = oa_push.HttpOut(500, "retry")
    except Exception:  # nothing was kept: WeChat delivers again, and the retry is deduped if it was
        logger.exception("push failed")
        _count("Error")
        out = oa_push.HttpOut(500, "retry")
    return {"statusCode": out.status, "headers": {"Content-Type": out.content_type}, "body": out.body}
