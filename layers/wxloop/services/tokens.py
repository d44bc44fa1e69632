"""Renewing each account's shared access_token before it is due (the scheduled token refresher).

It takes the same DynamoDB lease as the workers (``wxloop.adapters.wechat``), so it never fetches in
parallel with one. Deployed with a fixed egress IP when OA accounts have an IP allow-list (40164).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aws_lambda_powertools import Logger

from wxloop.services.log_fields import error_fields

logger = Logger(child=True)
Refresh = Callable[[str, int], bool]  # (app_id, margin) -> True when it fetched


def _wechat_refresh(app_id: str, margin: int) -> bool:
    from wxloop.adapters import wechat  # requests + wechatpy: only in the functions that fetch tokens

    return wechat.refresh_if_due(app_id, margin=margin)


def refresh_margin() -> int:
    """Seconds before expiry at which a token is renewed (``TOKEN_REFRESH_MARGIN_SECONDS``)."""
    from wxloop.adapters import wechat

    return wechat.refresh_margin()


def refresh_due(app_ids: Iterable[str], *, margin: int, refresh: Refresh = _wechat_refresh) -> dict[str, str]:
    """Renew the token of every app in ``app_ids`` that expires within ``margin`` seconds. Returns each
    app's result: ``refreshed``, ``unchanged`` (still fresh, or another instance is renewing it) or
    ``failed`` (logged with its type and errcode; one account's failure never stops the others)."""
    result: dict[str, str] = {}
    for app_id in app_ids:
        try:
            result[app_id] = "refreshed" if refresh(app_id, margin) else "unchanged"
        except Exception as exc:  # alarm on the metric; the next run tries again
            result[app_id] = "failed"
            logger.error("token refresh failed", extra={"app_id": app_id, **error_fields(exc)})
    return result
