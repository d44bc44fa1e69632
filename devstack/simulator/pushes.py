"""Plays WeChat's servers: builds, signs and encrypts pushes the way WeChat does (OA XML; MP XML or JSON), and
opens the replies.

Used by the tests, by the simulator command and by the sample events. It uses wechatpy's own signing and
crypto, so what it sends is what a real push looks like.
"""

from __future__ import annotations

import json
import secrets
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
        assert self._crypto is not None  # an encrypted push was sealed with it
        doc = json.loads(body)
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
