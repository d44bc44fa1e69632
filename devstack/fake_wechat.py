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

Standalone: ``python -m devstack.fake_wechat --port 8089`` (accounts from ``WECHAT_ACCOUNTS`` or
``--accounts FILE``).
"""

# long: one stdlib fake of every WeChat endpoint wxloop calls, its error codes and its control API

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import struct
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TOKEN_TTL = 7200
STABLE_RENEW_BEFORE = 300  # stable_token hands out a new token from 5 minutes before expiry
OLD_TOKEN_GRACE = 300  # a /cgi-bin/token fetch leaves the previous token valid this long

# Endpoints that need an access_token (everything but token fetches and jscode2session).
_OPEN_PATHS = frozenset({"/cgi-bin/token", "/cgi-bin/stable_token", "/sns/jscode2session"})


def _png(width: int = 1, height: int = 1) -> bytes:
    """A valid, tiny, white PNG (what ``getwxacodeunlimit`` returns, minus the code)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\xff\xff" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class _Reply:
    __slots__ = ("status", "body", "content_type")

    def __init__(self, body: Any, status: int = 200, content_type: str = "application/json; charset=utf-8"):
        self.status = status
        self.content_type = content_type
        self.body = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()


def _err(code: int, msg: str) -> _Reply:
    return _Reply({"errcode": code, "errmsg": msg})


_OK = {"errcode": 0, "errmsg": "ok"}


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
        handler = _ROUTES.get(path)
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


# -- endpoint fakes (called with the lock held; ``app_id`` is the token's app) ----------------------------


def _token(fake: FakeWeChat, _app: str | None, q: dict, _doc: dict) -> _Reply:
    if q.get("grant_type") != "client_credential":
        return _err(40002, "invalid grant_type")
    app_id = q.get("appid", "")
    problem = fake._check_credentials(app_id, q.get("secret", ""))
    if problem:
        return problem
    old = fake._stable.get(app_id)
    if old and old in fake._tokens:  # the previous token stays valid for a while, as on the real API
        fake._tokens[old] = (app_id, min(fake._tokens[old][1], fake.clock() + OLD_TOKEN_GRACE))
    token = fake._new_token(app_id)
    fake._stable[app_id] = token
    return _Reply({"access_token": token, "expires_in": TOKEN_TTL})


def _stable_token(fake: FakeWeChat, _app: str | None, _q: dict, doc: dict) -> _Reply:
    if doc.get("grant_type") != "client_credential":
        return _err(40002, "invalid grant_type")
    app_id = str(doc.get("appid", ""))
    problem = fake._check_credentials(app_id, str(doc.get("secret", "")))
    if problem:
        return problem
    current = fake._stable.get(app_id)
    left = fake._tokens[current][1] - fake.clock() if current in fake._tokens else 0
    if doc.get("force_refresh") or left <= STABLE_RENEW_BEFORE:
        current = fake._issue_stable(app_id, invalidate_previous=bool(doc.get("force_refresh")))
        left = TOKEN_TTL
    return _Reply({"access_token": current, "expires_in": int(left)})


def _jscode2session(fake: FakeWeChat, _app: str | None, q: dict, _doc: dict) -> _Reply:
    app_id, code = q.get("appid", ""), q.get("js_code", "")
    problem = fake._check_credentials(app_id, q.get("secret", ""))
    if problem:
        return problem
    if not code or code.startswith("invalid"):
        return _err(40029, "invalid code")
    if (app_id, code) in fake._used_codes:
        return _err(40163, "code been used")
    fake._used_codes.add((app_id, code))
    openid = fake.openid_for_code(app_id, code)
    out = {"openid": openid, "session_key": fake.session_key(app_id, openid)}
    unionid = (fake._codes.get((app_id, code)) or {}).get("unionid") or \
        (fake._users.get((app_id, openid)) or {}).get("unionid")
    if unionid:
        out["unionid"] = unionid
    return _Reply(out)


def _phone(fake: FakeWeChat, app_id: str | None, _q: dict, doc: dict) -> _Reply:
    code = str(doc.get("code", ""))
    if not code or code.startswith("invalid"):
        return _err(40029, "invalid code")
    known = fake._phone_codes.get((app_id, code))
    if known:
        phone, country = known["phone"], known["country_code"]
    else:
        phone, country = "138" + str(int(hashlib.sha1(code.encode()).hexdigest(), 16))[:8], "86"  # noqa: S324
    return _Reply({**_OK, "phone_info": {
        "phoneNumber": phone if country == "86" else f"+{country}{phone}", "purePhoneNumber": phone,
        "countryCode": country, "watermark": {"timestamp": int(fake.clock()), "appid": app_id}}})


def _user_info(fake: FakeWeChat, app_id: str | None, q: dict, _doc: dict) -> _Reply:
    openid = q.get("openid", "")
    if not openid:
        return _err(40003, "invalid openid")
    user = fake._users.get((app_id, openid))
    if user is None:  # permissive: any openid is a follower without unionid
        user = {"subscribe": 1, "openid": openid, "language": "zh_CN", "subscribe_time": int(fake.clock()),
                "remark": "", "groupid": 0, "tagid_list": [], "subscribe_scene": "ADD_SCENE_OTHERS",
                "qr_scene": 0, "qr_scene_str": ""}
    user = {k: v for k, v in user.items() if k != "phone"}
    user["tagid_list"] = sorted(fake._user_tags.get((app_id, openid), set()))
    if not user.get("subscribe"):
        return _Reply({"subscribe": 0, "openid": openid, **({"unionid": user["unionid"]} if "unionid" in user else {})})
    return _Reply(user)


def _needs(*fields: str) -> Callable:
    def endpoint(fake: FakeWeChat, _app: str | None, _q: dict, doc: dict) -> _Reply:
        for name in fields:
            if not doc.get(name):
                return _err(44002 if not doc else 47001, f"data format error: {name} missing")
        return _Reply(_OK)

    return endpoint


def _qrcode(fake: FakeWeChat, _app: str | None, _q: dict, doc: dict) -> _Reply:
    if not doc.get("action_name"):
        return _err(47001, "data format error")
    ticket = "gQ" + secrets.token_urlsafe(30)
    out: dict[str, Any] = {"ticket": ticket, "url": f"http://weixin.qq.com/q/{ticket[:22]}"}
    if doc["action_name"].startswith("QR_LIMIT"):
        return _Reply(out)
    out["expire_seconds"] = min(int(doc.get("expire_seconds") or 60), 2592000)
    return _Reply(out)


def _wxacode(fake: FakeWeChat, _app: str | None, _q: dict, doc: dict) -> _Reply:
    scene = str(doc.get("scene", ""))
    if not scene or len(scene) > 32:
        return _err(40169, "invalid length for scene")
    return _Reply(_png(8, 8), content_type="image/png")


def _urllink(fake: FakeWeChat, _app: str | None, _q: dict, doc: dict) -> _Reply:
    if len(str(doc.get("query", ""))) > 1024 or "?" in str(doc.get("path", "")):
        return _err(40212, "invalid query")
    if doc.get("expire_type") == 1 and not 1 <= int(doc.get("expire_interval") or 0) <= 30:
        return _err(40212, "invalid expire_interval")
    return _Reply({**_OK, "url_link": "https://wxaurl.cn/" + secrets.token_urlsafe(9)})


def _scheme(fake: FakeWeChat, _app: str | None, _q: dict, doc: dict) -> _Reply:
    jump = doc.get("jump_wxa") or {}
    if len(str(jump.get("query", ""))) > 1024 or "?" in str(jump.get("path", "")):
        return _err(40212, "invalid query")
    if doc.get("expire_type") == 1 and not 1 <= int(doc.get("expire_interval") or 0) <= 30:
        return _err(40212, "invalid expire_interval")
    return _Reply({**_OK, "openlink": "weixin://dl/business/?t=" + secrets.token_urlsafe(9)})


def _tags_create(fake: FakeWeChat, app_id: str | None, _q: dict, doc: dict) -> _Reply:
    name = str((doc.get("tag") or {}).get("name", ""))
    if not name or len(name) > 30:
        return _err(45158, "tag name too long")
    tags = fake._tags.setdefault(app_id or "", {})
    if name in tags.values():
        return _err(45157, "invalid tag name")
    tag_id = 100 + len(tags)
    tags[tag_id] = name
    return _Reply({"tag": {"id": tag_id, "name": name}})


def _tags_get(fake: FakeWeChat, app_id: str | None, _q: dict, _doc: dict) -> _Reply:
    tags = fake._tags.get(app_id or "", {})
    return _Reply({"tags": [{"id": tag_id, "name": name, "count": 0} for tag_id, name in sorted(tags.items())]})


def _tags_of(fake: FakeWeChat, app_id: str | None, _q: dict, doc: dict) -> _Reply:
    return _Reply({"tagid_list": sorted(fake._user_tags.get((app_id, str(doc.get("openid", ""))), set()))})


def _tagging(add: bool) -> Callable:
    def endpoint(fake: FakeWeChat, app_id: str | None, _q: dict, doc: dict) -> _Reply:
        openids, tag_id = doc.get("openid_list") or [], doc.get("tagid")
        if not openids or tag_id is None:
            return _err(40032, "invalid openid list")
        if len(openids) > 50:
            return _err(40032, "too many openids")
        for openid in openids:
            tags = fake._user_tags.setdefault((app_id, openid), set())
            (tags.add if add else tags.discard)(int(tag_id))
        return _Reply(_OK)

    return endpoint


_ROUTES: dict[str, Callable[[FakeWeChat, str | None, dict, dict], _Reply]] = {
    "/cgi-bin/token": _token,
    "/cgi-bin/stable_token": _stable_token,
    "/sns/jscode2session": _jscode2session,
    "/wxa/business/getuserphonenumber": _phone,
    "/cgi-bin/user/info": _user_info,
    "/cgi-bin/message/custom/send": _needs("touser", "msgtype"),
    "/cgi-bin/message/subscribe/send": _needs("touser", "template_id"),
    "/cgi-bin/menu/create": _needs("button"),
    "/cgi-bin/qrcode/create": _qrcode,
    "/wxa/getwxacodeunlimit": _wxacode,
    "/wxa/generate_urllink": _urllink,
    "/wxa/generatescheme": _scheme,
    "/cgi-bin/tags/members/batchtagging": _tagging(True),
    "/cgi-bin/tags/members/batchuntagging": _tagging(False),
    "/cgi-bin/tags/create": _tags_create,
    "/cgi-bin/tags/get": _tags_get,
    "/cgi-bin/tags/getidlist": _tags_of,
}


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.fake_wechat", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--accounts", help="accounts config JSON file (default: the WECHAT_ACCOUNTS variable)")
    args = parser.parse_args(argv)
    if args.accounts:
        with open(args.accounts, encoding="utf-8") as fh:
            accounts = accounts_from_config(fh.read())
    else:
        accounts = accounts_from_config(os.environ.get("WECHAT_ACCOUNTS") or "{}")
    fake = FakeWeChat(accounts, host=args.host, port=args.port)
    print(f"fake WeChat API on {fake.start()} for {len(accounts)} account(s); Ctrl-C stops", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
