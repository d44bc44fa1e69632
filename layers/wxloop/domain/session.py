"""Mini Program session tokens (pure: hmac, no I/O).

``POST /mp/{app_id}/session`` issues a token the client sends as ``Authorization: Bearer <token>``. It is
``v1.<claims>.<mac>``: the claims are compact JSON in base64url (app id, person, cold-start scene, issue and
expiry times), the mac is HMAC-SHA256 over ``v1.<claims>`` with the first of the config's ``session_keys``.
Any configured key verifies, so keys rotate: add the new key first, drop the old one after the longest
token lifetime. Claims carry no openid, unionid or phone; they are readable by the client, not secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

VERSION = "v1"
MAX_TOKEN_CHARS = 600  # a real token is ~200: anything longer is refused before any work
_CONTEXT = b"wxloop/mp-session/"  # domain separation: these keys sign nothing else with the same input
_UID = re.compile(r"^[0-9a-f]{32}$")
_APP_ID = re.compile(r"^wx[0-9a-f]{16}$")


class TokenInvalid(ValueError):
    """Malformed, tampered, signed with no configured key, or expired: the client must log in (401)."""


class TokenExpired(TokenInvalid):
    """Well signed but past its expiry (401)."""


class WrongApp(ValueError):
    """A valid token of another Mini Program (403)."""


@dataclass(frozen=True, slots=True)
class SessionClaims:
    """Who a token speaks for: ``app_id`` (the MP), ``uid`` (the person), ``scene`` (the cold-start scene of
    the launch that logged in, 0 when unknown), ``issued_at`` / ``expires_at`` (epoch seconds)."""

    app_id: str
    uid: str
    scene: int
    issued_at: int
    expires_at: int


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise TokenInvalid("token is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenInvalid("token is not base64url") from None


def _mac(key: bytes, signed: bytes) -> bytes:
    return hmac.new(key, _CONTEXT + signed, hashlib.sha256).digest()


def issue(claims: SessionClaims, keys: Sequence[bytes]) -> str:
    """The token for ``claims``, signed with ``keys[0]``. Raises ``ValueError`` without a usable key."""
    if not keys or len(keys[0]) < 16:
        raise ValueError("session_keys[0] must hold at least 16 bytes")
    body = {"a": claims.app_id, "u": claims.uid, "s": int(claims.scene), "i": int(claims.issued_at),
            "e": int(claims.expires_at)}
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode("ascii"))
    signed = f"{VERSION}.{payload}".encode("ascii")
    return f"{VERSION}.{payload}.{_b64(_mac(keys[0], signed))}"


def verify(token: str, keys: Sequence[bytes], *, app_id: str, now: int) -> SessionClaims:
    """The claims of ``token`` when some key of ``keys`` signed it, it has not expired at ``now`` and it was
    issued for ``app_id``. Raises ``TokenInvalid`` / ``TokenExpired`` (401) or ``WrongApp`` (403, only for a
    well-signed token: a forged one never learns which app it names). MACs compare in constant time."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise TokenInvalid("no token")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise TokenInvalid("not a session token")
    mac = _unb64(parts[2])
    signed = f"{parts[0]}.{parts[1]}".encode("ascii")
    good = False
    for key in keys:  # every key is tried: the time taken does not tell which one matched
        good |= hmac.compare_digest(_mac(key, signed), mac)
    if not good:
        raise TokenInvalid("bad signature")
    claims = _claims(_unb64(parts[1]))
    if claims.expires_at <= now:
        raise TokenExpired("token expired")
    if claims.app_id != app_id:
        raise WrongApp("token of another app")
    return claims


def _claims(raw: bytes) -> SessionClaims:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise TokenInvalid("claims are not JSON") from None
    if not isinstance(body, dict):
        raise TokenInvalid("claims are not an object")
    app, uid, scene, iat, exp = (body.get(k) for k in ("a", "u", "s", "i", "e"))
    ints = all(type(v) is int for v in (scene, iat, exp))
    if not (isinstance(app, str) and _APP_ID.match(app) and isinstance(uid, str) and _UID.match(uid) and ints):
        raise TokenInvalid("claims malformed")
    return SessionClaims(app, uid, cast(int, scene), cast(int, iat), cast(int, exp))  # ints checked above
