"""Property-based tests (hypothesis) of the parts every push goes through: parsing, the crypto round trip,
dedupe keys and rule matching. Pure: no AWS, no network."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.simulator import Simulator
from tests.conftest import OA_AES_KEY, OA_APP, OA_TOKEN
from wxloop.domain.rules import RuleSet, Trigger, normalize
from wxloop.protocol.push import Malformed, PushEndpoint, PushRejected, parse_inbound

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIM = Simulator(OA_APP, OA_TOKEN, OA_AES_KEY)
OPENID = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1, max_size=40)
# Text as WeChat users type it: any character XML 1.0 can carry (no control characters, no surrogates)
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=300)


def endpoint(mode: str = "plain") -> PushEndpoint:
    return PushEndpoint(OA_APP, OA_TOKEN, OA_AES_KEY, mode=mode)


@FAST
@given(st.binary(max_size=2000))
def test_given_any_bytes_when_parsed_then_an_inbound_or_malformed_never_another_error(data):
    try:
        inb = parse_inbound(data)
    except Malformed:
        return
    assert isinstance(inb.dedupe_key, str) and len(inb.dedupe_key) == 24


@FAST
@given(OPENID, TEXT, st.sampled_from(["plain", "compat", "safe"]))
def test_given_a_text_push_when_signed_encrypted_and_opened_then_the_same_message_comes_back(openid, text, mode):
    xml = SIM.text(openid, text, msg_id=42)
    push = SIM.push(xml, mode)
    opened = endpoint().open(push.query, push.body.encode(), now=time.time())
    inb = parse_inbound(opened.xml)
    assert opened.encrypted == (mode != "plain")
    assert (inb.openid, inb.msg_id) == (openid, "42")
    assert inb.content == text or inb.content == text.strip()  # XML parsing may trim surrounding blanks


@FAST
@given(OPENID, TEXT, st.binary(min_size=1, max_size=8))
def test_given_a_safe_push_when_its_ciphertext_is_altered_then_it_is_refused(openid, text, junk):
    push = SIM.push(SIM.text(openid, text), "safe")
    enc = push.body.split("<Encrypt><![CDATA[", 1)[1].split("]]>", 1)[0]
    altered = enc[:-4] + ("AAAA" if enc[-4:] != "AAAA" else "BBBB")
    body = push.body.replace(enc, altered).encode()
    with pytest.raises(PushRejected):
        endpoint("safe").open(push.query, body, now=time.time())


@FAST
@given(OPENID, st.integers(min_value=1, max_value=2**63 - 1), st.integers(min_value=1, max_value=2**63 - 1), TEXT)
def test_given_two_messages_when_keyed_then_same_msgid_same_key_and_different_msgid_different_key(openid, a, b, text):
    ka = parse_inbound(SIM.text(openid, text, msg_id=a, create_time=1).encode()).dedupe_key
    again = parse_inbound(SIM.text(openid, text + "x", msg_id=a, create_time=2).encode()).dedupe_key
    kb = parse_inbound(SIM.text(openid, text, msg_id=b, create_time=1).encode()).dedupe_key
    assert ka == again  # WeChat's retry of a message: same sender, same MsgId
    assert (ka == kb) == (a == b)


@FAST
@given(OPENID, OPENID, st.integers(min_value=1, max_value=2**31))
def test_given_the_same_msgid_from_two_people_when_keyed_then_the_keys_differ(one, two, msg_id):
    k1 = parse_inbound(SIM.text(one, "x", msg_id=msg_id).encode()).dedupe_key
    k2 = parse_inbound(SIM.text(two, "x", msg_id=msg_id).encode()).dedupe_key
    assert (k1 == k2) == (one == two)


RULES = RuleSet.compile({"rules": [
    {"id": "exact", "match": "exact", "keywords": ["shop", "商城"], "priority": 5, "reply": {"text": "e"}},
    {"id": "contains", "match": "contains", "keywords": ["coupon", "优惠券"], "priority": 3, "reply": {"text": "c"}},
    {"id": "regex", "match": "regex", "keywords": [r"^order\s*#?\d{6,}$"], "priority": 1, "reply": {"text": "r"}},
]})
NOW = datetime(2025, 6, 4, 3, 0, tzinfo=UTC)


def decide(text: str) -> str | None:
    d = RULES.decide(Trigger("text", text), now=NOW)
    return d.rule_id if d else None


@FAST
@given(TEXT)
def test_given_any_text_when_matched_then_a_known_rule_or_none_and_normalising_twice_changes_nothing(text):
    assert decide(text) in (None, "exact", "contains", "regex")
    assert normalize(normalize(text)) == normalize(text)


@FAST
@given(TEXT, TEXT)
def test_given_a_keyword_inside_any_text_when_matched_then_contains_wins_over_the_regex(before, after):
    got = decide(f"{before}coupon{after}")
    assert got in ("contains", "exact")  # exact only when the whole text normalises to an exact keyword
    assert decide("  ＳＨＯＰ ") == "exact"
