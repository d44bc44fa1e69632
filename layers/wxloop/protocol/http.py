"""API Gateway HTTP API (payload v2.0) events in and responses out, for every webhook: one place decodes the
method, app id, query (refusing repeated parameters), body and the request's arrival time."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from urllib.parse import parse_qsl


@dataclass(frozen=True, slots=True)
class HttpOut:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Request:
    """One decoded request. ``problem`` is set (with its answer) when the request is refused as such."""

    method: str
    app_id: str
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    time_epoch_ms: int | float | None = None
    request_id: str | None = None
    problem: HttpOut | None = None


def repeated_params(raw_query: str) -> set[str]:
    """Names given more than once in a raw query string (API Gateway joins their values with commas in
    ``queryStringParameters``, so ``encrypt_type=aes&encrypt_type=raw`` would read as ``aes,raw``)."""
    seen: set[str] = set()
    repeated: set[str] = set()
    for name, _ in parse_qsl(raw_query, keep_blank_values=True):
        (repeated if name in seen else seen).add(name)
    return repeated


def decode(event: dict) -> Request:
    """The request an HTTP API v2 event carries; ``problem`` = 400 for a repeated query parameter or a body
    API Gateway could not have encoded."""
    context = event.get("requestContext") or {}
    method = (context.get("http") or {}).get("method", "GET")
    app_id = (event.get("pathParameters") or {}).get("app_id", "")
    query = dict(event.get("queryStringParameters") or {})
    base = {"method": method, "app_id": app_id, "query": query, "time_epoch_ms": context.get("timeEpoch"),
            "request_id": context.get("requestId")}
    if repeated_params(event.get("rawQueryString") or ""):
        return Request(**base, problem=HttpOut(400, "repeated query parameter"))
    body = event.get("body") or ""
    try:
        raw = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else body.encode("utf-8")
    except (binascii.Error, ValueError):  # API Gateway encodes bodies itself: this is no WeChat request
        return Request(**base, problem=HttpOut(400, "bad body"))
    return Request(**base, body=raw)


def respond(out: HttpOut) -> dict:
    """The HTTP API v2 response for ``out``."""
    return {"statusCode": out.status, "headers": {"Content-Type": out.content_type}, "body": out.body}
