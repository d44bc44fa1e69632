"""A Mini Program's pushes: XML or JSON bodies (chosen in the MP console), plain or safe mode.

wechatpy reads XML pushes only; this module adds what it lacks for an MP: reading JSON bodies and the JSON
safe-mode envelope ``{"ToUserName", "Encrypt"}`` (the crypto, signatures and app-id check stay wechatpy's,
through ``wxloop.protocol.push.PushEndpoint``), and the one passive reply an MP may give,
``transfer_customer_service``, in either format. Everything else (checks, ``Inbound``) is shared with the OA.
"""

from __future__ import annotations

import json

from wxloop.domain.inbound import Inbound
from wxloop.protocol import push
from wxloop.protocol.push import Malformed, Opened, PushEndpoint

FORMATS = ("xml", "json")


def body_format(body: bytes, preferred: str) -> str:
    """The wire format of ``body``: JSON when it starts with ``{``, XML with ``<``, else the account's
    ``push_format`` (tolerant of the other: WeChat's console setting may change before the config does)."""
    head = body.lstrip()[:1]
    if head == b"{":
        return "json"
    if head == b"<":
        return "xml"
    return preferred if preferred in FORMATS else "xml"


def _json_object(raw: bytes) -> dict:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested past the parser's stack
        raise Malformed("not_json") from None
    if not isinstance(doc, dict):
        raise Malformed("not_json_object")
    return doc


def json_envelope(body: bytes) -> dict:
    """The safe-mode JSON envelope ``{"ToUserName", "Encrypt"}`` (compat mode adds the plain fields)."""
    return _json_object(body)


push.ENVELOPE_READERS["json"] = json_envelope


def _as_wire_strings(value: object) -> object:
    """JSON scalars as the strings XML would carry (``CreateTime`` 1482048670 → "1482048670"), so a push
    reads, dedupes and is stored the same in both formats. Depth is capped before this runs."""
    if isinstance(value, dict):
        return {str(k): _as_wire_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_wire_strings(v) for v in value]
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse(opened: Opened) -> Inbound:
    """The push as an ``Inbound``, from XML (wechatpy) or JSON; ``Malformed`` when unreadable."""
    if opened.xml.lstrip()[:1] != b"{":  # a decrypted payload may be in either format
        return push.parse_inbound(opened.xml)
    data = _json_object(opened.xml)
    push.check_shape(data)  # before converting: nothing deeper than WeChat's own nesting is walked
    fields = _as_wire_strings(data)
    assert isinstance(fields, dict)
    return push.inbound_from_fields(fields)


def open_push(endpoint: PushEndpoint, query: dict, body: bytes, preferred: str) -> Opened:
    """Verify a POST (see ``PushEndpoint.open``) in the format its body is in."""
    return endpoint.open(query, body, fmt=body_format(body, preferred))


def transfer_reply(inb: Inbound, *, now: int, fmt: str) -> str:
    """Hand the conversation to the customer-service staff: the one passive reply an MP gives."""
    if fmt == "json":
        return json.dumps({"ToUserName": inb.openid, "FromUserName": inb.to_user, "CreateTime": now,
                           "MsgType": "transfer_customer_service"}, separators=(",", ":"))
    import wechatpy.replies as wx  # the light package (wxloop.protocol): no HTTP stack

    return wx.TransferCustomerServiceReply(source=inb.to_user, target=inb.openid, time=now).render()
