"""The fake server: its state (accounts, tokens, users, codes, tags), the control API, token checks, and the
HTTP server that feeds it."""

# long: one stdlib fake of every WeChat endpoint wxloop calls, its error codes and its control API

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devstack.fake_wechat.endpoints import ROUTES, TOKEN_TTL
from devstack.fake_wechat.replies import _OK, _err, _Reply

# Endpoints that need an access_token (everything but token fetches and jscode2session).
_OPEN_PATHS = frozenset({"/cgi-bin/token", "/cgi-bin/stable_token", "/sns/jscode2session"})


class FakeWeChat:
    """The fake server and its state. ``accounts`` maps app id → app secret."""

    def __init__(self, accounts: Mapping[str, str] | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 clock: Callable[[], float] = time.time):
        self.accounts: dict[str, str] = dict(accounts or {})
        self.host, self.port = host, port
        self.clock = clock
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # -- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> str:
        """Serve in a background thread; returns the base URL (``http://127.0.0.1:PORT``)."""
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-wechat", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> FakeWeChat:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- Python control API -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget calls, tokens, injected failures and delays, users and codes (accounts stay)."""
        with self._lock:
            self._calls: list[dict] = []
            self._tokens: dict[str, tuple[str, float]] = {}  # token → (app_id, expires_at)
            self._stable: dict[str, str] = {}  # app_id → current stable token
            self._fail: dict[str, list[dict]] = {}
            self._slow: dict[str, list[float]] = {}
            self._users: dict[tuple[str | None, str], dict] = {}
            self._codes: dict[tuple[str, str], dict] = {}
            self._used_codes: set[tuple[str, str]] = set()
            self._phone_codes: dict[tuple[str | None, str], dict] = {}
            self._tags: dict[str, dict[int, str]] = {}
            self._user_tags: dict[tuple[str | None, str], set[int]] = {}

    def add_account(self, app_id: str, secret: str) -> None:
        with self._lock:
            self.accounts[app_id] = secret

    def calls(self, path: str | None = None) -> list[dict]:
        """Recorded calls (oldest first), optionally only those to ``path``."""
        with self._lock:
            return [dict(c) for c in self._calls if path is None or c["path"] == path]

    def fail_next(self, path: str, errcode: int | None = None, times: int = 1, *, status: int = 200,
                  body: str | None = None) -> None:
        """The next ``times`` calls to ``path`` answer ``errcode`` (or HTTP ``status`` ≥ 500, no errcode), or
        ``body`` as ``text/html`` with ``status`` (e.g. a proxy's error page: an answer that is not JSON)."""
        if errcode is None and status < 400 and body is None:
            raise ValueError("give an errcode, an HTTP status >= 400 or a body")
        with self._lock:
            self._fail.setdefault(path, []).extend([{"errcode": errcode, "status": status, "body": body}] * int(times))

    def slow_next(self, path: str, seconds: float, times: int = 1) -> None:
        """The next ``times`` calls to ``path`` wait ``seconds`` before answering."""
        with self._lock:
            self._slow.setdefault(path, []).extend([float(seconds)] * int(times))

    def add_user(self, app_id: str, openid: str, unionid: str | None = None, *, subscribe: int = 1,
                 phone: str | None = None, **extra: Any) -> None:
        """Register a user of ``app_id``: ``user/info`` returns it (with ``unionid`` when given), and
        ``jscode2session`` returns the unionid for codes that resolve to this openid."""
        user = {"subscribe": subscribe, "openid": openid, "language": "zh_CN",
                "subscribe_time": int(self.clock()), "remark": "", "groupid": 0, "tagid_list": [],
                "subscribe_scene": "ADD_SCENE_QR_CODE", "qr_scene": 0, "qr_scene_str": ""}
        if unionid:
            user["unionid"] = unionid
        if phone:
            user["phone"] = phone
        user.update(extra)
        with self._lock:
            self._users[(app_id, openid)] = user

    def add_code(self, app_id: str, code: str, openid: str, unionid: str | None = None) -> None:
        """Make the ``wx.login`` code ``code`` resolve to ``openid`` in ``jscode2session``."""
        with self._lock:
            self._codes[(app_id, code)] = {"openid": openid, "unionid": unionid}

    def add_phone_code(self, app_id: str, code: str, phone: str, country_code: str = "86") -> None:
        with self._lock:
            self._phone_codes[(app_id, code)] = {"phone": phone, "country_code": country_code}

    def openid_for_code(self, app_id: str, code: str) -> str:
        """The openid an unregistered code resolves to (stable, 28 chars like a real openid)."""
        with self._lock:
            known = self._codes.get((app_id, code))
        if known:
            return known["openid"]
        return "o" + hashlib.sha1(f"{app_id}|{code}".encode()).hexdigest()[:27]  # noqa: S324 - not security

    @staticmethod
    def session_key(app_id: str, openid: str) -> str:
        """The session_key jscode2session returns for this user (base64 of 16 bytes, stable)."""
        return base64.b64encode(hashlib.sha256(f"sk|{app_id}|{openid}".encode()).digest()[:16]).decode()

    def expire_tokens(self, app_id: str | None = None) -> None:
        """Expire every issued token (of ``app_id``): the next use answers 42001."""
        with self._lock:
            for tok, (app, _) in list(self._tokens.items()):
                if app_id is None or app == app_id:
                    self._tokens[tok] = (app, self.clock() - 1)

    def rotate_token(self, app_id: str) -> str:
        """As if someone force-refreshed the stable token: a new one, the old one invalid at once."""
        with self._lock:
            return self._issue_stable(app_id, invalidate_previous=True)

    def current_token(self, app_id: str) -> str | None:
        with self._lock:
            return self._stable.get(app_id)

    # -- state helpers (lock held) ----------------------------------------------------------------------

    def _new_token(self, app_id: str) -> str:
        token = f"FAKE_{app_id[-6:]}_{secrets.token_urlsafe(24)}"
        self._tokens[token] = (app_id, self.clock() + TOKEN_TTL)
        return token

    def _issue_stable(self, app_id: str, *, invalidate_previous: bool) -> str:
        old = self._stable.get(app_id)
        if old and invalidate_previous:
            self._tokens.pop(old, None)
        token = self._new_token(app_id)
        self._stable[app_id] = token
        return token

    def _check_credentials(self, app_id: str, secret: str) -> _Reply | None:
        if app_id not in self.accounts:
            return _err(40013, "invalid appid")
        if secret != self.accounts[app_id]:
            return _err(40125, "invalid appsecret")
        return None

    def _check_token(self, token: str | None) -> tuple[str | None, _Reply | None]:
        if not token:
            return None, _err(41001, "access_token missing")
        found = self._tokens.get(token)
        if found is None:
            return None, _err(40001, "invalid credential, access_token is invalid or not latest")
        app_id, expires_at = found
        if expires_at <= self.clock():
            return None, _err(42001, "access_token expired")
        return app_id, None

    # -- request handling -------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: bytes) -> _Reply:
        if path.startswith("/__fake/"):
            return self._control(method, path, query, body)
        doc: Any = None
        if body:
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
        with self._lock:
            self._calls.append({"method": method, "path": path, "query": dict(query), "json": doc,
                                "at": self.clock()})
            delay = self._slow[path].pop(0) if self._slow.get(path) else 0.0
            failure = self._fail[path].pop(0) if self._fail.get(path) else None
        if delay:
            time.sleep(delay)
        if failure is not None:
            if failure.get("body") is not None:
                return _Reply(failure["body"].encode(), status=failure["status"], content_type="text/html; charset=utf-8")
            if failure["status"] >= 400:
                return _Reply({"errmsg": "injected HTTP failure"}, status=failure["status"])
            return _err(int(failure["errcode"]), "injected failure")
        handler = ROUTES.get(path)
        if handler is None:
            return _Reply({"errcode": 404, "errmsg": f"no fake for {path}"}, status=404)
        with self._lock:
            app_id = None
            if path not in _OPEN_PATHS:
                app_id, problem = self._check_token(query.get("access_token"))
                if problem is not None:
                    return problem
            return handler(self, app_id, query, doc if isinstance(doc, dict) else {})

    def _control(self, method: str, path: str, query: dict[str, str], body: bytes) -> _Reply:
        doc = json.loads(body) if body else {}
        if path == "/__fake/calls" and method == "GET":
            return _Reply({"calls": self.calls(query.get("path"))})
        if method != "POST":
            return _Reply({"errmsg": "use POST"}, status=405)
        if path == "/__fake/reset":
            self.reset()
        elif path == "/__fake/fail":
            self.fail_next(doc["path"], doc.get("errcode"), int(doc.get("times", 1)), status=int(doc.get("status", 200)),
                           body=doc.get("body"))
        elif path == "/__fake/slow":
            self.slow_next(doc["path"], float(doc["seconds"]), int(doc.get("times", 1)))
        elif path == "/__fake/users":
            for user in doc.get("users") or [doc]:
                user = dict(user)
                self.add_user(user.pop("app_id"), user.pop("openid"), user.pop("unionid", None), **user)
        elif path == "/__fake/codes":
            self.add_code(doc["app_id"], doc["code"], doc["openid"], doc.get("unionid"))
        elif path == "/__fake/phones":
            self.add_phone_code(doc["app_id"], doc["code"], doc["phone"], doc.get("country_code", "86"))
        elif path == "/__fake/expire":
            self.expire_tokens(doc.get("app_id"))
        elif path == "/__fake/rotate":
            return _Reply({"access_token": self.rotate_token(doc["app_id"])})
        else:
            return _Reply({"errmsg": f"unknown control {path}"}, status=404)
        return _Reply(_OK)


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeWeChat
    protocol_version = "HTTP/1.1"

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            reply = self.server_fake.handle(method, parts.path, query, body)
        except Exception as exc:  # a bug in the fake, or a malformed control call: say so
            reply = _Reply({"errcode": -1, "errmsg": f"fake error: {type(exc).__name__}: {exc}"}, status=500)
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):  # the caller gave up waiting (a "slow" answer)
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet; calls are recorded instead
        return


def accounts_from_config(raw: str | bytes | Mapping) -> dict[str, str]:
    """app id → app secret from an accounts config document (accounts without a secret are skipped)."""
    doc = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
    return {app: acc["app_secret"] for app, acc in (doc.get("accounts") or {}).items() if acc.get("app_secret")}
