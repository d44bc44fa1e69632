"""What the MP API tests share: API Gateway v2 events for ``/mp/{app_id}/…``, the handler, logging in.

``pytest_plugins = ["tests.integration.mp_api_kit"]`` brings the fixture (``mp_api``); the helpers are imported.
"""

from __future__ import annotations

import json
import secrets
import time

import pytest

from tests.conftest import MP_APP, load_handler


def mp_event(method: str, path: str, body=None, *, token: str | None = None, app_id: str = MP_APP,
             raw: str | None = None, query: dict | None = None, headers: dict | None = None,
             base64_body: bool = False) -> dict:
    """An HTTP API (payload 2.0) event for ``/mp/{app_id}/{path}`` as Lambda receives it."""
    full = f"/mp/{app_id}/{path}"
    text = raw if raw is not None else (json.dumps(body, ensure_ascii=False) if body is not None else None)
    hdrs = {"content-type": "application/json", "host": "localhost", **(headers or {})}
    if token:
        hdrs["authorization"] = f"Bearer {token}"
    now_ms = int(time.time() * 1000)
    return {
        "version": "2.0", "routeKey": "ANY /mp/{app_id}/{proxy+}", "rawPath": full,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()), "headers": hdrs,
        "queryStringParameters": dict(query) if query else None,
        "pathParameters": {"app_id": app_id, "proxy": path},
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "localhost", "domainPrefix": "local",
            "http": {"method": method, "path": full, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": "wechat-mp"},
            "requestId": secrets.token_hex(8), "routeKey": "ANY /mp/{app_id}/{proxy+}", "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000"), "timeEpoch": now_ms,
        },
        "body": text, "isBase64Encoded": base64_body,
    }


@pytest.fixture
def mp_api(aws):
    """The mp_api handler module, with per-container caches of the MP API cleared."""
    from wxloop.services.mp_api import context, idempotency

    context.mp_settings.cache_clear()
    idempotency.reset()
    yield load_handler("mp_api")
    context.mp_settings.cache_clear()
    idempotency.reset()


def call(mp_api, context, method: str, path: str, body=None, **kw) -> tuple[int, dict]:
    out = mp_api.lambda_handler(mp_event(method, path, body, **kw), context)
    assert out["headers"].get("Content-Type", out["headers"].get("content-type", "")).startswith("application/json")
    return out["statusCode"], json.loads(out["body"]) if out.get("body") else {}


def login(mp_api, context, fake, *, code: str | None = None, openid: str | None = None, unionid=None,
          consents: tuple[str, ...] = ("analytics", "marketing", "personalisation", "phone"), **body) -> dict:
    """Log in through POST session with a code the fake resolves to ``openid``; returns the answer. The
    person has granted ``consents`` (written to the table, not counted against the rate limit)."""
    code = code or secrets.token_hex(8)
    if openid:
        fake.add_code(MP_APP, code, openid, unionid)
    status, doc = call(mp_api, context, "POST", "session", {"code": code, **body})
    assert status == 200, doc
    if consents:
        grant(uid_of(doc["token"]), consents)
    return doc


def uid_of(token: str) -> str:
    from wxloop.domain import session
    from wxloop.services.mp_api.context import signing_keys

    return session.verify(token, signing_keys(), app_id=MP_APP, now=int(time.time())).uid


def grant(uid: str, purposes, *, granted: bool = True, at: int | None = None) -> None:
    from wxloop.adapters.dynamo import privacy
    from wxloop.domain.consent import Consent

    for purpose in purposes:
        privacy.record_consent(uid, Consent(purpose, granted, "v1", at or int(time.time()) - 5, "operator"))


def people(aws) -> list[dict]:
    return [i for i in aws.items() if i["sk"] == "PROFILE"]
