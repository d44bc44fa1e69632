"""Official Account push endpoint: GET|POST /wechat/oa/{app_id} (HTTP API, payload v2.0).

No event-handler resolver here: one route, and its import costs ~60 ms of cold start.
"""

from aws_lambda_powertools import Logger

from wxloop import snapstart  # noqa: F401 - registers the SnapStart priming hook
from wxloop.config import load_config
from wxloop.metrics import OutcomeMetrics
from wxloop.protocol import http
from wxloop.services import oa_push

logger = Logger()
metrics = OutcomeMetrics()
for _app_id in load_config().plain_mode_accounts("oa"):  # at INIT: a wrong accounts config fails the start
    logger.warning("plain message mode: push bodies are unauthenticated, use safe mode", extra={"app_id": _app_id})


def _count(name: str) -> None:
    metrics.add_metric(name, "Count", 1)


@logger.inject_lambda_context  # correlation id set below: the JMESPath option costs 15 us a request
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    request = http.decode(event)
    logger.set_correlation_id(request.request_id)
    try:
        out = oa_push.handle(request, count=_count)
    except oa_push.PushNotAccepted:
        out = http.HttpOut(500, "retry")
    except Exception:  # nothing was kept: WeChat delivers again, and the retry is deduped if it was
        logger.exception("push failed")
        _count("Error")
        out = http.HttpOut(500, "retry")
    return http.respond(out)
