"""Plays WeChat's servers: builds, signs and encrypts pushes the way WeChat does, and opens the replies.

Used by the tests, by ``make run``'s simulator command and by the sample events. It uses wechatpy's own
signing and crypto, so what it sends is what a real push looks like.

# long: the push builders and the command line that drives them share the account and crypto helpers
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
import urllib.error
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
        return Push(query, self._envelope(xml, encrypt, mode), True)

    def _envelope(self, xml: str, encrypt: str, mode: str) -> str:
        if mode == "safe":
            return f"<xml><ToUserName><![CDATA[{escape(self.account)}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        return xml.replace("</xml>", f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")  # compat: both side by side

    def open_reply(self, body: str, push: Push) -> str:
        """The plain reply XML (decrypting and checking the signature of an encrypted one)."""
        if not push.encrypted or body.strip() in ("", "success"):
            return body
        import xmltodict

        assert self._crypto is not None  # an encrypted push was sealed with it
        doc = xmltodict.parse(body)["xml"]
        return self._crypto.decrypt_message(doc, doc["MsgSignature"], doc["TimeStamp"], doc["Nonce"])


class MpSimulator(Simulator):
    """A Mini Program as WeChat pushes to it: XML or JSON bodies (``fmt``), plain, compat or safe mode.

    Builders return the body in ``fmt``; the ``List`` of subscribe-message events is an object for one item
    and an array for several (in XML: repeated ``<List>`` elements inside the event's container element).
    """

    def __init__(self, app_id: str, token: str, aes_key: str | None = None, *, fmt: str = "json",
                 account: str = "gh_wxloopdemomp"):
        super().__init__(app_id, token, aes_key, account=account)
        if fmt not in ("xml", "json"):
            raise ValueError("fmt must be xml or json")
        self.fmt = fmt

    def _render(self, fields: dict) -> str:
        if self.fmt == "json":
            return json.dumps(fields, ensure_ascii=False)
        return _xml(fields)

    def text(self, openid: str, content: str, *, create_time: int | None = None, msg_id: int | None = None) -> str:
        return self._render({**self._base(openid, "text", create_time), "Content": content,
                             "MsgId": msg_id or self._next_id()})

    def message(self, openid: str, msg_type: str, fields: dict, *, create_time: int | None = None) -> str:
        return self._render({**self._base(openid, msg_type, create_time), **fields, "MsgId": self._next_id()})

    def image(self, openid: str, media_id: str = "MEDIA_ID_1") -> str:
        return self.message(openid, "image", {"PicUrl": "https://example.com/p.png", "MediaId": media_id})

    def card(self, openid: str, page: str = "pages/index/index") -> str:
        return self.message(openid, "miniprogrampage", {"Title": "A page", "AppId": self.app_id, "PagePath": page,
                                                         "ThumbUrl": "", "ThumbMediaId": "THUMB_1"})

    def event(self, openid: str, event: str, *, key: str | None = None, create_time: int | None = None,
              extra: dict | None = None) -> str:
        fields = {**self._base(openid, "event", create_time), "Event": event}
        if key is not None:
            fields["EventKey"] = key
        fields.update(extra or {})
        return self._render(fields)

    def enter(self, openid: str, session_from: str = "") -> str:
        """``user_enter_tempsession``: the person opened the MP's customer-service session."""
        return self.event(openid, "user_enter_tempsession", extra={"SessionFrom": session_from})

    def subscribe_msg(self, openid: str, event: str, items: list[dict], *, create_time: int | None = None) -> str:
        """A ``subscribe_msg_{popup,change,sent}_event`` with ``items`` (one: an object; several: an array)."""
        base = {**self._base(openid, "event", create_time), "Event": event}
        if self.fmt == "json":
            return json.dumps({**base, "List": items[0] if len(items) == 1 else items}, ensure_ascii=False)
        container = {"subscribe_msg_popup_event": "SubscribeMsgPopupEvent",
                     "subscribe_msg_change_event": "SubscribeMsgChangeEvent",
                     "subscribe_msg_sent_event": "SubscribeMsgSentEvent"}[event]
        lists = "".join(_xml(item).replace("<xml>", "<List>").replace("</xml>", "</List>") for item in items)
        return _xml(base).replace("</xml>", f"<{container}>{lists}</{container}></xml>")

    def _envelope(self, body: str, encrypt: str, mode: str) -> str:
        if self.fmt == "xml":
            return super()._envelope(body, encrypt, mode)
        fields = {"ToUserName": self.account} if mode == "safe" else json.loads(body)  # compat: both
        return json.dumps({**fields, "Encrypt": encrypt}, ensure_ascii=False)

    def open_reply(self, body: str, push: Push) -> str:
        """The plain reply (XML or JSON), decrypted and its signature checked when the push was encrypted."""
        if not push.encrypted or body.strip() in ("", "success") or self.fmt == "xml":
            return super().open_reply(body, push)
        doc = json.loads(body)
        assert self._crypto is not None  # an encrypted push was sealed with it
        return self._crypto.decrypt_message(doc, doc["MsgSignature"], str(doc["TimeStamp"]), doc["Nonce"])


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


MP_COMMANDS = ("login", "me", "phone", "event", "prefs")


def _accounts() -> dict:
    from devstack.table import REPO_ROOT

    raw = os.environ.get("WECHAT_ACCOUNTS") or (REPO_ROOT / "config" / "demo-accounts.json").read_text(encoding="utf-8")
    return json.loads(raw).get("accounts", {})


def _first(accounts: dict, kind: str) -> str | None:
    return next((k for k, v in accounts.items() if v.get("kind") == kind), None)


def _mp_main(args: argparse.Namespace, accounts: dict) -> int:
    """The MP client commands: log in as (app, openid), then act with the kept session token."""
    from devstack import mp_client

    app_id = args.app or _first(accounts, "mp")
    if not app_id or accounts.get(app_id, {}).get("kind") != "mp":
        print("no such Mini Program in WECHAT_ACCOUNTS", file=sys.stderr)
        return 2
    openid = args.openid or mp_client.DEFAULT_MP_OPENID
    try:
        if args.what == "login":
            status, doc = mp_client.login(args.url.rstrip("/"), args.fake.rstrip("/"), app_id, openid,
                                          unionid=args.unionid, scene=args.scene, path=args.path)
        else:
            status, doc = mp_client.call(args.url.rstrip("/"), app_id, openid, args.what, args.value,
                                         args.fake.rstrip("/"))
    except urllib.error.URLError as err:
        print(f"cannot reach the local stack: {err.reason} (is `make run` running?)", file=sys.stderr)
        return 2
    if args.what == "login" and "token" in doc:
        doc = {**doc, "token": doc["token"][:12] + "…"}  # kept in the sessions file; no need to print it
    print(f"HTTP {status}")
    print(json.dumps(doc, ensure_ascii=False, indent=1))
    return 0 if status == 200 else 1


def _person_main(args: argparse.Namespace, accounts: dict) -> int:
    """Who (app, openid) is in the local table: the live person, its identities, first touch and merges."""
    import boto3

    app_id = args.app or _first(accounts, "oa")
    openid = args.openid or "oDemoUser000000000000000001"
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or f"http://127.0.0.1:{os.environ.get('WXLOOP_AWS_PORT', '3001')}"
    ddb = boto3.client("dynamodb", endpoint_url=endpoint,
                       region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")  # noqa: S106 - moto
    from wxloop.adapters.dynamo.codec import unmarshal

    table = os.environ.get("TABLE_NAME", "wxloop-local")
    identity = unmarshal(ddb.get_item(TableName=table, Key={"pk": {"S": f"ID#{app_id}#{openid}"},
                                                             "sk": {"S": "ID"}}).get("Item")) or {}
    if not identity:
        print(f"no identity for {openid} in {app_id}", file=sys.stderr)
        return 1
    items = [unmarshal(i) for i in ddb.query(TableName=table, KeyConditionExpression="pk = :pk",
                                             ExpressionAttributeValues={":pk": {"S": f"USER#{identity['uid']}"}})["Items"]]
    person: dict = next((i for i in items if i["sk"] == "PROFILE"), {})
    for merged in [i["merged"] for i in items if i["sk"].startswith("MERGE#")]:  # their journeys are this person's
        items += [unmarshal(i) for i in ddb.query(
            TableName=table, KeyConditionExpression="pk = :pk AND begins_with(sk, :ev)",
            ExpressionAttributeValues={":pk": {"S": f"USER#{merged}"}, ":ev": {"S": "EV#"}})["Items"]]
    print(json.dumps({"uid": identity["uid"], "unionid": person.get("unionid"), "openids": person.get("openids"),
                      "first_touch": person.get("first_touch"), "points": person.get("points", 0),
                      "merged": [{"uid": i["merged"], "at": i["at"], "moved": i.get("moved")}
                                 for i in items if i["sk"].startswith("MERGE#")],
                      "journey": [i["type"] for i in sorted(items, key=lambda i: i["sk"]) if i["sk"].startswith("EV#")]},
                     ensure_ascii=False, indent=1, default=str))
    return 0


MP_PUSHES = ("mp-text", "mp-image", "mp-card", "mp-enter", "mp-popup", "mp-change", "mp-sent", "mp-verify")


def _send(url: str, push: Push | None, query: dict | None = None, content_type: str = "text/xml") -> tuple[int, str] | None:
    """POST ``push`` (or GET with ``query``) to the local gateway: (status, body), or None when unreachable."""
    if push is None:
        req = urllib.request.Request(f"{url}?{urllib.parse.urlencode(query or {})}")  # noqa: S310 - local gateway
    else:
        req = urllib.request.Request(  # noqa: S310 - the local gateway, http only
            f"{url}?{urllib.parse.urlencode(push.query)}", data=push.body.encode(), method="POST",
            headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - local gateway
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except urllib.error.URLError as err:
        print(f"cannot reach {url}: {err.reason} (is `make run` running on that port?)", file=sys.stderr)
        return None


def _mp_body(sim: MpSimulator, what: str, openid: str, value: str) -> str:
    """The push an ``mp-*`` subcommand plays (``value``: text, media id, page, session-from or template id)."""
    template = value or "TPL_DEMO_1"
    return {
        "mp-text": lambda: sim.text(openid, value or "hello"),
        "mp-image": lambda: sim.image(openid, value or "MEDIA_ID_1"),
        "mp-card": lambda: sim.card(openid, value or "pages/index/index"),
        "mp-enter": lambda: sim.enter(openid, value),
        "mp-popup": lambda: sim.subscribe_msg(openid, "subscribe_msg_popup_event", [
            {"TemplateId": t, "SubscribeStatusString": "accept", "PopupScene": "0"} for t in template.split(",")]),
        "mp-change": lambda: sim.subscribe_msg(openid, "subscribe_msg_change_event", [
            {"TemplateId": t, "SubscribeStatusString": "reject"} for t in template.split(",")]),
        "mp-sent": lambda: sim.subscribe_msg(openid, "subscribe_msg_sent_event", [
            {"TemplateId": template, "MsgID": str(sim._next_id()), "ErrorCode": "0", "ErrorStatus": "success"}]),
    }[what]()


def _play_mp(args, accounts: dict) -> int:
    """``mp-*``: act as WeChat pushing to a Mini Program, in JSON or XML (``--format``), any mode."""
    app_id = args.app or next((k for k, v in accounts.items() if v.get("kind") == "mp"), None)
    if not app_id or accounts.get(app_id, {}).get("kind") != "mp":
        print("no such Mini Program in WECHAT_ACCOUNTS", file=sys.stderr)
        return 2
    acct = accounts[app_id]
    fmt = args.format or acct.get("push_format", "xml")
    sim = MpSimulator(app_id, acct["token"], acct.get("encoding_aes_key"), fmt=fmt)
    url = f"{args.url.rstrip('/')}/wechat/mp/{app_id}"
    push, mode = None, args.mode if sim.aes_key else "plain"
    if args.what == "mp-verify":
        got = _send(url, None, sim.verify_query())
    else:
        push = sim.push(_mp_body(sim, args.what, args.openid, args.value), mode, openid=args.openid)
        got = _send(url, push, content_type="application/json" if fmt == "json" else "text/xml")
    if got is None:
        return 2
    status, body = got
    print(f"HTTP {status} ({fmt}{'' if args.what == 'mp-verify' else f', {mode} mode'})")
    print(sim.open_reply(body, push) if status == 200 and push is not None else body)
    return 0 if status == 200 else 1


# long: the argument parser of every simulator command, then one dispatch
def main(argv: list[str] | None = None) -> int:
    """``python -m devstack.simulator``: post a push to a running wxloop and print the reply (OA pushes, or
    ``mp-*`` pushes to a Mini Program); act as a Mini Program client (``login``, ``me``, ``phone``, ``event``,
    ``prefs``); or show a person (``person``)."""
    p = argparse.ArgumentParser(prog="wxloop-sim", description="Act as WeChat: sign, encrypt, post, open the reply.")
    p.add_argument("what", choices=["text", "subscribe", "scan", "click", "view", "unsubscribe", "verify",
                                    *MP_PUSHES, *MP_COMMANDS, "person"])
    p.add_argument("value", nargs="?", default="",
                   help="text content, QR scene, menu key or URL; phone number (phone), event name (event), "
                        "topics a,b (prefs); for mp-*: text, media id, page, session-from or template ids")
    p.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('WXLOOP_PORT', '3000')}", help="base URL of the local gateway")
    p.add_argument("--fake", default=f"http://127.0.0.1:{os.environ.get('WXLOOP_WECHAT_PORT', '3002')}",
                   help="base URL of the fake WeChat API (login codes, users, phone codes)")
    p.add_argument("--app", default=None, help="app id (default: the first OA; the first MP for MP commands and mp-*)")
    p.add_argument("--openid", default=None, help="default oDemoUser000000000000000001 (OA), "
                                                  "oDemoMpUser00000000000000001 (MP)")
    p.add_argument("--unionid", default=None, help="the human's unionid, as WeChat's user/info and "
                                                   "jscode2session will give it")
    p.add_argument("--scene", type=int, default=None, help="MP launch scene (login), e.g. 1082: an OA text link")
    p.add_argument("--path", default=None, help="MP page the client opened (login); its query is the launch query")
    p.add_argument("--mode", choices=MODES, default="safe")
    p.add_argument("--format", choices=["json", "xml"], default=None, help="mp-*: the body format (default: the account's)")
    args = p.parse_args(argv)
    accounts = _accounts()
    if args.what in MP_COMMANDS:
        return _mp_main(args, accounts)
    if args.what == "person":
        return _person_main(args, accounts)
    if args.what.startswith("mp-"):
        args.openid = args.openid or "oDemoMpUser00000000000000001"
        return _play_mp(args, accounts)
    args.openid = args.openid or "oDemoUser000000000000000001"
    app_id = args.app or _first(accounts, "oa")
    if not app_id or app_id not in accounts:
        print("no such Official Account in WECHAT_ACCOUNTS", file=sys.stderr)
        return 2
    acct = accounts[app_id]
    sim = Simulator(app_id, acct["token"], acct.get("encoding_aes_key"))
    url = f"{args.url.rstrip('/')}/wechat/oa/{app_id}"
    if args.unionid:  # who this follower is to WeChat: user/info will give the worker this unionid
        from devstack import mp_client

        try:
            mp_client.register_user(args.fake.rstrip("/"), app_id, args.openid, args.unionid)
        except urllib.error.URLError as err:
            print(f"cannot reach the fake WeChat API {args.fake}: {err.reason}", file=sys.stderr)
            return 2
    if args.what == "verify":
        got = _send(url, None, sim.verify_query())
        if got is None:
            return 2
        print(*got)
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
    got = _send(url, push)
    if got is None:
        return 2
    status, body = got
    print(f"HTTP {status} ({mode} mode)")
    print(sim.open_reply(body, push) if status == 200 else body)
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
