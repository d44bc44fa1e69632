"""WeChat's server API: wechatpy's client with one shared access_token per app, kept in DynamoDB.

Only the worker and the token refresher import this module (it pulls in ``requests`` and the whole of
wechatpy); the webhooks never call WeChat on their critical path.

The token protocol (see ``wxloop.adapters.repository`` "tokens"):
- Every instance reads the token item; a token with more than ``margin`` seconds left is used as is.
- Missing or due: the instance takes a conditional-write lease and fetches through ``stable_token``; the
  others keep using a still-valid token, or poll the item (bounded) until the lease holder stores one.
  So concurrent instances make ONE fetch, and the 2000/day ``/cgi-bin/token`` quota is never touched.
- Two margins: the scheduled refresher renews from ``TOKEN_REFRESH_MARGIN_SECONDS`` (300) before expiry,
  which is when stable_token starts handing out a new token; workers only fetch themselves from
  ``TOKEN_USE_MARGIN_SECONDS`` (60) before expiry, i.e. when the refresher has failed. An Official Account
  with an IP allow-list can only fetch from the refresher's fixed egress IP (40164 elsewhere).
- On 40001/40014/42001 the failed token is expired only if it is still the stored one (compare-and-expire),
  then the call is retried once with a fresh token. wechatpy's own ``auto_retry`` is off: it refetches with
  ``/cgi-bin/token`` and retries without bound.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

from wxloop.adapters import repository
from wxloop.protocol.errcodes import Action, action_of, codes_for
from wxloop.settings import settings

logger = logging.getLogger(__name__)

REAL_API_BASE = "https://api.weixin.qq.com/"
TOKEN_ERRCODES = codes_for(Action.TOKEN_INVALID)  # 40001, 40014, 42001: expire the token, retry once
_TRANSIENT_ACTIONS = frozenset({Action.TRANSIENT, Action.TOKEN_INVALID, Action.TOKEN_FETCH})
TOKEN_PATH = "/cgi-bin/stable_token"  # noqa: S105 - a URL path, not a secret


def api_base() -> str:
    """``WECHAT_API_BASE`` with exactly one trailing slash (wechatpy joins ``base + endpoint``)."""
    return settings().wechat_api_base.rstrip("/") + "/"


def refresh_margin() -> int:
    """Seconds before expiry at which the refresher renews (stable_token hands out a new one from 5 min)."""
    return settings().token_refresh_margin_seconds


def use_margin() -> int:
    """Seconds before expiry at which a worker stops trusting a token and renews it itself."""
    return settings().token_use_margin_seconds


def api_timeout() -> float:
    return settings().wechat_api_timeout


class WeChatAPIError(RuntimeError):
    """WeChat answered with an errcode, or did not answer properly.

    ``errcode`` is None for transport failures (HTTP 5xx, timeouts, connection errors, bodies that are not
    JSON); ``transient`` says whether trying again later may succeed (SQS retry): transport failures,
    -1 (system busy), a token still refused after one refresh, and any failure to get a token (40164 IP not
    allowed, 40125 wrong secret: the job itself was not refused, keep it until the token is fixed). What
    each errcode means and what wxloop does about it: ``wxloop.protocol.errcodes``.
    """

    def __init__(self, errcode: int | None, errmsg: str = "", *, http_status: int | None = None, path: str = ""):
        self.errcode = errcode
        self.errmsg = errmsg
        self.http_status = http_status
        self.path = path
        where = f" on {path}" if path else ""
        super().__init__(f"WeChat error {errcode}{where}: {errmsg}"[:300])

    @property
    def transient(self) -> bool:
        return action_of(self.errcode) in _TRANSIENT_ACTIONS or self.path == TOKEN_PATH


def _path_of(url: str | None) -> str:
    if not url:
        return ""
    return "/" + url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]


def _from_wechatpy(exc: WeChatClientException) -> WeChatAPIError:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    url = getattr(getattr(exc, "request", None), "url", None)
    return WeChatAPIError(exc.errcode, str(exc.errmsg or ""), http_status=status, path=_path_of(url))


def _json_call(http: requests.Session, method: str, url: str, *, timeout: float, **kwargs: Any) -> dict:
    """One raw HTTP call to WeChat; errcode != 0 and transport failures become ``WeChatAPIError``."""
    path = _path_of(url)
    try:
        res = http.request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        raise WeChatAPIError(None, type(exc).__name__, path=path) from exc
    if res.status_code >= 400:
        raise WeChatAPIError(None, f"HTTP {res.status_code}", http_status=res.status_code, path=path)
    try:
        doc = res.json()
    except ValueError:
        raise WeChatAPIError(None, "response is not JSON", http_status=res.status_code, path=path) from None
    code = int(doc.get("errcode") or 0)
    if code:
        raise WeChatAPIError(code, str(doc.get("errmsg", "")), http_status=res.status_code, path=path)
    return doc


def stable_token(
    app_id: str, secret: str, *, force_refresh: bool = False, base: str | None = None,
    http: requests.Session | None = None, timeout: float | None = None,
) -> dict:
    """POST ``/cgi-bin/stable_token``: ``{"access_token", "expires_in"}``.

    wechatpy 1.8.18 only knows ``/cgi-bin/token`` (2000/day, each call invalidates the previous token);
    ``stable_token`` (10,000/min) returns the same token until 5 minutes before it expires, so it is safe
    to call from several places. ``force_refresh`` (20/day) is never used by wxloop's own code.
    """
    return _json_call(
        http or requests.Session(), "POST", (base or api_base()) + "cgi-bin/stable_token",
        timeout=timeout if timeout is not None else api_timeout(),
        json={"grant_type": "client_credential", "appid": app_id, "secret": secret,
              "force_refresh": bool(force_refresh)},
    )


class DynamoTokenStore(SessionStorage):
    """wechatpy session storage backed by the token item ``TOKEN#{app_id}``, plus the lease protocol.

    ``fetch()`` returns WeChat's ``{"access_token", "expires_in"}``. One store per client; a short
    in-memory copy saves a read per call while the token is comfortably valid.
    """

    def __init__(
        self, app_id: str, fetch: Callable[[], Mapping[str, Any]], *, margin: int | None = None,
        lease_seconds: int = 10, wait_seconds: float = 12.0, clock: Callable[[], float] = time.time,
    ):
        self.app_id = app_id
        self.fetch = fetch
        self.margin = use_margin() if margin is None else int(margin)
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.clock = clock
        self.owner = uuid.uuid4().hex
        self._cached: tuple[str, int] | None = None
        self._lock = threading.Lock()
        self.fetches = 0  # fetches this store made (for logs and tests)

    # -- wechatpy's SessionStorage: only the access-token key is meaningful here --------------------------

    def get(self, key, default=None):
        if not str(key).endswith("_access_token"):
            return default
        item = repository.get_token(self.app_id)
        if item and item.get("access_token") and item.get("expires_at", 0) > self.clock():
            return item["access_token"]
        return default

    def set(self, key, value, ttl=None):
        # wxloop fetches through the lease only (``_fetch_and_store``); a token handed in without one would
        # race the lease holder's, so it is not stored
        return

    def delete(self, key):
        cached = self._cached
        if cached:
            self.expire_if(cached[0])

    # -- the protocol -------------------------------------------------------------------------------------

    def token(self) -> str:
        """A valid access token: cached, stored, or fetched once across all instances."""
        cached = self._cached
        if cached and cached[1] - self.clock() > self.margin:
            return cached[0]
        with self._lock:  # threads of one container queue behind one DynamoDB round
            return self._token_locked()

    def _token_locked(self) -> str:
        deadline = self.clock() + self.wait_seconds
        pause = 0.05
        while True:
            now = int(self.clock())
            item = repository.get_token(self.app_id) or {}
            token, expires_at = item.get("access_token"), int(item.get("expires_at") or 0)
            if token and expires_at - now > self.margin:
                self._cached = (token, expires_at)
                return token
            lease = self._lease(now, due_before=now + self.margin)
            if lease is not None:
                return self._fetch_and_store(lease)
            if token and expires_at - now > 30:  # due, but someone else is renewing it: use it meanwhile
                return token
            if self.clock() >= deadline:
                raise WeChatAPIError(None, "timed out waiting for another instance to fetch the token",
                                     path=TOKEN_PATH)
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def _lease(self, now: int, *, due_before: int) -> str | None:
        """Take the fetch lease; returns its owner value (new for every lease: it fences the store)."""
        owner = f"{self.owner}:{uuid.uuid4().hex[:12]}"
        if repository.lease_token(self.app_id, owner, now=now, lease_seconds=self.lease_seconds,
                                  due_before=due_before):
            return owner
        return None

    def _fetch_and_store(self, lease: str) -> str:
        try:
            doc = self.fetch()
        except BaseException:
            try:
                repository.release_token_lease(self.app_id, lease)
            except Exception:  # the lease then runs out on its own (lease_seconds)
                logger.warning("token lease not released", extra={"app_id": self.app_id})
            raise
        self.fetches += 1
        now = int(self.clock())
        token = doc["access_token"]
        expires_at = now + int(doc.get("expires_in") or 7200)
        version = repository.store_token(self.app_id, token, expires_at=expires_at, owner=lease, now=now)
        if version is None:  # the fetch outlived the lease: whatever is stored now is newer than ours
            logger.warning("token fetch outlived its lease, not stored", extra={"app_id": self.app_id})
            item = repository.get_token(self.app_id) or {}
            if item.get("access_token") and int(item.get("expires_at") or 0) - now > self.margin:
                self._cached = (item["access_token"], int(item["expires_at"]))
                return item["access_token"]
            return token
        logger.info("access token fetched", extra={"app_id": self.app_id, "version": version})
        self._cached = (token, expires_at)
        return token

    def refresh_if_due(self, margin: int | None = None) -> bool:
        """Fetch a new token if the stored one expires within ``margin`` (default ``refresh_margin()``); True
        when this call fetched. Used by the scheduled refresher; takes the same lease as everyone else."""
        margin = refresh_margin() if margin is None else int(margin)
        now = int(self.clock())
        item = repository.get_token(self.app_id) or {}
        if item.get("access_token") and int(item.get("expires_at") or 0) - now > margin:
            return False
        lease = self._lease(now, due_before=now + margin)
        if lease is None:
            return False  # someone else is fetching, or just stored
        self._fetch_and_store(lease)
        return True

    def expire_if(self, token: str) -> bool:
        """Compare-and-expire ``token`` after WeChat rejected it; True when it was the stored one."""
        cached = self._cached
        if cached and cached[0] == token:
            self._cached = None
        return repository.expire_token(self.app_id, token, now=int(self.clock()))


class WxClient(WeChatClient):
    """``wechatpy.WeChatClient`` on ``WECHAT_API_BASE`` with the shared DynamoDB token.

    Errors come out as ``WeChatAPIError`` (never wechatpy's exceptions nor ``requests``' ones).
    """

    def __init__(self, app_id: str, secret: str, *, base: str | None = None, timeout: float | None = None,
                 store: DynamoTokenStore | None = None):
        self.base = (base or api_base()).rstrip("/") + "/"
        timeout = api_timeout() if timeout is None else timeout
        store = store or DynamoTokenStore(app_id, self._stable_token)
        super().__init__(app_id, secret, session=store, timeout=timeout, auto_retry=False)
        self.API_BASE_URL = self.base + "cgi-bin/"

    @property
    def store(self) -> DynamoTokenStore:
        return self.session

    def _stable_token(self) -> dict:
        return stable_token(self.appid, self.secret, base=self.base, http=self._http, timeout=self.timeout)

    @property
    def access_token(self) -> str:
        return self.session.token()

    def fetch_access_token(self) -> dict:
        """Renew now, through the shared lease (never a private ``/cgi-bin/token`` fetch); if another
        instance is renewing at this moment, its token is used."""
        self.session.refresh_if_due(margin=10**9)
        return {"access_token": self.session.token()}

    def _rebase(self, url: str) -> str:
        # wechatpy's API classes hard-code the real host (wxa, customservice…): point them at our base.
        return self.base + url[len(REAL_API_BASE):] if url.startswith(REAL_API_BASE) else url

    def _request(self, method, url_or_endpoint, **kwargs):
        if kwargs.get("api_base_url"):
            kwargs["api_base_url"] = self._rebase(kwargs["api_base_url"])
        url_or_endpoint = self._rebase(url_or_endpoint)
        params = kwargs.get("params")
        explicit = isinstance(params, dict) and "access_token" in params
        for attempt in (1, 2):
            call = dict(kwargs)
            token = None
            if not explicit:
                token = self.access_token
                call["params"] = {**(params or {}), "access_token": token}
            try:
                result = super()._request(method, url_or_endpoint, **call)
            except WeChatClientException as exc:
                if attempt == 1 and token and exc.errcode in TOKEN_ERRCODES:
                    self.session.expire_if(token)
                    continue
                raise _from_wechatpy(exc) from exc
            except requests.RequestException as exc:
                raise WeChatAPIError(None, type(exc).__name__, path=_path_of(str(url_or_endpoint))) from exc
            # wechatpy hands back the raw response when the body is not JSON: right for an image (e.g.
            # wxa/getwxacodeunlimit), but a text body (a proxy's HTML error page, status 200) is a failure
            if isinstance(result, requests.Response) and result.headers.get("Content-Type", "").startswith("text/"):
                raise WeChatAPIError(None, "response is not JSON", http_status=result.status_code,
                                     path=_path_of(str(url_or_endpoint)))
            return result
        raise AssertionError("unreachable")  # pragma: no cover


_clients: dict[tuple[str, str, str], WxClient] = {}
_clients_lock = threading.Lock()


def _secret_for(app_id: str) -> str:
    from wxloop.config import ConfigError, load_config

    account = load_config(with_app_secrets=True).account(app_id)
    if account is None or account.app_secret is None:
        # deployed, app secrets come from WECHAT_APP_SECRETS_SECRET, which only token-fetching functions get
        raise ConfigError(f"account {app_id} is not configured with an app_secret")
    return account.app_secret.get_secret_value()


def api_client(app_id: str) -> WxClient:
    """The container's client for ``app_id`` (created on first use; a rotated secret or base makes a new
    one). Raises ``wxloop.config.ConfigError`` when the account or its app_secret is missing."""
    secret, base = _secret_for(app_id), api_base()
    key = (app_id, secret, base)
    found = _clients.get(key)
    if found is None:
        with _clients_lock:
            found = _clients.get(key)
            if found is None:
                found = _clients[key] = WxClient(app_id, secret, base=base)
    return found


def new_client(app_id: str, secret: str | None = None, *, base: str | None = None,
               timeout: float | None = None) -> WxClient:
    """A fresh, uncached client (its own token store, as a separate Lambda instance would have)."""
    return WxClient(app_id, secret if secret is not None else _secret_for(app_id), base=base, timeout=timeout)


def reset() -> None:
    """Forget the cached clients (tests change the base URL and the AWS backend between cases)."""
    with _clients_lock:
        _clients.clear()


def refresh_if_due(app_id: str, *, margin: int | None = None) -> bool:
    """Refresh ``app_id``'s stored token if it expires within ``margin`` (default ``refresh_margin()``);
    True when this call fetched."""
    return api_client(app_id).store.refresh_if_due(margin)


# -- Mini Program endpoints ------------------------------------------------------------------------------


def code_to_session(app_id: str, js_code: str) -> dict:
    """``/sns/jscode2session``: ``{"openid", "session_key", "unionid"?}`` for a ``wx.login`` code.

    Not ``client.wxa.code_to_session``: wechatpy adds an access_token to it, costing a needless token read.
    Errors: 40029 invalid code, 40163 code used, 45011 rate limit, 40226 blocked user (``WeChatAPIError``).
    """
    client = api_client(app_id)
    return _json_call(
        client._http, "GET", client.base + "sns/jscode2session", timeout=client.timeout,
        params={"appid": app_id, "secret": client.secret, "js_code": js_code, "grant_type": "authorization_code"},
    )


def get_user_phone_number(app_id: str, code: str) -> dict:
    """``/wxa/business/getuserphonenumber`` (not in wechatpy 1.8.18): the ``phone_info`` of a
    ``getPhoneNumber`` button code: ``{"phoneNumber", "purePhoneNumber", "countryCode", "watermark"}``."""
    client = api_client(app_id)
    doc = client.post("wxa/business/getuserphonenumber", data={"code": code}, api_base_url=client.base)
    return doc.get("phone_info") or {}
