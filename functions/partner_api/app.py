"""Partner API: /partner/{app_id}/events and /points for the brand's own servers (HMAC-signed). The rules
live in ``wxloop.services.partner_api``; this only turns the HTTP API v2.0 event into a call."""

import base64
import binascii
import json

from aws_lambda_powertools import Logger

from wxloop.config import load_config
from wxloop.services.mp_api.errors import error_body
from wxloop.services.partner_api import handle

logger = Logger()
MAX_BODY_BYTES = 16 * 1024  # an event or a debit is a few hundred bytes
load_config()  # at INIT: a wrong accounts config fails the start, naming the field


def _answer(status: int, body: dict) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body, ensure_ascii=False)}


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    raw = event.get("body") or ""
    if len(raw) > MAX_BODY_BYTES * 2:
        return _answer(413, error_body(413, "body too large"))
    try:
        body = base64.b64decode(raw, validate=True) if event.get("isBase64Encoded") else raw.encode("utf-8")
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return _answer(400, error_body(400, "body is not base64 or UTF-8"))
    if len(body) > MAX_BODY_BYTES:
        return _answer(413, error_body(413, "body too large"))
    http = (event.get("requestContext") or {}).get("http") or {}
    status, out = handle(http.get("method", ""), event.get("rawPath", ""), event.get("headers") or {}, body)
    return _answer(status, out)
