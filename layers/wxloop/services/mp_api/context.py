"""What every MP API call needs: settings, the account and its linked OA, the signing keys, the caller."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

from wxloop.config import load_config
from wxloop.domain import session
from wxloop.services.mp_api.errors import ApiError
from wxloop.settings import settings


@dataclass(frozen=True, slots=True)
class MpSettings:
    session_ttl_seconds: int
    rate_limit_per_minute: int
    prompt_cooldown_days: int
    event_skew_seconds: int


@lru_cache(maxsize=1)
def mp_settings() -> MpSettings:
    """``MP_SESSION_TTL_SECONDS`` (2 days), ``MP_RATE_LIMIT_PER_MINUTE`` (120),
    ``FOLLOW_PROMPT_COOLDOWN_DAYS`` (7), ``MP_EVENT_SKEW_SECONDS`` (300); read once per container."""
    env = settings()
    return MpSettings(
        session_ttl_seconds=max(60, env.mp_session_ttl_seconds),
        rate_limit_per_minute=max(1, min(999, env.mp_rate_limit_per_minute)),
        prompt_cooldown_days=env.follow_prompt_cooldown_days,
        event_skew_seconds=env.mp_event_skew_seconds,
    )


def mp_account(app_id: str):
    """The Mini Program account ``app_id``; 404 for anything else (unknown, or an OA)."""
    account = load_config().account(app_id)
    if account is None or account.kind != "mp":
        raise ApiError(404, "unknown mini program")
    return account


def linked_oa(app_id: str) -> tuple[str, str] | None:
    """(app id, name) of the Official Account that links the MP ``app_id`` (the first by app id), or None."""
    for oa_id, account in sorted(load_config().accounts.items()):
        if account.kind == "oa" and app_id in account.linked_mps:
            return oa_id, account.name
    return None


def signing_keys() -> tuple[bytes, ...]:
    """The config's ``session_keys`` as bytes (the first signs and seals); 503 when none is configured."""
    keys = tuple(k.get_secret_value().encode("utf-8") for k in load_config().session_keys)
    if not keys or len(keys[0]) < 16:  # a short signing key is as good as none
        raise ApiError(503, "sessions are not configured")
    return keys


def authenticate(app_id: str, authorization: str | None, now: int | None = None) -> session.SessionClaims:
    """The claims of the caller's ``Authorization: Bearer <token>``: 401 when missing, malformed, forged or
    expired; 403 for a token of another app. The client's own idea of its openid is never asked for."""
    mp_account(app_id)
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "log in first")
    try:
        return session.verify(token.strip(), signing_keys(), app_id=app_id,
                              now=int(time.time()) if now is None else now)
    except session.WrongApp:
        raise ApiError(403, "token of another mini program") from None
    except session.TokenExpired:
        raise ApiError(401, "session expired, log in again", "session_expired") from None
    except session.TokenInvalid:
        raise ApiError(401, "log in first") from None
