"""Protocol units: signatures, crypto round trips, skew, hostile bodies, parsing, dedupe keys, replies."""

from __future__ import annotations

import time

import pytest
import xmltodict

from devstack.simulator import Simulator
from wxloop.domain.replies import Article, Reply, mp_link, truncate_utf8
from wxloop.protocol.outbound import cs_message, passive_xml
from wxloop.protocol.push import Malformed, PushEndpoint, PushRejected, parse_inbound

APP, TOKEN, KEY = "wx1234567890abcdef", "wxlooptoken", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@pytest.fixture
def endpoint():
    return PushEndpoint(APP, TOKEN, KEY, skew_seconds=300, mode="plain")  # accepts every mode


@pytest.fixture
def sim():
    return Simulator(APP, TOKEN, KEY)


def test_url_verification_accepts_wechats_signature_and_rejects_others(endpoint, sim):
    q = sim.verify_query("abc")
    assert endpoint.verify_url(q) == "abc"
    with pytest.raises(PushRejected) as err:
        endpoint.verify_url({**q, "signature": q["signature"][::-1]})
    assert err.value.status == 403 and err.value.reason == "bad_signature"


@pytest.mark.parametrize("mode", ["plain", "compat", "safe"])
def test_crypto_round_trip_in_each_mode(endpoint, sim, mode):
    xml = sim.text("oU1", "你好 <&> ]]> world")
    push = sim.push(xml, mode)
    opened = endpoint.open(push.query, push.body.encode())
    assert opened.encrypted is (mode != "plain")
    inb = parse_inbound(opened.xml)
    assert inb.content == "你好 <&> ]]> world" and inb.openid == "oU1"
    reply = passive_xml(Reply(kind="text", content="回复 ]]> ok"), openid="oU1", account=sim.account, now=1)
    sealed = endpoint.seal(reply, opened)
    assert xmltodict.parse(sim.open_reply(sealed, push))["xml"]["Content"] == "回复 ]]> ok"


def test_skew_edges(endpoint, sim):
    now = time.time()
    push = sim.push(sim.text("oU1", "hi"), "plain", timestamp=int(now) - 300)
    endpoint.open(push.query, push.body.encode(), now=now)  # exactly at the limit: accepted
    push = sim.push(sim.text("oU1", "hi"), "plain", timestamp=int(now) - 301)
    with pytest.raises(PushRejected, match="clock_skew"):
        endpoint.open(push.query, push.body.encode(), now=now)
    off = PushEndpoint(APP, TOKEN, KEY, skew_seconds=0, mode="plain")
    off.open(push.query, push.body.encode(), now=now + 10**6)


def test_non_numeric_timestamp_is_rejected(endpoint, sim):
    push = sim.push(sim.text("oU1", "hi"), "plain")
    from devstack.simulator import _sign

    q = {"timestamp": "soon", "nonce": "n", "signature": _sign(TOKEN, "soon", "n")}
    with pytest.raises(PushRejected, match="bad_timestamp"):
        endpoint.open(q, push.body.encode())


def test_safe_mode_requires_msg_signature_and_key(sim):
    push = sim.push(sim.text("oU1", "hi"), "safe")
    q = dict(push.query)
    q.pop("msg_signature")
    with pytest.raises(PushRejected, match="missing_msg_signature"):
        PushEndpoint(APP, TOKEN, KEY).open(q, push.body.encode())
    with pytest.raises(PushRejected, match="no_aes_key"):
        PushEndpoint(APP, TOKEN, None).open(push.query, push.body.encode())


def test_garbage_ciphertext_is_malformed_not_a_crash(endpoint, sim):
    push = sim.push(sim.text("oU1", "hi"), "safe")
    body = "<xml><Encrypt><![CDATA[bm90IGEgY2lwaGVydGV4dA==]]></Encrypt></xml>"
    from devstack.simulator import _sign

    q = {**push.query, "msg_signature": _sign(TOKEN, push.query["timestamp"], push.query["nonce"], "bm90IGEgY2lwaGVydGV4dA==")}
    with pytest.raises(Malformed):
        endpoint.open(q, body.encode())


def test_dtd_is_refused_before_any_parser_sees_it(endpoint, sim):
    push = sim.push("<xml/>", "plain")
    with pytest.raises(Malformed, match="dtd"):
        endpoint.open(push.query, b'<!DOCTYPE x [<!ENTITY a "b">]><xml>&a;</xml>')


def test_parsing_subscribe_with_scene_strips_the_prefix(sim):
    inb = parse_inbound(sim.subscribe("oU1", "spring").encode())
    assert (inb.event, inb.scene, inb.event_key) == ("subscribe", "spring", "qrscene_spring")
    assert inb.opens_short_window and not inb.opens_message_window
    scan = parse_inbound(sim.event("oU1", "SCAN", key="spring").encode())
    assert (scan.event, scan.scene) == ("scan", "spring")


def test_a_follow_from_a_product_scan_is_a_follow(sim):
    inb = parse_inbound(sim.event("oU1", "subscribe", key="scanbarcode|EAN_13|6900000000001").encode())
    assert (inb.event, inb.scene) == ("subscribe", "")
    assert inb.event_key == "scanbarcode|EAN_13|6900000000001"
    assert inb.opens_short_window


def test_dedupe_keys_differ_by_sender_and_are_stable(sim):
    a = parse_inbound(sim.text("oA", "x", msg_id=1, create_time=100).encode())
    b = parse_inbound(sim.text("oB", "x", msg_id=1, create_time=100).encode())
    a2 = parse_inbound(sim.text("oA", "y", msg_id=1, create_time=101).encode())
    assert a.dedupe_key != b.dedupe_key
    assert a.dedupe_key == a2.dedupe_key, "a message is keyed by sender + MsgId"
    e1 = parse_inbound(sim.event("oA", "CLICK", key="K1", create_time=100).encode())
    e2 = parse_inbound(sim.event("oA", "CLICK", key="K2", create_time=100).encode())
    e3 = parse_inbound(sim.event("oA", "CLICK", key="K1", create_time=100).encode())
    assert e1.dedupe_key != e2.dedupe_key and e1.dedupe_key == e3.dedupe_key


def test_passive_replies_render_as_xml_wechatpy_parses_back():
    from wechatpy.replies import deserialize_reply

    kinds = [
        Reply(kind="text", content="hi"),
        Reply(kind="image", media_id="M1"),
        Reply(kind="voice", media_id="M2"),
        Reply(kind="video", media_id="M3", title="t", description="d"),
        Reply(kind="music", title="t", description="d", music_url="https://e/m.mp3", thumb_media_id="T"),
        Reply(kind="news", articles=(Article("T1", "D", "https://e/1", "https://e/1.png"),
                                     Article("T2", "D", "https://e/2", "https://e/2.png"))),
    ]
    for reply in kinds:
        xml = passive_xml(reply, openid="oU", account="gh_x", now=1700000000)
        if reply.kind != "news":  # wechatpy's deserializer expects a list of articles, not one
            assert deserialize_reply(xml).type == reply.kind
        doc = xmltodict.parse(xml)["xml"]
        assert doc["ToUserName"] == "oU" and doc["CreateTime"] == "1700000000"
        if reply.kind == "news":
            assert doc["ArticleCount"] == "1", "one article per reply"


def test_empty_text_and_mp_card_are_not_passive_replies():
    assert passive_xml(Reply(kind="text", content="  "), openid="o", account="g", now=1) is None
    card = Reply(kind="mp_card", title="Shop", appid="wxabcdef1234567890", pagepath="p", thumb_media_id="T")
    assert passive_xml(card, openid="o", account="g", now=1) is None
    assert cs_message(card)["msgtype"] == "miniprogrampage"


def test_truncation_counts_bytes_and_keeps_characters_whole():
    text = "微" * 1000  # 3000 bytes
    cut = truncate_utf8(text)
    assert len(cut.encode()) <= 2047 and cut.endswith("…") and "\ufffd" not in cut


def test_mp_link_escapes_attributes():
    link = mp_link("wxabcdef1234567890", 'pages/a?x="1"', "Go <now>")
    assert 'data-miniprogram-path="pages/a?x=&quot;1&quot;"' in link and "Go &lt;now&gt;" in link
