"""``python -m devstack.loop_client``: act as a Mini Program client and as the brand's server against
``make run`` (the invite → reward loop over HTTP).

    login OPENID [--ref REF | --code CODE]     POST /mp/{mp}/session (the fake resolves the wx.login code)
    phone TOKEN PHONE                          POST /mp/{mp}/phone (the fake knows the getPhoneNumber code)
    get TOKEN invite|points|referrals          GET /mp/{mp}/...
    partner events|points OPENID VALUE         POST /partner/{mp}/... signed with the demo partner key
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request

from devstack.table import REPO_ROOT


def _accounts() -> dict:
    raw = os.environ.get("WECHAT_ACCOUNTS") or (REPO_ROOT / "config" / "demo-accounts.json").read_text(encoding="utf-8")
    return json.loads(raw)


def _send(method: str, url: str, body: dict | None = None, headers: dict | None = None,
          raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method,  # noqa: S310 - local stack only
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def main(argv: list[str] | None = None) -> int:  # one branch per command: a dev tool, ~40 lines
    p = argparse.ArgumentParser(prog="loop-client", description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["login", "phone", "get", "partner"])
    p.add_argument("args", nargs="*")
    p.add_argument("--ref")
    p.add_argument("--code")
    p.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('WXLOOP_PORT', '3000')}")
    p.add_argument("--fake", default=os.environ.get("WECHAT_API_BASE", "http://127.0.0.1:3002"))
    a = p.parse_args(argv)
    doc = _accounts()
    mp = next(k for k, v in doc["accounts"].items() if v.get("kind") == "mp")
    base = a.url.rstrip("/")
    if a.what == "login":
        code = secrets.token_hex(8)
        _send("POST", a.fake.rstrip("/") + "/__fake/codes", {"app_id": mp, "code": code, "openid": a.args[0]})
        query = {"ref": a.ref} if a.ref else {"scene": a.code} if a.code else None
        status, out = _send("POST", f"{base}/mp/{mp}/session", {"code": code, "scene": 1007, **({"query": query} if query else {})})
    elif a.what == "phone":
        code = secrets.token_hex(8)
        _send("POST", a.fake.rstrip("/") + "/__fake/phones", {"app_id": mp, "code": code, "phone": a.args[1]})
        status, out = _send("POST", f"{base}/mp/{mp}/phone", {"code": code}, {"Authorization": f"Bearer {a.args[0]}"})
    elif a.what == "get":
        status, out = _send("GET", f"{base}/mp/{mp}/{a.args[1]}", headers={"Authorization": f"Bearer {a.args[0]}"})
    else:
        from wxloop.services.partner_api import signature

        key_id, secret = next(iter(doc["partner_keys"].items()))
        kind, openid, value = a.args
        body = {"event": value, "openid": openid} if kind == "events" else {"points": int(value), "openid": openid}
        raw, path = json.dumps(body).encode(), f"/partner/{mp}/{kind}"
        ts, nonce, idem = str(int(time.time())), secrets.token_hex(12), secrets.token_hex(8)
        headers = {"X-Wxloop-Key": key_id, "X-Wxloop-Timestamp": ts, "X-Wxloop-Nonce": nonce, "Idempotency-Key": idem,
                   "X-Wxloop-Signature": signature(secret, "POST", path, ts, nonce, idem, raw)}
        status, out = _send("POST", base + path, headers=headers, raw=raw)
    print(status, json.dumps(out, ensure_ascii=False, indent=1))
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
