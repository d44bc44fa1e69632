"""Receiving a push from WeChat's servers: URL verification, signatures, safe/compat/plain mode, parsing,
and sealing the reply. wechatpy does the crypto, signatures, parsing and reply XML; this module adds what
it leaves to the caller (clock skew, body limits, hostile XML, app-id binding, typed ``Inbound``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass

import xmltodict
from wechatpy.crypto import PrpCrypto, WeChatCrypto, _get_signature
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.parser import parse_message
from wechatpy.utils import WeChatSigner

import wxloop.protocol  # noqa: F401 - light wechatpy package first
from wxloop.domain.inbound import Inbound, event_dedupe_key
from wxloop.protocol import events as _events  # noqa: F401 - registers the events wechatpy lacks

MAX_BODY_BYTES = 64 * 1024
_HOSTILE = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)
# The safe-mode envelope's ciphertext is base64 in CDATA; msg_signature then proves it is WeChat's. Taking it
# with one pattern saves a full XML parse per push (~40 us); anything unusual falls back to the parser.
_ENCRYPT = re.compile(rb"<Encrypt>\s*<!\[CDATA\[([A-Za-z0-9+/=]+)\]\]>\s*</Encrypt>")
# WeChat's identifiers: openids are [A-Za-z0-9_-] up to 64 chars; account ids (gh_ + hex, or the samples'
# "toUser") fit the same alphabet. Anything else is forged and must not reach a reply's CDATA or a key.
_WECHAT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_DEPTH = 8  # xml > element > container > List > item > field: WeChat nests 4 deep at most
MAX_NODES = 2000  # fields and values of one push


def _same(expected: str, given: str) -> bool:
    """Constant-time equality: wechatpy compares signatures with ``!=``, which leaks timing."""
    return hmac.compare_digest(expected.encode("utf-8"), str(given).encode("utf-8"))


def check_signature(token: str, signature: str, timestamp: str, nonce: str) -> None:
    """wechatpy's ``check_signature`` with a constant-time comparison."""
    signer = WeChatSigner()
    signer.add_data(token, timestamp, nonce)
    if not _same(signer.signature, signature):
        raise InvalidSignatureException()


class _PrpCrypto(PrpCrypto):
    """wechatpy's cipher with the 16-byte random prefix drawn from ``secrets`` (``random`` is not meant
    for cryptography, and is slower)."""

    def get_random_string(self) -> str:
        return secrets.token_hex(8)


class _Crypto(WeChatCrypto):
    """wechatpy's message crypto with one cipher per account: wechatpy builds a new AES cipher object for
    every message; ours is stateless (a fresh encryptor/decryptor per call), so it is built once."""

    def __init__(self, token: str, encoding_aes_key: str, app_id: str):
        super().__init__(token, encoding_aes_key, app_id)
        prp = _PrpCrypto(self.key)
        self._prp = lambda _key: prp

    def encrypt_message(self, msg, nonce, timestamp=None):
        return self._encrypt_message(msg, nonce, timestamp, self._prp)

    def encrypt_json(self, msg: str, nonce: str, timestamp: str) -> str:
        """wechatpy's ``_encrypt_message`` steps with a JSON envelope (an MP's JSON pushes; wechatpy writes XML)."""
        encrypt = self._prp(self.key).encrypt(msg, self._id)
        encrypt = encrypt.decode() if isinstance(encrypt, bytes) else encrypt
        return json.dumps({"Encrypt": encrypt, "MsgSignature": _get_signature(self.token, timestamp, nonce, encrypt),
                           "TimeStamp": int(timestamp), "Nonce": nonce}, separators=(",", ":"))

    def decrypt_message(self, msg, signature, timestamp, nonce):
        # wechatpy's _decrypt_message compares msg_signature with "!=": the same steps, compared in constant time
        encrypt = msg["Encrypt"]
        if not _same(_get_signature(self.token, timestamp, nonce, encrypt), signature):
            raise InvalidSignatureException()
        return self._prp(self.key).decrypt(encrypt, self._id)


class PushRejected(Exception):
    """The request is not from WeChat for this account; answer ``status`` and write nothing."""

    def __init__(self, reason: str, status: int = 403):
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Malformed(Exception):
    """A genuine (signed) push whose payload cannot be read; answer ``success`` and write nothing."""


@dataclass(frozen=True, slots=True)
class Opened:
    """A verified push: its plain XML, and whether the reply must be encrypted."""

    xml: bytes
    encrypted: bool
    nonce: str
    timestamp: str
    # plain mode: WeChat signs the query only, so the query is bound to this body (see ``query_binding``)
    signature: str = ""
    body_hash: str = ""
    fmt: str = "xml"  # the wire format of the push, and so of its reply ("xml" or "json")


class PushEndpoint:
    """The push endpoint of one account (token, optional AES key, app id, message mode).

    ``mode``: ``compat``/``safe`` accept only encrypted pushes (``encrypt_type=aes`` and a valid
    ``msg_signature``); ``plain`` also accepts unencrypted ones. Default: ``safe`` with a key, else ``plain``.
    """

    def __init__(self, app_id: str, token: str, encoding_aes_key: str | None, *, skew_seconds: int = 300,
                 mode: str | None = None):
        self.app_id = app_id
        self.token = token
        self.skew_seconds = skew_seconds
        self.mode = mode or ("safe" if encoding_aes_key else "plain")
        if self.mode != "plain" and not encoding_aes_key:
            raise ValueError(f"mode {self.mode!r} needs an encoding_aes_key")
        self._crypto = _Crypto(token, encoding_aes_key, app_id) if encoding_aes_key else None

    def _check(self, query: dict, now: float | None) -> None:
        signature, timestamp, nonce = query.get("signature"), query.get("timestamp"), query.get("nonce")
        if not (signature and timestamp and nonce):
            raise PushRejected("missing_signature")
        try:
            check_signature(self.token, signature, timestamp, nonce)
        except InvalidSignatureException:
            raise PushRejected("bad_signature") from None
        if self.skew_seconds:
            try:
                skew = abs(int(now if now is not None else time.time()) - int(timestamp))
            except ValueError:
                raise PushRejected("bad_timestamp") from None
            if skew > self.skew_seconds:
                raise PushRejected("clock_skew")

    def verify_url(self, query: dict, *, now: float | None = None) -> str:
        """GET verification: the ``echostr`` to echo back, or ``PushRejected``."""
        self._check(query, now)
        echostr = query.get("echostr")
        if not echostr:
            raise PushRejected("missing_echostr", 400)
        return echostr

    def open(self, query: dict, body: bytes, *, now: float | None = None, fmt: str = "xml") -> Opened:
        """Verify a POST and return its plain payload (XML, or JSON when ``fmt`` is ``json``).

        Always checks ``signature``; in safe and compat mode (``encrypt_type=aes``) also ``msg_signature``
        and that the app id inside the ciphertext is this account's. Raises ``PushRejected`` (403/413) for
        requests not from WeChat, ``Malformed`` for a signed body that cannot be read.
        """
        if len(body) > MAX_BODY_BYTES:
            raise PushRejected("too_large", 413)
        self._check(query, now)
        if fmt == "xml" and _HOSTILE.search(body):
            raise Malformed("dtd_or_entity")
        nonce, timestamp = query["nonce"], query["timestamp"]
        if query.get("encrypt_type") != "aes":
            if self.mode != "plain":  # a downgrade: the body would be unauthenticated
                raise PushRejected("not_encrypted")
            return Opened(body, False, nonce, timestamp, signature=query["signature"],
                          body_hash=hashlib.blake2b(body, digest_size=16).hexdigest(), fmt=fmt)
        if self._crypto is None:
            raise PushRejected("no_aes_key")
        msg_signature = query.get("msg_signature")
        if not msg_signature:
            raise PushRejected("missing_msg_signature")
        envelope = ENVELOPE_READERS[fmt](body)
        if not isinstance(envelope.get("Encrypt"), str) or not envelope["Encrypt"]:
            raise Malformed("no_encrypt_field")
        try:
            plain = self._crypto.decrypt_message(envelope, msg_signature, timestamp, nonce)
        except InvalidSignatureException:
            raise PushRejected("bad_msg_signature") from None
        except InvalidAppIdException:
            raise PushRejected("wrong_app_id") from None
        except Exception:
            raise Malformed("undecryptable") from None
        plain_bytes = plain if isinstance(plain, bytes) else plain.encode("utf-8")
        if plain_bytes.lstrip()[:1] != b"{" and _HOSTILE.search(plain_bytes):  # XML inside any envelope
            raise Malformed("dtd_or_entity")
        return Opened(plain_bytes, True, nonce, timestamp, fmt=fmt)

    def seal(self, reply: str, opened: Opened) -> str:
        """The body to answer: the reply, encrypted when the push was (in the push's format)."""
        if not opened.encrypted or self._crypto is None:
            return reply
        if opened.fmt == "json":
            return self._crypto.encrypt_json(reply, opened.nonce, opened.timestamp)
        return self._crypto.encrypt_message(reply, opened.nonce, opened.timestamp)


def _xml_envelope(body: bytes) -> dict:
    found = _ENCRYPT.findall(body)
    return {"Encrypt": found[0].decode()} if len(found) == 1 else _xml_dict(body)


# How the safe-mode envelope of each wire format is read (``wxloop.protocol.mp_push`` adds "json").
ENVELOPE_READERS: dict = {"xml": _xml_envelope}


def _xml_dict(body: bytes) -> dict:
    try:
        doc = xmltodict.parse(body, disable_entities=True)
    except Exception:
        raise Malformed("not_xml") from None
    root = doc.get("xml") if isinstance(doc, dict) else None
    if not isinstance(root, dict):
        raise Malformed("no_xml_root")
    return root


def parse_inbound(xml: bytes) -> Inbound:
    """The push as an ``Inbound``; ``Malformed`` when it is not a WeChat message.

    wechatpy parses (and types) it; unknown message or event types still come back as an ``Inbound`` whose
    kind the rest of wxloop does not act on.
    """
    try:
        msg = parse_message(xml.decode("utf-8"))
    except Exception:
        raise Malformed("unparsable") from None
    data = getattr(msg, "_data", None)
    if not isinstance(data, dict):
        raise Malformed("unparsable")
    return inbound_from_fields(data)


def inbound_from_fields(data: dict) -> Inbound:
    """The ``Inbound`` of a push's fields (string values, as XML gives them); ``Malformed`` when it is no
    WeChat message (missing fields, forged ids, too deep or too large)."""
    check_shape(data)
    openid, to_user = data.get("FromUserName"), data.get("ToUserName")
    msg_type = str(data.get("MsgType") or "").lower()
    if not (isinstance(openid, str) and openid and isinstance(to_user, str) and msg_type):
        raise Malformed("missing_fields")
    if not (_WECHAT_ID.fullmatch(openid) and _WECHAT_ID.fullmatch(to_user)):
        raise Malformed("bad_id")
    try:
        create_time = int(data.get("CreateTime") or 0)
    except (TypeError, ValueError):
        raise Malformed("bad_create_time") from None
    event = str(data.get("Event") or "").lower() if msg_type == "event" else ""
    key = data.get("EventKey")
    key = key if isinstance(key, str) else ""
    scene = ""
    if event == "subscribe_scan":  # wechatpy's name for subscribe via a parametric QR code
        event, scene = "subscribe", key
        key = f"qrscene_{key}"
    elif event == "subscribe_scan_product":  # a follow from a product (barcode/image) scan: still a follow
        event = "subscribe"
    elif event == "scan":
        scene = key
    if event.startswith("subscribe_msg_"):
        detail = {"subscriptions": _events.subscriptions(data)}
    else:  # xmltodict gives str and dict values only
        detail = {k: v for k, v in data.items() if k not in _ENVELOPE and v is not None}
    return Inbound(
        openid=openid,
        to_user=to_user,
        msg_type=msg_type,
        create_time=create_time,
        event=event,
        msg_id=str(data.get("MsgId") or data.get("MsgID") or ""),
        content=str(data.get("Content") or "") if msg_type == "text" else "",
        event_key=key,
        scene=scene,
        detail=detail,
        dedupe_key="" if msg_type != "event" else event_dedupe_key(data),
    )


def check_shape(data: dict) -> None:
    """``Malformed`` when the push nests deeper than ``MAX_DEPTH`` or holds more than ``MAX_NODES`` values:
    nothing that deep is WeChat's, and storing it would recurse (iterative, so no RecursionError here)."""
    stack: list[tuple[object, int]] = [(data, 1)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if depth > MAX_DEPTH:
            raise Malformed("too_deep")
        if nodes > MAX_NODES:
            raise Malformed("too_large")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


_ENVELOPE = frozenset({"ToUserName", "FromUserName", "CreateTime", "MsgType", "Event", "MsgId", "MsgID",
                       "Content", "EventKey"})

