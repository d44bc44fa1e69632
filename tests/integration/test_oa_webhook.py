"""The OA webhook end to end: real API Gateway v2 events into the real handler, moto behind it."""

from __future__ import annotations

import threading
import time

import pytest

from devstack.simulator import Simulator, http_event
from tests.conftest import OA_AES_KEY, OA_APP, OA_PLAIN_APP, OA_TOKEN, load_handler
from tests.integration.oa_webhook_kit import identities, people, post, reply_of

pytest_plugins = ["tests.integration.oa_webhook_kit"]  # fixtures: app, sim

OPENID = "oUserA000000000000000000001"


# --- GET verification -------------------------------------------------------------------------------


def test_given_valid_signature_when_wechat_verifies_url_then_echostr_is_echoed_as_plain_text(aws, app, context, sim):
    out = app.lambda_handler(http_event("GET", OA_APP, sim.verify_query("echo-123")), context)
    assert out["statusCode"] == 200
    assert out["body"] == "echo-123"
    assert out["headers"]["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("mutate", [
    lambda q: q.update(signature="0" * 40),
    lambda q: q.pop("signature"),
    lambda q: q.update(nonce="other"),
])
def test_given_bad_or_missing_signature_when_verifying_then_403(aws, app, context, sim, mutate):
    query = sim.verify_query()
    mutate(query)
    out = app.lambda_handler(http_event("GET", OA_APP, query), context)
    assert out["statusCode"] == 403
    assert "echo" not in out["body"]


def test_given_unknown_app_id_then_404_and_nothing_written(aws, app, context, sim):
    out = app.lambda_handler(http_event("GET", "wx9999999999999999", sim.verify_query()), context)
    assert out["statusCode"] == 404
    other = Simulator("wx9999999999999999", OA_TOKEN)
    out, _ = post(app, context, other, other.text(OPENID, "hi"))
    assert out["statusCode"] == 404
    assert aws.items() == []


# --- POST: modes and replies --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["plain", "compat", "safe"])
def test_given_a_text_in_each_mode_when_posted_then_reply_in_same_mode_and_user_recorded(aws, app, context, sim, mode):
    out, push = post(app, context, sim, sim.text(OPENID, "  SHOP "), mode)
    assert out["statusCode"] == 200
    if mode != "plain":
        assert "<Encrypt>" in out["body"] and "<MsgSignature>" in out["body"]
    reply = reply_of(sim, out, push)
    assert reply["MsgType"] == "text"
    assert reply["ToUserName"] == OPENID and reply["FromUserName"] == sim.account
    assert 'data-miniprogram-appid="wxabcdef1234567890"' in reply["Content"]
    assert 'data-miniprogram-path="pages/index/index"' in reply["Content"]
    [ident] = identities(aws)
    assert ident["openid"] == OPENID and ident["app_id"] == OA_APP
    assert ident["win_msg_sent"] == 0 and abs(ident["win_msg_at"] - time.time()) < 5
    assert ident["ev"]["type"] == "oa.text" and ident["ev"]["detail"]["rule"] == "shop"
    [person] = people(aws)
    assert person["uid"] == ident["uid"] and person["openids"] == {OA_APP: OPENID}
    assert person["first_touch"]["channel"] == "oa"


def test_given_no_rule_matches_then_default_reply(aws, app, context, sim):
    out, push = post(app, context, sim, sim.text(OPENID, "what is this"))
    assert reply_of(sim, out, push)["Content"] == "Default reply: try 'shop'"


def test_given_a_plain_only_account_when_safe_mode_push_arrives_then_403_no_write(aws, app, context):
    plain = Simulator(OA_PLAIN_APP, "plaintoken", OA_AES_KEY)
    out, _ = post(app, context, plain, plain.text(OPENID, "hi"), "safe")
    assert out["statusCode"] == 403
    assert aws.items() == []
    out, push = post(app, context, plain, plain.text(OPENID, "hi"), "plain")
    assert out["statusCode"] == 200


def test_given_a_placeholder_rule_then_reply_shows_the_persons_points(aws, app, context, sim):
    post(app, context, sim, sim.text(OPENID, "hello"))
    uid = identities(aws)[0]["uid"]
    aws.ddb.update_item(TableName=aws.table, Key={"pk": {"S": f"USER#{uid}"}, "sk": {"S": "PROFILE"}},
                        UpdateExpression="SET points = :p", ExpressionAttributeValues={":p": {"N": "42"}})
    out, push = post(app, context, sim, sim.text(OPENID, "my points please"), "safe")
    assert reply_of(sim, out, push)["Content"] == "You have 42 points"
    # a retry of that push gets the same personal reply, from the identity item
    again = app.lambda_handler(http_event("POST", OA_APP, push.query, push.body), context)
    assert reply_of(sim, again, push)["Content"] == "You have 42 points"


def test_a_repeat_users_write_asks_nothing_back_unless_the_reply_needs_the_person(aws, app, context, sim):
    from wxloop.adapters import aws as aws_clients

    asked: list[tuple[str, str]] = []

    def spy(params, model, **_kw):
        if model.name == "UpdateItem":
            asked.append((params["Key"]["pk"]["S"], params.get("ReturnValues", "NONE")))

    post(app, context, sim, sim.text(OPENID, "hello"))  # first contact: creates the person
    aws_clients.client("dynamodb").meta.events.register("provide-client-params.dynamodb.UpdateItem", spy)
    post(app, context, sim, sim.text(OPENID, "hello again"))
    assert asked == [(f"ID#{OA_APP}#{OPENID}", "NONE")]  # the item (with its dedupe sets) stays put
    asked.clear()
    out, push = post(app, context, sim, sim.text(OPENID, "my points please"))
    assert asked[0] == (f"ID#{OA_APP}#{OPENID}", "ALL_NEW")  # the uid, to read the person's points
    assert reply_of(sim, out, push)["Content"] == "You have 0 points"


def test_given_mp_card_rule_then_passive_text_and_a_customer_service_card_job(aws, app, context, sim):
    out, push = post(app, context, sim, sim.text(OPENID, "card"))
    assert reply_of(sim, out, push)["Content"] == "A card is on its way"
    [job] = [j for j in aws.jobs() if j["kind"] == "cs_send"]
    assert job["openid"] == OPENID and job["app_id"] == OA_APP
    assert job["message"] == {"msgtype": "miniprogrampage", "miniprogrampage": {
        "title": "Shop", "appid": "wxabcdef1234567890", "pagepath": "pages/index/index", "thumb_media_id": "THUMB1"}}


def test_a_personalised_card_is_queued_rendered_never_with_raw_placeholders(aws, app, context, sim):
    post(app, context, sim, sim.text(OPENID, "hi"))
    person = next(i for i in aws.items() if i["sk"] == "PROFILE")
    aws.ddb.update_item(TableName=aws.table, Key={"pk": {"S": person["pk"]}, "sk": {"S": "PROFILE"}},
                        UpdateExpression="SET points = :p", ExpressionAttributeValues={":p": {"N": "120"}})
    out, push = post(app, context, sim, sim.text(OPENID, "my card"))
    assert reply_of(sim, out, push)["Content"] == "You have 120 points"
    [job] = [j for j in aws.jobs() if j["kind"] == "cs_send"]
    card = job["message"]["miniprogrampage"]
    assert card["title"] == "120 points" and card["pagepath"] == "pages/points/index?p=120"


def test_a_personalised_card_rides_on_the_reply_write_so_sqs_being_down_loses_nothing(aws, app, context, sim,
                                                                                      monkeypatch):
    from wxloop.adapters import queue

    def sqs_down(*_a, **_k):
        raise queue.QueueError("SQS is down")

    post(app, context, sim, sim.text(OPENID, "hi"))
    monkeypatch.setattr(queue, "send", sqs_down)
    monkeypatch.setattr(queue, "send_many", sqs_down)
    out, push = post(app, context, sim, sim.text(OPENID, "my card"))
    assert reply_of(sim, out, push)["Content"] == "You have 0 points"
    monkeypatch.undo()
    cards = [j for j in aws.jobs() if j["kind"] == "cs_send"]  # queued by the stream, from the outbox event
    assert [c["message"]["miniprogrampage"]["title"] for c in cards] == ["0 points"]
    person = next(i for i in aws.items() if i["sk"] == "PROFILE")
    kinds = [e["type"] for e in aws.items() if e["pk"] == person["pk"] and e["sk"].startswith("EV#")]
    assert "outbox" not in kinds and kinds.count("oa.text") == 2  # the outbox is no journey record


def test_a_personal_reply_still_goes_out_when_reading_the_person_or_keeping_the_reply_fails(aws, app, context, sim,
                                                                                          monkeypatch):
    from wxloop.adapters.dynamo import identities as identity_store
    from wxloop.adapters.dynamo import people

    post(app, context, sim, sim.text(OPENID, "hi"))

    def down(*_a, **_k):
        raise RuntimeError("DynamoDB is down")

    monkeypatch.setattr(people, "get_person", down)
    out, push = post(app, context, sim, sim.text(OPENID, "my points please"))
    assert reply_of(sim, out, push)["Content"] == "You have  points"  # no value, no fallback given: empty
    monkeypatch.undo()
    monkeypatch.setattr(identity_store, "store_reply", down)
    out, push = post(app, context, sim, sim.text(OPENID, "my points please", msg_id=77))
    assert reply_of(sim, out, push)["Content"] == "You have 0 points"
    monkeypatch.undo()
    retry = app.lambda_handler(http_event("POST", OA_APP, push.query, push.body), context)
    assert retry["body"] == "success"  # the reply was not kept: a retry gets success, never a second reply


def test_a_late_personal_reply_never_overwrites_the_reply_kept_for_a_newer_push(aws, app, context, sim):
    from wxloop.adapters.dynamo import identities as identity_store
    from wxloop.protocol.push import parse_inbound

    post(app, context, sim, sim.text(OPENID, "hi"))
    older = parse_inbound(sim.text(OPENID, "my points please", msg_id=900).encode())
    identity_store.touch_identity(OA_APP, older, now=older.create_time, event={"id": older.dedupe_key}, reply="")
    post(app, context, sim, sim.text(OPENID, "shop", msg_id=901))  # a newer push, its reply kept
    newer_reply = identities(aws)[0]["last_reply"]
    assert identity_store.store_reply(OA_APP, OPENID, older.dedupe_key, "<xml>late</xml>") is False
    assert identities(aws)[0]["last_reply"] == newer_reply


def test_a_personal_card_still_goes_out_when_a_newer_push_was_answered_meanwhile(aws, app, context, sim,
                                                                                monkeypatch):
    from wxloop.adapters.dynamo import identities as identity_store
    from wxloop.protocol.push import parse_inbound

    post(app, context, sim, sim.text(OPENID, "hi"))
    aws.jobs()  # the first contact's unionid lookup
    real_touch = identity_store.touch_identity
    newer = sim.text(OPENID, "shop", msg_id=903)

    def touch_then_newer_push(app_id, inb, **kw):  # the person's next push is answered right after this touch
        out = real_touch(app_id, inb, **kw)
        monkeypatch.setattr(identity_store, "touch_identity", real_touch)
        post(app, context, sim, newer)
        return out

    monkeypatch.setattr(identity_store, "touch_identity", touch_then_newer_push)
    out, push = post(app, context, sim, sim.text(OPENID, "my card", msg_id=904))
    assert reply_of(sim, out, push)["Content"] == "You have 0 points"
    assert [j["message"]["miniprogrampage"]["title"] for j in aws.jobs() if j["kind"] == "cs_send"] == ["0 points"]
    assert identities(aws)[0]["last_reply"]["k"] == parse_inbound(newer.encode()).dedupe_key  # kept its reply


def test_a_retry_while_a_personal_reply_is_being_rendered_gets_success(aws, app, context, sim):
    from wxloop.adapters.dynamo import identities as identity_store
    from wxloop.protocol.push import parse_inbound

    post(app, context, sim, sim.text(OPENID, "hi"))
    xml = sim.text(OPENID, "my points please", msg_id=902)
    inb = parse_inbound(xml.encode())
    identity_store.touch_identity(OA_APP, inb, now=inb.create_time, event={"id": inb.dedupe_key}, reply="")
    out, _ = post(app, context, sim, xml, "safe")  # WeChat's retry arrives before the reply was kept
    assert out["statusCode"] == 200 and out["body"] == "success"


# --- rejections write nothing -------------------------------------------------------------------------


def test_given_wrong_token_signature_when_posting_then_403_and_no_write(aws, app, context, sim):
    out, _ = post(app, context, sim, sim.text(OPENID, "shop"), "safe", token="not-the-token")
    assert out["statusCode"] == 403
    assert aws.items() == [] and aws.jobs() == []


def test_given_tampered_msg_signature_then_403_and_no_write(aws, app, context, sim):
    push = sim.push(sim.text(OPENID, "shop"), "safe")
    push.query["msg_signature"] = "f" * 40
    out = app.lambda_handler(http_event("POST", OA_APP, push.query, push.body), context)
    assert out["statusCode"] == 403
    assert aws.items() == []


def test_given_ciphertext_for_another_app_id_then_403_and_no_write(aws, app, context):
    impostor = Simulator("wx00000000000000bb", OA_TOKEN, OA_AES_KEY)  # same token and key, other app id inside
    push = impostor.push(impostor.text(OPENID, "shop"), "safe")
    out = app.lambda_handler(http_event("POST", OA_APP, push.query, push.body), context)
    assert out["statusCode"] == 403
    assert aws.items() == []


def test_given_timestamp_outside_skew_then_403_unless_skew_check_is_off(aws, app, context, sim, monkeypatch):
    stale = int(time.time()) - 301
    out, _ = post(app, context, sim, sim.text(OPENID, "shop"), "safe", timestamp=stale)
    assert out["statusCode"] == 403 and aws.items() == []
    monkeypatch.setenv("WECHAT_CLOCK_SKEW_SECONDS", "0")
    from wxloop import settings

    settings.settings.cache_clear()
    out, _ = post(app, context, sim, sim.text(OPENID, "shop"), "safe", timestamp=stale)
    assert out["statusCode"] == 200 and identities(aws)


def test_given_body_over_64_kib_then_413_and_no_write(aws, app, context, sim):
    out, _ = post(app, context, sim, sim.text(OPENID, "x" * (65 * 1024)))
    assert out["statusCode"] == 413
    assert aws.items() == []


@pytest.mark.parametrize("body", [
    "not xml at all",
    "<xml><ToUserName>gh</ToUserName>",
    "<root><a>1</a></root>",
    "",
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x "boom">]><xml><ToUserName>&x;</ToUserName></xml>',
    '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><xml>&lol2;</xml>',
    "<xml><FromUserName>oX</FromUserName><MsgType>text</MsgType></xml>",
])
def test_given_a_signed_but_malformed_or_hostile_body_then_success_and_no_write(aws, app, context, sim, body):
    push = sim.push("<xml/>", "plain")
    out = app.lambda_handler(http_event("POST", OA_APP, push.query, body), context)
    assert out["statusCode"] == 200 and out["body"] == "success"
    assert aws.items() == []


def test_given_hostile_xml_inside_the_ciphertext_then_success_and_no_write(aws, app, context, sim):
    evil = '<!DOCTYPE x [<!ENTITY e "boom">]><xml><ToUserName>gh</ToUserName><FromUserName>&e;</FromUserName></xml>'
    out, _ = post(app, context, sim, evil, "safe")
    assert out["statusCode"] == 200 and out["body"] == "success"
    assert aws.items() == []


def test_given_an_unknown_message_type_then_success(aws, app, context, sim):
    out, _ = post(app, context, sim, sim.message(OPENID, "hologram", {"Foo": "bar"}))
    assert out["statusCode"] == 200 and out["body"] == "success"


def test_given_a_base64_encoded_body_then_it_is_decoded_and_answered(aws, app, context, sim):
    import base64

    push = sim.push(sim.text(OPENID, "hello"), "safe")
    event = http_event("POST", OA_APP, push.query, base64.b64encode(push.body.encode()).decode())
    event["isBase64Encoded"] = True
    out = app.lambda_handler(event, context)
    assert out["statusCode"] == 200 and reply_of(sim, out, push)["Content"]
    assert len(identities(aws)) == 1


@pytest.mark.parametrize("body", ["abc", "not base64 at all!", "无效"])
def test_given_a_body_flagged_base64_that_is_not_then_400_and_no_write(aws, app, context, sim, body):
    push = sim.push(sim.text(OPENID, "hello"), "plain")
    event = http_event("POST", OA_APP, push.query, body)
    event["isBase64Encoded"] = True
    out = app.lambda_handler(event, context)
    assert out["statusCode"] == 400
    assert aws.items() == []


def test_given_other_http_method_then_405(aws, app, context, sim):
    out = app.lambda_handler(http_event("PUT", OA_APP, sim.verify_query()), context)
    assert out["statusCode"] == 405


# --- message and event types ----------------------------------------------------------------------------

MESSAGES = {
    "image": {"PicUrl": "https://example.com/p.jpg", "MediaId": "m1"},
    "voice": {"MediaId": "m2", "Format": "amr", "Recognition": "shop"},
    "video": {"MediaId": "m3", "ThumbMediaId": "t3"},
    "shortvideo": {"MediaId": "m4", "ThumbMediaId": "t4"},
    "location": {"Location_X": "23.13", "Location_Y": "113.26", "Scale": "20", "Label": "Guangzhou"},
    "link": {"Title": "A link", "Description": "d", "Url": "https://example.com/a"},
}


@pytest.mark.parametrize("msg_type", sorted(MESSAGES))
def test_given_each_message_type_then_answered_and_window_opened(aws, app, context, sim, msg_type):
    out, push = post(app, context, sim, sim.message(OPENID, msg_type, MESSAGES[msg_type]), "safe")
    assert out["statusCode"] == 200
    [ident] = identities(aws)
    assert ident["last_kind"] == msg_type and ident["ev"]["type"] == f"oa.{msg_type}"
    assert ident["win_msg_sent"] == 0
    reply = reply_of(sim, out, push)
    if msg_type == "voice":  # voice recognition goes through the keyword rules
        assert "data-miniprogram-appid" in reply["Content"]


EVENTS = [
    ("SCAN", "spring", {"Ticket": "t"}),
    ("LOCATION", None, {"Latitude": "23.1", "Longitude": "113.3", "Precision": "119"}),
    ("CLICK", "MENU_NEWS", {}),
    ("VIEW", "https://example.com/page", {"MenuId": "1"}),
    ("view_miniprogram", "pages/index/index", {"MenuId": "2"}),
    ("scancode_push", "SCAN_1", {"ScanCodeInfo": {"ScanType": "qrcode", "ScanResult": "1"}}),
    ("scancode_waitmsg", "SCAN_2", {"ScanCodeInfo": {"ScanType": "qrcode", "ScanResult": "2"}}),
    ("pic_sysphoto", "PIC_1", {}),
    ("pic_photo_or_album", "PIC_2", {}),
    ("pic_weixin", "PIC_3", {}),
    ("location_select", "LOC_1", {}),
    ("subscribe_msg_popup_event", None, {}),
    ("subscribe_msg_change_event", None, {}),
    ("subscribe_msg_sent_event", None, {}),
]


def _event_xml(sim, name, key, extra):
    xml = sim.event(OPENID, name, key=key)
    for k, v in extra.items():
        inner = "".join(f"<{a}><![CDATA[{b}]]></{a}>" for a, b in v.items()) if isinstance(v, dict) else f"<![CDATA[{v}]]>"
        xml = xml.replace("</xml>", f"<{k}>{inner}</{k}></xml>")
    return xml


@pytest.mark.parametrize("name,key,extra", EVENTS, ids=[e[0] for e in EVENTS])
def test_given_each_event_type_then_answered_and_recorded(aws, app, context, sim, name, key, extra):
    out, push = post(app, context, sim, _event_xml(sim, name, key, extra), "safe")
    assert out["statusCode"] == 200
    [ident] = identities(aws)
    assert ident["ev"]["type"] == f"oa.event.{name.lower()}"
    if name in ("CLICK", "scancode_push", "scancode_waitmsg", "SCAN"):
        assert ident["win_evt_sent"] == 0, "menu clicks, scans and follows open the 3-in-1-minute window"
    else:
        assert "win_evt_at" not in ident
    if name == "CLICK":
        reply = reply_of(sim, out, push)
        assert reply["MsgType"] == "news" and reply["Articles"]["item"]["Url"] == "https://example.com/news"
    if name == "VIEW":
        assert ident["ev"]["detail"]["event_key"] == "https://example.com/page"
    if name == "view_miniprogram":
        assert ident["ev"]["detail"]["event_key"] == "pages/index/index"


def test_given_subscribe_msg_popup_with_one_or_many_items_then_list_is_normalised(aws, app, context, sim):
    one = sim.event(OPENID, "subscribe_msg_popup_event").replace("</xml>", (
        "<SubscribeMsgPopupEvent><List><TemplateId><![CDATA[T1]]></TemplateId>"
        "<SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString><PopupScene>2</PopupScene></List>"
        "</SubscribeMsgPopupEvent></xml>"))
    post(app, context, sim, one, "safe")
    [ident] = identities(aws)
    assert ident["ev"]["detail"]["subscriptions"] == [{"template_id": "T1", "status": "accept", "popup_scene": "2"}]
    many = sim.event(OPENID, "subscribe_msg_popup_event", create_time=int(time.time()) + 1).replace("</xml>", (
        "<SubscribeMsgPopupEvent>"
        "<List><TemplateId>T1</TemplateId><SubscribeStatusString>accept</SubscribeStatusString></List>"
        "<List><TemplateId>T2</TemplateId><SubscribeStatusString>reject</SubscribeStatusString></List>"
        "</SubscribeMsgPopupEvent></xml>"))
    post(app, context, sim, many, "safe")
    [ident] = identities(aws)
    assert [s["template_id"] for s in ident["ev"]["detail"]["subscriptions"]] == ["T1", "T2"]


@pytest.mark.parametrize("name", ["TEMPLATESENDJOBFINISH", "MASSSENDJOBFINISH"])
def test_given_send_report_events_then_success_and_no_person_created(aws, app, context, sim, name):
    out, _ = post(app, context, sim, sim.event(OPENID, name, extra={"Status": "success"}), "safe")
    assert out["statusCode"] == 200 and out["body"] == "success"
    assert aws.items() == []


# --- follow state, scenes, first touch ------------------------------------------------------------------


def test_given_subscribe_via_qr_scene_then_scene_welcome_first_touch_and_unionid_job(aws, app, context, sim):
    out, push = post(app, context, sim, sim.subscribe(OPENID, "spring"), "safe")
    assert reply_of(sim, out, push)["Content"] == "Spring sale welcome"
    [ident], [person] = identities(aws), people(aws)
    assert ident["following"] is True and ident["last_scene"] == "spring"
    assert person["first_touch"]["scene"] == "spring" and person["first_touch"]["kind"] == "event.subscribe"
    [job] = aws.jobs()
    assert job["kind"] == "user_info" and job["openid"] == OPENID and job["app_id"] == OA_APP


def test_given_a_new_follower_without_scene_then_first_time_welcome_once_then_default_welcome(aws, app, context, sim):
    out, push = post(app, context, sim, sim.subscribe(OPENID))
    assert reply_of(sim, out, push)["Content"] == "Welcome to Demo OA, first time here"
    out, _ = post(app, context, sim, sim.event(OPENID, "unsubscribe", key="", create_time=int(time.time()) + 1))
    assert out["body"] == "success"
    assert identities(aws)[0]["following"] is False
    out, push = post(app, context, sim, sim.subscribe(OPENID, create_time=int(time.time()) + 2))
    assert reply_of(sim, out, push)["Content"] == "Welcome back to Demo OA"
    assert identities(aws)[0]["following"] is True
    assert len(people(aws)) == 1


def test_given_an_existing_follower_scans_a_scene_then_scene_reply_without_new_person(aws, app, context, sim):
    post(app, context, sim, sim.text(OPENID, "hi"))
    out, push = post(app, context, sim, sim.event(OPENID, "SCAN", key="spring", extra={"Ticket": "t"}))
    assert reply_of(sim, out, push)["Content"] == "Spring sale welcome"
    assert len(people(aws)) == 1
    [ident] = identities(aws)
    assert ident["last_scene"] == "spring" and ident["following"] is True


# --- dedupe --------------------------------------------------------------------------------------------


def test_given_wechat_retries_a_push_then_stored_reply_and_no_second_side_effect(aws, app, context, sim):
    push = sim.push(sim.subscribe(OPENID, "spring"), "safe")
    event = http_event("POST", OA_APP, push.query, push.body)
    first = app.lambda_handler(event, context)
    before = identities(aws)[0]
    second = app.lambda_handler(http_event("POST", OA_APP, push.query, push.body), context)
    third = app.lambda_handler(http_event("POST", OA_APP, push.query, push.body), context)
    for out in (first, second, third):
        assert reply_of(sim, out, push)["Content"] == "Spring sale welcome"
    assert identities(aws)[0] == before, "a retry writes nothing"
    assert len([j for j in aws.jobs() if j["kind"] == "user_info"]) == 1


def test_given_the_same_msgid_from_two_users_then_both_are_answered(aws, app, context, sim):
    a = post(app, context, sim, sim.text("oUserA", "shop", msg_id=777))[0]
    b = post(app, context, sim, sim.text("oUserB", "shop", msg_id=777))[0]
    assert a["body"] != "success" and b["body"] != "success"
    assert len(identities(aws)) == 2


def test_given_concurrent_deliveries_of_one_push_then_exactly_one_is_recorded(aws, app, context, sim):
    post(app, context, sim, sim.text(OPENID, "hello"))  # existing user
    push = sim.push(sim.text(OPENID, "card"), "safe")
    barrier, results = threading.Barrier(8), []

    def deliver():
        barrier.wait()
        results.append(app.lambda_handler(http_event("POST", OA_APP, push.query, push.body), context))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r["statusCode"] == 200 for r in results)
    assert [j["kind"] for j in aws.jobs()].count("cs_send") == 1, "the card is queued once"
    answered = [r for r in results if r["body"] != "success"]
    assert answered and all(reply_of(sim, r, push)["Content"] == "A card is on its way" for r in answered)


def test_given_concurrent_first_contacts_then_one_person(aws, app, context, sim):
    push = sim.push(sim.subscribe("oNewcomer"), "plain")
    barrier, results = threading.Barrier(6), []

    def deliver():
        barrier.wait()
        results.append(app.lambda_handler(http_event("POST", OA_APP, push.query, push.body), context))

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r["statusCode"] == 200 for r in results)
    assert len(people(aws)) == 1 and len(identities(aws)) == 1
    assert [j["kind"] for j in aws.jobs()].count("user_info") == 1


# --- failures: nothing accepted is lost -------------------------------------------------------------------


def test_given_dynamodb_fails_then_push_is_queued_and_the_worker_records_it(aws, app, context, sim, monkeypatch):
    monkeypatch.setenv("TABLE_NAME", "no-such-table")
    out, _ = post(app, context, sim, sim.subscribe(OPENID, "spring"), "safe")
    assert out["statusCode"] == 200 and out["body"] == "success"
    [job] = aws.jobs()
    assert job["kind"] == "touch" and job["inbound"]["openid"] == OPENID
    monkeypatch.setenv("TABLE_NAME", aws.table)
    from wxloop.services.oa_push import record_later

    assert record_later(job) == "recorded"
    assert record_later(job) == "duplicate"
    [ident] = identities(aws)
    assert ident["following"] is True and people(aws)[0]["first_touch"]["scene"] == "spring"


def test_a_queued_push_recorded_after_a_newer_one_keeps_the_newer_state(aws, app, context, sim, monkeypatch):
    post(app, context, sim, sim.text(OPENID, "hi", create_time=int(time.time()) - 20))
    monkeypatch.setenv("TABLE_NAME", "no-such-table")
    out, _ = post(app, context, sim, sim.subscribe(OPENID, "spring", create_time=int(time.time()) - 10), "safe")
    assert out["body"] == "success"
    monkeypatch.setenv("TABLE_NAME", aws.table)
    first_contact, job = sorted(aws.jobs(), key=lambda j: j["kind"] == "touch")
    assert first_contact["kind"] == "user_info"  # the text met the person: their unionid is looked up
    assert job["kind"] == "touch" and job["inbound"]["content"] == "" and job["jobs"][0]["kind"] == "user_info"
    post(app, context, sim, sim.event(OPENID, "unsubscribe", key=""))  # recorded directly, after
    job["at"] = int(time.time()) - 10  # the queued push is older than the unsubscribe just recorded
    from wxloop.services.oa_push import record_later

    assert record_later(job) == "recorded"
    [ident] = identities(aws)
    assert ident["following"] is False, "the late subscribe must not undo the newer unsubscribe"
    assert ident["ev"]["type"] == "oa.event.subscribe"  # but the push itself is recorded (journey, jobs)
    assert [j["kind"] for j in aws.jobs()] == ["user_info"]
    assert record_later(job) == "duplicate"


def test_a_queued_text_never_carries_what_the_person_wrote(aws, app, context, sim, monkeypatch):
    monkeypatch.setenv("TABLE_NAME", "no-such-table")
    post(app, context, sim, sim.text(OPENID, "my phone is 13900001111"), "safe")
    monkeypatch.setenv("TABLE_NAME", aws.table)
    [job] = aws.jobs()
    assert "13900001111" not in str(job)


def test_a_first_contact_looks_up_the_unionid_of_someone_who_followed_before(aws, app, context, sim):
    post(app, context, sim, sim.text(OPENID, "hello"))  # no subscribe was ever seen for this person
    post(app, context, sim, sim.text(OPENID, "hello again"))
    assert [(j["kind"], j["openid"]) for j in aws.jobs()] == [("user_info", OPENID)]  # once, not per message


def test_a_first_contact_recorded_late_by_the_worker_also_looks_up_the_unionid(aws, app, context, sim, monkeypatch):
    from wxloop.services.oa_push import record_later

    monkeypatch.setenv("TABLE_NAME", "no-such-table")
    post(app, context, sim, sim.event(OPENID, "CLICK", key="ABOUT_US"), "safe")
    monkeypatch.setenv("TABLE_NAME", aws.table)
    [job] = aws.jobs()
    assert job["kind"] == "touch" and job["jobs"] == []
    assert record_later(job) == "recorded"
    assert [j["kind"] for j in aws.jobs()] == ["user_info"]


def test_the_webhook_makes_no_sqs_request_its_follow_ups_ride_on_the_write(aws, app, context, sim, monkeypatch):
    from wxloop.adapters import queue

    def no_sqs(*_a, **_k):
        raise queue.QueueError("SQS is down")

    monkeypatch.setattr(queue, "send", no_sqs)
    monkeypatch.setattr(queue, "send_many", no_sqs)
    out, push = post(app, context, sim, sim.subscribe(OPENID, "spring"))
    assert out["statusCode"] == 200 and reply_of(sim, out, push)["Content"]
    monkeypatch.undo()
    assert [j["kind"] for j in aws.jobs()] == ["user_info"]  # queued from the stream


def test_the_stream_retries_a_record_whose_jobs_could_not_be_queued(aws, app, context, sim, monkeypatch):
    from wxloop.adapters import queue

    stream = load_handler("stream")
    post(app, context, sim, sim.subscribe(OPENID, "spring"))
    records = [r for r in aws.stream_records() if r["dynamodb"]["Keys"]["sk"]["S"] == "ID"]

    def down(*_a, **_k):
        raise queue.QueueError("SQS is down")

    monkeypatch.setattr(queue, "send_many", down)
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    with pytest.raises(BatchProcessingError):  # the whole batch failed: Lambda retries it
        stream.lambda_handler({"Records": records}, context)
    monkeypatch.undo()
    assert stream.lambda_handler({"Records": records}, context) == {"batchItemFailures": []}
    assert {(j["kind"], j["id"]) for j in aws.jobs()} == {("user_info", records[0]["dynamodb"]["NewImage"]["ev"]["M"]["jobs"]["L"][0]["M"]["id"]["S"])}


def test_given_dynamodb_and_sqs_both_fail_then_500_so_wechat_retries(aws, app, context, sim, monkeypatch):
    monkeypatch.setenv("TABLE_NAME", "no-such-table")
    monkeypatch.setenv("QUEUE_URL", aws.queue_url + "-missing")
    out, _ = post(app, context, sim, sim.text(OPENID, "shop"))
    assert out["statusCode"] == 500


def test_given_the_time_budget_is_spent_then_success_now_and_the_push_is_queued(aws, app, context, sim):
    push = sim.push(sim.text(OPENID, "shop"), "safe")
    late = http_event("POST", OA_APP, push.query, push.body, time_epoch_ms=int(time.time() * 1000) - 4500)
    out = app.lambda_handler(late, context)
    assert out["statusCode"] == 200 and out["body"] == "success"
    assert [j["kind"] for j in aws.jobs()] == ["touch"]
    assert identities(aws) == []


@pytest.mark.parametrize("function", ["oa_webhook", "worker", "token_refresher"])
@pytest.mark.parametrize("bad,field", [
    ('{"accounts": {"wx1234567890abcdef": {"kind": "oa", "name": "x", "tokn": "t"}}}', "tokn"),
    ('{"accounts": {"wx1234567890abcdef": {"kind": "oa", "name": "x"}}}', "token"),
    ('{"accounts": {"wx1234567890abcdef": {"kind": "xx", "name": "x", "token": "t"}}}', "kind"),
    ('{"accounts": {"wx1234567890abcdef": {"kind": "oa", "token": "tok", "encoding_aes_key": "%s"}}}'
     % ("*" * 43), "encoding_aes_key"),
])
def test_a_wrong_accounts_config_fails_the_start_naming_the_field(monkeypatch, function, bad, field):
    from wxloop.config import ConfigError

    monkeypatch.setenv("WECHAT_ACCOUNTS", bad)
    with pytest.raises(ConfigError, match=rf"wx1234567890abcdef\.{field}"):
        load_handler(function)


def test_the_webhook_module_loads_no_http_client_stack_and_no_boto3():
    """Cold start: the webhook never calls WeChat or uses boto3's resources, so it must not import them."""
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import app; "
            "print(sorted(m for m in ('requests', 'wechatpy.client', 'wechatpy.pay', 'boto3') if m in sys.modules))")
    env = {**os.environ, "WECHAT_ACCOUNTS": (ROOT / "config" / "demo-accounts.json").read_text(encoding="utf-8")}
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "functions" / "oa_webhook"), str(ROOT / "layers")],
                         env=env, capture_output=True, text=True, check=True, cwd=ROOT / "tests")
    assert json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"')) == []  # after the start's logs
