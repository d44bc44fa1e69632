"""Plays WeChat's servers: builds, signs and encrypts pushes the way WeChat does, and opens the replies.

Used by the tests, by ``make run``'s simulator command and by the sample events. It uses wechatpy's own
signing and crypto, so what it sends is what a real push looks like.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from xml.sax.saxutils import escape

from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

import wxloop.protocol  # noqa: F401

MODES = ("plain", "compat", "safe")


def _sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def _xml(fields: dict) -> str:
    body = "".join(
        f"<{k}>{v}</{k}>" if isinstance(v, int) else f"<{k}><![CDATA[{str(v).replace(']]>', ']]]]><![CDATA[>')}]]></{k}>"
        for k, v in fields.items()
    )
    return f"<xml>{body}</xml>"


@dataclass
class Push:
    query: dict
    body: str
    encrypted: bool


class Simulator:
    """One account as WeChat sees it: ``app_id``, ``token``, optional ``aes_key``, the OA's gh_ id."""

    def __init__(self, app_id: str, token: str, aes_key: str | None = None, *, account: str = "gh_wxloopdemo01"):
        self.app_id, self.token, self.aes_key, self.account = app_id, token, aes_key, account
        self._crypto = WeChatCrypto(token, aes_key, app_id) if aes_key else None
        self._msg_id = int(time.time() * 1000)

    # -- messages ----------------------------------------------------------------------------------
    def _base(self, openid: str, msg_type: str, create_time: int | None) -> dict:
        return {"ToUserName": self.account, "FromUserName": openid,
                "CreateTime": int(create_time if create_time is not None else time.time()), "MsgType": msg_type}

    def _next_id(self) -> int:
        self._msg_id += 1
        return self._msg_id

    def text(self, openid: str, content: str, *, create_time: int | None = None, msg_id: int | None = None) -> str:
        return _xml({**self._base(openid, "text", create_time), "Content": content, "MsgId": msg_id or self._next_id()})

    def message(self, openid: str, msg_type: str, fields: dict, *, create_time: int | None = None) -> str:
        return _xml({**self._base(openid, msg_type, create_time), **fields, "MsgId": self._next_id()})

    def event(self, openid: str, event: str, *, key: str | None = None, create_time: int | None = None,
              extra: dict | None = None) -> str:
        fields = {**self._base(openid, "event", create_time), "Event": event}
        if key is not None:
            fields["EventKey"] = key
        fields.update(extra or {})
        return _xml(fields)

    def subscribe(self, openid: str, scene: str | None = None, *, create_time: int | None = None) -> str:
        if scene is None:
            return self.event(openid, "subscribe", key="", create_time=create_time)
        return self.event(openid, "subscribe", key=f"qrscene_{scene}", create_time=create_time,
                          extra={"Ticket": "gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3MFBtYldtMnFnVmliM2t6AAIEl7eXVAMEAAAAAA=="})

    # -- transport ---------------------------------------------------------------------------------
    def verify_query(self, echostr: str = "wxloop-echo", *, timestamp: int | None = None) -> dict:
        ts, nonce = str(int(timestamp if timestamp is not None else time.time())), secrets.token_hex(5)
        return {"signature": _sign(self.token, ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": echostr}

    def push(self, xml: str, mode: str = "plain", *, openid: str | None = None, timestamp: int | None = None,
             token: str | None = None) -> Push:
        """Sign (and in compat/safe mode encrypt) ``xml`` as WeChat would; ``token`` forges a wrong one."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        ts, nonce = str(int(timestamp if timestamp is not None else time.time())), secrets.token_hex(5)
        token = token or self.token
        query = {"signature": _sign(token, ts, nonce), "timestamp": ts, "nonce": nonce}
        if openid:
            query["openid"] = openid
        if mode == "plain":
            return Push(query, xml, False)
        if self._crypto is None:
            raise ValueError("compat/safe mode needs an EncodingAESKey")
        envelope = self._crypto.encrypt_message(xml, nonce, ts)
        encrypt = envelope.split("<Encrypt><![CDATA[", 1)[1].split("]]>", 1)[0]
        query.update(encrypt_type="aes", msg_signature=_sign(token, ts, nonce, encrypt))
        if mode == "safe":
            body = f"<xml><ToUserName><![CDATA[{escape(self.account)}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        else:  # compat: the plain fields and the ciphertext side by side
            body = xml.replace("</xml>", f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
        return Push(query, body, True)

    def open_reply(self, body: str, push: Push) -> str:
        """The plain reply XML (decrypting and checking the signature of an encrypted one)."""
        if not push.encrypted or body.strip() in ("", "success"):
            return body
        import xmltodict

        assert self._crypto is not None  # an encrypted push was sealed with it
        doc = xmltodict.parse(body)["xml"]
        return self._crypto.decrypt_message(doc, doc["MsgSignature"], doc["TimeStamp"], doc["Nonce"])


def http_event(method: str, app_id: str, query: dict, body: str = "", *, kind: str = "oa", time_epoch_ms: int | None = None) -> dict:
    """An API Gateway HTTP API (payload 2.0) event for ``/wechat/{kind}/{app_id}``, as Lambda receives it."""
    path = f"/wechat/{kind}/{app_id}"
    now_ms = int(time_epoch_ms if time_epoch_ms is not None else time.time() * 1000)
    return {
        "version": "2.0",
        "routeKey": f"ANY /wechat/{kind}/{{app_id}}",
        "rawPath": path,
        "rawQueryString": urllib.parse.urlencode(query),
        "headers": {"content-type": "text/xml", "user-agent": "Mozilla/4.0", "host": "localhost"},
        "queryStringParameters": dict(query) or None,
        "pathParameters": {"app_id": app_id},
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "localhost", "domainPrefix": "local",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": "Mozilla/4.0"},
            "requestId": secrets.token_hex(8), "routeKey": f"ANY /wechat/{kind}/{{app_id}}", "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now_ms / 1000)), "timeEpoch": now_ms,
        },
        "body": body or None,
        "isBase64Encoded": False,
    }


# long: the argument parser of every simulator command, then one dispatch
def main(argv: list[str] | None = None) -> int:
    """``python -m devstack.simulator``: post a push to a running wxloop and print the reply."""
    p = argparse.ArgumentParser(prog="wxloop-sim", description="Act as WeChat: sign, encrypt, post, open the reply.")
    p.add_argument("what", choices=["text", "subscribe", "scan", "click", "view", "unsubscribe", "verify"])
    p.add_argument("value", nargs="?", default="", help="text content, QR scene, menu key or URL")
    p.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('WXLOOP_PORT', '3000')}", help="base URL of the local gateway")
    p.add_argument("--app", default=None, help="app id (default: the first OA in WECHAT_ACCOUNTS)")
    p.add_argument("--openid", default="oDemoUser000000000000000001")
    p.add_argument("--mode", choices=MODES, default="safe")
    args = p.parse_args(argv)
    from devstack.table import REPO_ROOT

    raw = os.environ.get("WECHAT_ACCOUNTS") or (REPO_ROOT / "config" / "demo-accounts.json").read_text(encoding="utf-8")
    accounts = json.loads(raw).get("accounts", {})
    app_id = args.app or next((k for k, v in accounts.items() if v.get("kind") == "oa"), None)
    if not app_id or app_id not in accounts:
        print("no such Official Account in WECHAT_ACCOUNTS", file=sys.stderr)
        return 2
    acct = accounts[app_id]
    sim = Simulator(app_id, acct["token"], acct.get("encoding_aes_key"))
    url = f"{args.url.rstrip('/')}/wechat/oa/{app_id}"
    if args.what == "verify":
        q = sim.verify_query()
        try:
            with urllib.request.urlopen(f"{url}?{urllib.parse.urlencode(q)}", timeout=10) as r:  # noqa: S310
                print(r.status, r.read().decode())
        except urllib.error.URLError as err:
            print(f"cannot reach {url}: {err.reason}", file=sys.stderr)
            return 2
        return 0
    xml = {
        "text": lambda: sim.text(args.openid, args.value or "hello"),
        "subscribe": lambda: sim.subscribe(args.openid, args.value or None),
        "scan": lambda: sim.event(args.openid, "SCAN", key=args.value or "demo"),
        "click": lambda: sim.event(args.openid, "CLICK", key=args.value or "ABOUT_US"),
        "view": lambda: sim.event(args.openid, "VIEW", key=args.value or "https://example.com/"),
        "unsubscribe": lambda: sim.event(args.openid, "unsubscribe", key=""),
    }[args.what]()
    mode = args.mode if sim.aes_key else "plain"
    push = sim.push(xml, mode, openid=args.openid)
    req = urllib.request.Request(  # noqa: S310 - the local gateway, http only
        f"{url}?{urllib.parse.urlencode(push.query)}", data=push.body.encode(), method="POST",
        headers={"Content-Type": "text/xml"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - local gateway
            status, body = r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read().decode()
    except urllib.error.URLError as err:
        print(f"cannot reach {url}: {err.reason} (is `make run` running on that port?)", file=sys.stderr)
        return 2
    print(f"HTTP {status} ({mode} mode)")
    print(sim.open_reply(body, push) if status == 200 else body)
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
