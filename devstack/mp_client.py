"""Plays a Mini Program client against ``make run``: logs in (``wx.login`` → ``POST /mp/{app}/session``), keeps
the session token, and calls the signed-in routes. Dev-only, used by ``devstack.simulator``.

A real client's ``wx.login`` code comes from WeChat; here the code is made up and registered at the fake
WeChat API first (``/__fake/codes``), bound to the openid and unionid the person should have. Tokens are
kept per (app, openid) in ``.local/mp-sessions.json`` (``WXLOOP_MP_SESSIONS``), so ``me``, ``phone``,
``event`` and ``prefs`` act as the person who logged in last.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

DEFAULT_MP_OPENID = "oDemoMpUser00000000000000001"


def sessions_file() -> Path:
    from devstack.table import REPO_ROOT

    return Path(os.environ.get("WXLOOP_MP_SESSIONS") or REPO_ROOT / ".local" / "mp-sessions.json")


def _load() -> dict:
    try:
        return json.loads(sessions_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _save_token(app_id: str, openid: str, token: str) -> None:
    doc = _load()
    doc[f"{app_id}/{openid}"] = token
    path = sessions_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    path.chmod(0o600)  # a bearer token: owner-only


def saved_token(app_id: str, openid: str) -> str | None:
    return _load().get(f"{app_id}/{openid}")


def http_json(method: str, url: str, body=None, token: str | None = None) -> tuple[int, dict]:
    """One JSON request; returns (status, decoded body). Raises ``urllib.error.URLError`` when unreachable."""
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - local stack
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - local stack
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw or b"{}")
    except ValueError:
        return status, {"body": raw.decode("utf-8", "replace")}


def register_user(fake_url: str, app_id: str, openid: str, unionid: str | None) -> None:
    """Tell the fake WeChat API who (app, openid) is, so ``user/info`` gives the unionid."""
    http_json("POST", f"{fake_url}/__fake/users", {"app_id": app_id, "openid": openid, "unionid": unionid})


DEMO_CONSENTS = ("analytics", "marketing", "personalisation", "phone")


def login(base: str, fake_url: str, app_id: str, openid: str, *, unionid: str | None = None,
          scene: int | None = None, path: str | None = None) -> tuple[int, dict]:
    """A cold start of the MP opened at ``path`` (its query becomes the launch query) from ``scene``; the token
    is kept for the next calls."""
    code = "sim" + secrets.token_hex(8)
    status, doc = http_json("POST", f"{fake_url}/__fake/codes",
                            {"app_id": app_id, "code": code, "openid": openid, "unionid": unionid})
    if status != 200:
        return status, doc
    body: dict = {"code": code}
    if scene:
        body["scene"] = scene
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path or "").query))
    if query:
        body["query"] = query
    status, doc = http_json("POST", f"{base}/mp/{app_id}/session", body)
    if status == 200 and doc.get("token"):
        _save_token(app_id, openid, doc["token"])
        # the demo MP's consent page: the person agrees to every purpose of policy "demo-1"
        http_json("PUT", f"{base}/mp/{app_id}/privacy/consent",
                  {"policy_version": "demo-1", "purposes": dict.fromkeys(DEMO_CONSENTS, True)}, token=doc["token"])
    return status, doc


def call(base: str, app_id: str, openid: str, what: str, value: str, fake_url: str) -> tuple[int, dict]:
    """``me``, ``phone NUMBER``, ``event NAME`` or ``prefs a,b`` as the person logged in as (app, openid)."""
    token = saved_token(app_id, openid)
    if not token:
        return 401, {"error": {"message": f"log in first: simulator login --openid {openid}"}}
    url = f"{base}/mp/{app_id}"
    if what == "me":
        return http_json("GET", f"{url}/me", token=token)
    if what == "phone":
        code = "simphone" + secrets.token_hex(6)
        http_json("POST", f"{fake_url}/__fake/phones", {"app_id": app_id, "code": code, "phone": value or "13800000000"})
        return http_json("POST", f"{url}/phone", {"code": code}, token)
    if what == "event":
        event = {"name": value or "page_view", "page": "pages/index/index", "ts": int(time.time() * 1000),
                 "session_id": "sim", "props": {}}
        return http_json("POST", f"{url}/events", [event], token)
    topics = [t.strip() for t in value.split(",") if t.strip()]
    return http_json("PUT", f"{url}/preferences", {"topics": topics}, token)
