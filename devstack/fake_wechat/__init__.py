"""A fake of WeChat's server API on 127.0.0.1, for ``make run`` and the tests (stdlib only).

Behaves like the real one where wxloop depends on it:
- ``/cgi-bin/token`` issues a new token per call (the previous one keeps working for 5 minutes);
  ``/cgi-bin/stable_token`` returns the same token until 5 minutes before it expires, ``force_refresh``
  issues a new one and invalidates the previous. Tokens live 7200 s.
- Calls check ``access_token``: missing → 41001, unknown → 40001, expired → 42001 (the real codes).
  A wrong secret → 40125, an unknown appid → 40013.
- Every call is recorded (method, path, query, json); errors and delays can be injected per path.

Control API (JSON): ``GET /__fake/calls[?path=]``, ``POST /__fake/reset``, ``POST /__fake/fail``
``{"path", "errcode", "times", "status"?, "body"?}``, ``POST /__fake/slow`` ``{"path", "seconds", "times"}``,
``POST /__fake/users`` ``{"app_id", "openid", "unionid"?, ...}`` (or ``{"users": [...]}``),
``POST /__fake/codes`` ``{"app_id", "code", "openid", "unionid"?}`` (a ``wx.login`` code), ``POST /__fake/phones``
``{"app_id", "code", "phone"}`` (a phone button code),
``POST /__fake/expire`` ``{"app_id"?}`` (expire issued tokens), ``POST /__fake/rotate`` ``{"app_id"}`` (as if
someone force-refreshed the stable token).

Modules: ``server`` (state, control API, HTTP), ``endpoints`` (one fake per API path), ``replies``.
Standalone: ``python -m devstack.fake_wechat --port 8089`` (accounts from ``WECHAT_ACCOUNTS`` or
``--accounts FILE``).
"""

from devstack.fake_wechat.endpoints import OLD_TOKEN_GRACE, STABLE_RENEW_BEFORE, TOKEN_TTL
from devstack.fake_wechat.server import FakeWeChat, accounts_from_config

__all__ = ["OLD_TOKEN_GRACE", "STABLE_RENEW_BEFORE", "TOKEN_TTL", "FakeWeChat", "accounts_from_config"]
