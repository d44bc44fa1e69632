"""MP push pieces without AWS: the wire format sniffing, JSON reading, the transfer reply, the new rule
trigger and reply kind, and the subscribe credit changes of a sent event."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from wxloop.domain.inbound import Inbound
from wxloop.domain.rules import Trigger, trigger_for
from wxloop.protocol import mp_push
from wxloop.protocol.push import Malformed, Opened
from wxloop.services.journey import credit_changes


@pytest.mark.parametrize("body, preferred, expected", [
    (b'  {"a": 1}', "xml", "json"), (b"\n<xml></xml>", "json", "xml"), (b"", "json", "json"), (b"", "bogus", "xml"),
])
def test_body_format_sniffs_the_body_and_falls_back_to_the_account(body, preferred, expected):
    assert mp_push.body_format(body, preferred) == expected


def test_json_numbers_read_as_the_strings_xml_carries():
    raw = json.dumps({"ToUserName": "gh_1", "FromUserName": "oU", "CreateTime": 5, "MsgType": "text",
                      "Content": "hi", "MsgId": 12345678901234567890}).encode()
    inb = mp_push.parse(Opened(raw, False, "n", "1", fmt="json"))
    assert (inb.create_time, inb.msg_id, inb.content) == (5, "12345678901234567890", "hi")


@pytest.mark.parametrize("raw", [b"[]", b"null", b"{", "{\"a\": \"\udcff\"}".encode("utf-8", "surrogatepass"),
                                 b"[" * 100_000])
def test_unreadable_json_is_malformed(raw):
    with pytest.raises(Malformed):
        mp_push.parse(Opened(b"{" + raw if raw[:1] != b"{" else raw, False, "n", "1", fmt="json"))


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_transfer_reply_goes_back_to_the_sender_from_the_account(fmt):
    inb = Inbound(openid="oUser", to_user="gh_acct", msg_type="text", create_time=1, msg_id="1")
    body = mp_push.transfer_reply(inb, now=7, fmt=fmt)
    if fmt == "json":
        assert json.loads(body) == {"ToUserName": "oUser", "FromUserName": "gh_acct", "CreateTime": 7,
                                    "MsgType": "transfer_customer_service"}
    else:
        assert "<MsgType><![CDATA[transfer_customer_service]]></MsgType>" in body and "oUser" in body


def test_entering_the_session_asks_the_enter_trigger_with_its_session_from():
    inb = Inbound(openid="oU", to_user="gh", msg_type="event", create_time=1, event="user_enter_tempsession",
                  detail={"SessionFrom": "order"})
    assert trigger_for(inb) == Trigger("enter", "order")
    assert inb.opens_short_window and not inb.opens_message_window


def test_a_miniprogrampage_opens_the_message_window():
    assert Inbound(openid="oU", to_user="gh", msg_type="miniprogrampage", create_time=1, msg_id="9").opens_message_window


def test_a_transfer_rule_compiles_and_is_passive():
    from wxloop.domain.rules import RuleError, RuleSet

    doc = {"rules": [{"id": "h", "match": "exact", "keywords": ["human"],
                      "reply": {"transfer_customer_service": True}}]}
    decision = RuleSet.compile(doc).decide(Trigger("text", "human"), now=datetime.now(UTC))
    assert decision.reply.kind == "transfer_customer_service" and decision.reply.is_passive
    with pytest.raises(RuleError):
        RuleSet.compile({"rules": [{**doc["rules"][0], "reply": {"transfer_customer_service": "yes"}}]})


@pytest.mark.parametrize("code, expected", [("43101", {"T1": None}), ("0", {})])
def test_a_sent_event_refused_with_43101_closes_the_template(code, expected):
    event = {"type": "mp.event.subscribe_msg_sent_event",
             "detail": {"subscriptions": [{"template_id": "T1", "error_code": code, "msg_id": "1"}]}}
    assert credit_changes(event) == expected
