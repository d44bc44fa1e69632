"""Mini Program client API: /mp/{app_id}/... (HTTP API, payload v2.0). Routes and rules live in
``wxloop.services.mp_api``; this only wires Powertools around them."""

from aws_lambda_powertools import Logger

from wxloop import snapstart  # noqa: F401 - registers the SnapStart priming hook
from wxloop.config import load_config
from wxloop.services.mp_api import idempotency
from wxloop.services.mp_api.http import build_app, precheck

logger = Logger()
load_config()  # at INIT: a wrong accounts config fails the start, naming the field
app = build_app()


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    logger.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
    refused = precheck(event)
    if refused is not None:
        return refused
    idempotency.use_context(context)
    return app.resolve(event, context)
