"""Every WeChat API errcode wxloop acts on, with its meaning and what the code does about it.

One table, so the worker, the API client and the Mini Program endpoints agree on what a code means. An
errcode not listed here is ``Action.FAILED``: recorded with the job, never retried. Pure module (no
wechatpy, no HTTP): the domain and services may import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    """What wxloop does when WeChat answers with a code."""

    TRANSIENT = "transient"  # try again later (SQS retry with a growing delay)
    TOKEN_INVALID = "token_invalid"  # noqa: S105 - an action name; compare-and-expire the token, fetch a new one, retry the call once
    TOKEN_FETCH = "token_fetch"  # noqa: S105 - no token can be had: not the job's fault, keep it
    QUOTA_BLOCK = "quota_block"  # the API's daily quota is used up: no call to it until midnight China time
    CHANNEL_CLOSED = "channel_closed"  # this person cannot be reached on this channel now: no retry
    BACKOFF = "backoff"  # a per-person cap: re-queue the job with a growing delay
    CLIENT_CODE = "client_code"  # a wx.login / button code that the Mini Program must get again
    RATE_LIMITED = "rate_limited"  # a per-minute limit: the caller slows down
    BLOCKED = "blocked"  # WeChat flags the user as high risk
    TAG_EXISTS = "tag_exists"  # the tag name is taken: look its id up instead of creating it
    FAILED = "failed"  # anything else: recorded, not retried


@dataclass(frozen=True, slots=True)
class ErrCode:
    code: int
    meaning: str
    action: Action


SYSTEM_BUSY = -1
INVALID_CREDENTIAL = 40001
INVALID_ACCESS_TOKEN = 40014
ACCESS_TOKEN_EXPIRED = 42001
INVALID_APP_SECRET = 40125
IP_NOT_ALLOWED = 40164
DAILY_QUOTA = 45009
OUT_OF_CS_WINDOW = 45015
NO_SUBSCRIBE_CREDIT = 43101
CS_MESSAGE_CAP = 45047
TAG_NAME_EXISTS = 45157
INVALID_CODE = 40029
CODE_USED = 40163
MINUTE_QUOTA = 45011
RISKY_USER = 40226

CODES: dict[int, ErrCode] = {e.code: e for e in (
    ErrCode(SYSTEM_BUSY, "system busy", Action.TRANSIENT),
    ErrCode(INVALID_CREDENTIAL, "invalid credential (access_token invalid or not the latest)", Action.TOKEN_INVALID),
    ErrCode(INVALID_ACCESS_TOKEN, "invalid access_token", Action.TOKEN_INVALID),
    ErrCode(ACCESS_TOKEN_EXPIRED, "access_token expired", Action.TOKEN_INVALID),
    ErrCode(INVALID_APP_SECRET, "invalid appsecret (rotated, config not updated)", Action.TOKEN_FETCH),
    ErrCode(IP_NOT_ALLOWED, "caller IP not on the account's allow-list", Action.TOKEN_FETCH),
    ErrCode(DAILY_QUOTA, "daily quota of this API used up", Action.QUOTA_BLOCK),
    ErrCode(OUT_OF_CS_WINDOW, "out of the customer-service window (or unfollowed)", Action.CHANNEL_CLOSED),
    ErrCode(NO_SUBSCRIBE_CREDIT, "the user has no subscribe-message credit for the template", Action.CHANNEL_CLOSED),
    ErrCode(CS_MESSAGE_CAP, "the user's customer-service message cap is reached", Action.BACKOFF),
    ErrCode(TAG_NAME_EXISTS, "tag name invalid or already taken", Action.TAG_EXISTS),
    ErrCode(INVALID_CODE, "invalid code", Action.CLIENT_CODE),
    ErrCode(CODE_USED, "code already used", Action.CLIENT_CODE),
    ErrCode(MINUTE_QUOTA, "API called too often this minute", Action.RATE_LIMITED),
    ErrCode(RISKY_USER, "high-risk user", Action.BLOCKED),
)}


def action_of(errcode: int | None) -> Action:
    """What to do about ``errcode``; None (no answer, HTTP 5xx, a body that is not JSON) is transient."""
    if errcode is None:
        return Action.TRANSIENT
    found = CODES.get(errcode)
    return found.action if found is not None else Action.FAILED


def codes_for(action: Action) -> frozenset[int]:
    """Every listed code whose action is ``action``."""
    return frozenset(e.code for e in CODES.values() if e.action is action)
