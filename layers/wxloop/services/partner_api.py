"""The brand's own servers: ``POST /partner/{app_id}/events`` and ``POST /partner/{app_id}/points``.

Authentication (written here: wechatpy has nothing for a brand's server). Headers ``X-Wxloop-Key`` (a key id
of the config's ``partner_keys``), ``X-Wxloop-Timestamp`` (epoch seconds), ``X-Wxloop-Nonce`` (16-64 of
``[A-Za-z0-9_-]``), ``Idempotency-Key`` (8-64 of the same) and ``X-Wxloop-Signature``: hex HMAC-SHA256 with
the key's secret over ``METHOD\\npath\\ntimestamp\\nnonce\\nidempotency key\\nsha256-hex(body)``, compared in
constant time. Answers: 401 missing or malformed credentials or an unknown key; 403 a wrong signature or a
timestamp off by more than ``PARTNER_SKEW_SECONDS`` (300); 409 a replayed nonce, or an idempotency key
reused for another request. Nothing is written before the signature holds; a retry with the same
idempotency key gets the first answer. Errors have the MP API's shape.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping

from aws_lambda_powertools import Logger

from wxloop.adapters.dynamo import partner
from wxloop.adapters.dynamo import rewards as store
from wxloop.adapters.dynamo.codec import RepositoryError
from wxloop.config import load_config
from wxloop.domain.rewards import EVENT_NAME, LedgerEntry
from wxloop.services.mp_api.errors import ApiError
from wxloop.settings import settings

logger = Logger(child=True)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_ROUTE = re.compile(r"^/partner/(wx[0-9a-f]{16})/(events|points)$")
_OPENID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_POINTS = 1_000_000


def signature(secret: str, method: str, path: str, timestamp: str, nonce: str, idem: str, body: bytes) -> str:
    """The hex signature a partner sends (the brand's server computes the same)."""
    text = "\n".join((method.upper(), path, timestamp, nonce, idem, hashlib.sha256(body).hexdigest()))
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()


def authenticate(method: str, path: str, headers: Mapping[str, str], body: bytes, now: int) -> tuple[str, str]:
    """(key id, idempotency key) of a correctly signed, fresh, first-seen request; else ``ApiError``."""
    h = {k.lower(): v for k, v in headers.items()}
    key_id, ts, nonce = h.get("x-wxloop-key", ""), h.get("x-wxloop-timestamp", ""), h.get("x-wxloop-nonce", "")
    sig, idem = h.get("x-wxloop-signature", ""), h.get("idempotency-key", "")
    if not (_KEY_ID.match(key_id) and ts.isdigit() and len(ts) <= 12 and _NONCE.match(nonce)
            and re.fullmatch(r"[0-9a-f]{64}", sig)):
        raise ApiError(401, "sign the request (X-Wxloop-Key, -Timestamp, -Nonce, -Signature)")
    if not _TOKEN.match(idem):
        raise ApiError(401, "an Idempotency-Key header is required")
    secret = load_config().partner_keys.get(key_id)
    if secret is None:
        raise ApiError(401, "unknown partner key")
    expected = signature(secret.get_secret_value(), method, path, ts, nonce, idem, body)
    if not hmac.compare_digest(expected, sig):
        raise ApiError(403, "bad signature")
    skew = settings().partner_skew_seconds
    if abs(now - int(ts)) > skew:
        raise ApiError(403, "timestamp out of range")
    if not partner.use_nonce(key_id, nonce, expires_at=int(ts) + 2 * skew + 60):
        raise ApiError(409, "replayed request", "replayed")
    return key_id, idem


def handle(method: str, path: str, headers: Mapping[str, str], body: bytes, *, now: int | None = None
           ) -> tuple[int, dict]:
    """(status, JSON body) for one partner request. Never raises for bad input."""
    now = int(time.time()) if now is None else now
    try:
        return _handle(method, path, headers, body, now)
    except ApiError as exc:
        return exc.status, exc.body()


def _handle(method: str, path: str, headers: Mapping[str, str], body: bytes, now: int) -> tuple[int, dict]:
    route = _ROUTE.match(path)
    if not route or load_config().account(route.group(1)) is None:
        raise ApiError(404, "no such route")
    if method.upper() != "POST":
        raise ApiError(405 if route else 404, "use POST", "method_not_allowed")
    app_id, action = route.groups()
    key_id, idem = authenticate(method, path, headers, body, now)
    doc = _json_object(body)
    scope = f"{key_id}#{idem}"
    held = partner.claim_request(app_id, scope, hashlib.sha256(path.encode() + b"\n" + body).hexdigest(), now=now)
    if held is not None:
        if held.get("hash") != hashlib.sha256(path.encode() + b"\n" + body).hexdigest():
            raise ApiError(409, "idempotency key used for another request", "idempotency_conflict")
        if "body" not in held:
            raise ApiError(409, "the first request with this key is still running", "in_progress")
        return int(held.get("status", 200)), held["body"]
    try:
        status, out = (_event if action == "events" else _debit)(app_id, doc, key_id, idem, now)
    except ApiError as exc:
        status, out = exc.status, exc.body()
    except RepositoryError:
        partner.release_request(app_id, scope)
        raise ApiError(503, "try again") from None
    if status >= 500:  # our failure: the partner's retry with the same key must run again
        partner.release_request(app_id, scope)
    else:
        partner.settle_request(app_id, scope, status, out)
    return status, out


def _json_object(body: bytes) -> dict:
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, "the body must be a JSON object") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "the body must be a JSON object")
    return doc


def _person(app_id: str, doc: Mapping) -> str:
    openid, unionid = doc.get("openid"), doc.get("unionid")
    if not any(isinstance(v, str) and _OPENID.match(v) for v in (openid, unionid)):
        raise ApiError(422, "openid or unionid is required")
    uid = partner.uid_of(app_id, openid=openid if isinstance(openid, str) else None,
                         unionid=unionid if isinstance(unionid, str) and not openid else None)
    if uid is None:
        raise ApiError(404, "unknown person")
    return uid


def _event(app_id: str, doc: Mapping, key_id: str, idem: str, now: int) -> tuple[int, dict]:
    from wxloop.domain.rewards import InviteeEvent
    from wxloop.services import rewards

    name = doc.get("event")
    if not isinstance(name, str) or not EVENT_NAME.fullmatch(name) or set(doc) - {"event", "openid", "unionid"}:
        raise ApiError(422, "event must be a name like first_order; fields: event, openid or unionid")
    uid = _person(app_id, doc)
    outcome = rewards.qualify(InviteeEvent("event", uid, now, name=name))
    logger.info("partner event", extra={"app_id": app_id, "key_id": key_id, "event": name, "outcome": outcome})
    return 200, {"event": name, "outcome": outcome}


def _debit(app_id: str, doc: Mapping, key_id: str, idem: str, now: int) -> tuple[int, dict]:
    points, reason = doc.get("points"), doc.get("reason", "")
    if type(points) is not int or not 1 <= points <= MAX_POINTS or not isinstance(reason, str) \
            or len(reason) > 60 or set(doc) - {"points", "reason", "openid", "unionid"}:
        raise ApiError(422, f"points must be an integer from 1 to {MAX_POINTS}; reason at most 60 characters")
    uid = _person(app_id, doc)
    entry = LedgerEntry(f"debit#{key_id}#{idem}", uid, -points, reason or "spent", "", "", now)
    out = store.apply_debit(entry)
    if out.status == "insufficient":
        raise ApiError(409, "not enough points", "insufficient_points")
    if out.status not in ("done", "repeat"):
        raise ApiError(503, "try again")
    balance, _ = store.person_points(uid)
    return 200, {"debited": points, "balance": balance}
