"""Rectification (PIPL Art. 46) over HTTP: a person corrects what they gave (phone, topics) and nothing else;
a correction reaches every copy the table holds, follows consent, and changes nothing when refused."""

from __future__ import annotations

import time

from tests.conftest import MP_APP, OA_APP
from tests.integration.mp_api_kit import call, grant, login, uid_of

pytest_plugins = ["tests.integration.conftest_wechat", "tests.integration.mp_api_kit"]  # fake_wechat, mp_api

PHONE = "13912345678"


def _person(aws, uid: str) -> dict:
    return next(i for i in aws.items() if i["pk"] == f"USER#{uid}" and i["sk"] == "PROFILE")


def _with_phone(aws, mp_api, context, fake_wechat, openid="oRect1") -> tuple[str, str]:
    token = login(mp_api, context, fake_wechat, openid=openid)["token"]
    fake_wechat.add_phone_code(MP_APP, f"pc{openid}", PHONE)
    assert call(mp_api, context, "POST", "phone", {"code": f"pc{openid}"}, token=token) == (200, {"phone": "139****5678"})
    return token, uid_of(token)


def test_removing_the_phone_forgets_every_copy_and_a_new_one_can_be_bound(aws, mp_api, context, fake_wechat):
    token, uid = _with_phone(aws, mp_api, context, fake_wechat)
    assert {"phone", "phone_masked", "phone_at"} <= set(_person(aws, uid))

    status, doc = call(mp_api, context, "PATCH", "privacy/me", {"remove_phone": True}, token=token)
    assert status == 200 and doc["phone"] is None
    person = _person(aws, uid)
    assert not {"phone", "phone_masked", "phone_at"} & set(person) and person["phone_removed_at"] > 0
    people = [i for i in aws.items() if i["pk"].startswith("USER#")]
    assert PHONE not in repr(people) and "139****5678" not in repr(people)
    assert call(mp_api, context, "GET", "me", token=token)[1]["phone"] is None
    # the same request again: still gone, still 200 (a PATCH is idempotent)
    assert call(mp_api, context, "PATCH", "privacy/me", {"remove_phone": True}, token=token)[0] == 200
    # the person binds a corrected number
    fake_wechat.add_phone_code(MP_APP, "pcNew", "13700001111")
    assert call(mp_api, context, "POST", "phone", {"code": "pcNew"}, token=token) == (200, {"phone": "137****1111"})


def test_topics_are_corrected_and_the_oa_tags_follow(aws, mp_api, context, fake_wechat):
    from wxloop.adapters import repository

    token = login(mp_api, context, fake_wechat, openid="oRect2", unionid="uRect2")["token"]
    now = int(time.time())
    repository.create_identity(OA_APP, _inbound("oOaRect2"), now=now, event={"id": f"e{now}", "type": "oa.follow",
                                                                           "app": OA_APP, "at": now, "detail": {}},
                               reply=None,
                               first_touch={"channel": "oa"})
    repository.link_unionid(OA_APP, "oOaRect2", "uRect2", int(time.time()))
    assert call(mp_api, context, "PUT", "preferences", {"topics": ["shoes", "bags"]}, token=token)[0] == 200
    status, doc = call(mp_api, context, "PATCH", "privacy/me", {"topics": ["bags", "bags", "tea"]}, token=token)
    assert status == 200 and doc["topics"] == ["bags", "tea"]
    sync = [j for j in aws.jobs() if j["kind"] == "tag_topics"][-1]
    assert (sync["topics"], sync["remove"]) == (["bags", "tea"], ["shoes"])  # the dropped topic is untagged


def test_corrections_that_are_not_the_persons_to_make_are_refused_and_change_nothing(aws, mp_api, context, fake_wechat):
    token, uid = _with_phone(aws, mp_api, context, fake_wechat, openid="oRect3")
    before = _person(aws, uid)
    for body in ({"points": 1000}, {"uid": "someone-else"}, {"phone": "13800000000"}, {"remove_phone": "yes please"},
                 {"topics": ["x" * 31]}, {"topics": [f"t{i}" for i in range(21)]}, {"topics": "shoes"},
                 {"openid": "oOther", "remove_phone": True}):
        status, doc = call(mp_api, context, "PATCH", "privacy/me", body, token=token)
        assert status in (400, 422), (body, status, doc)
    for raw in ("[", "null", '"remove_phone"', "\xff"):
        assert call(mp_api, context, "PATCH", "privacy/me", raw=raw, token=token)[0] in (400, 422)
    after = _person(aws, uid)
    assert {k: v for k, v in after.items() if k not in ("rl", "rl_at", "last_api_at")} == \
        {k: v for k, v in before.items() if k not in ("rl", "rl_at", "last_api_at")}
    assert call(mp_api, context, "PATCH", "privacy/me", {"remove_phone": True})[0] == 401  # no token: no change
    assert "phone" in _person(aws, uid)


def test_topics_need_personalisation_consent_and_a_refusal_changes_nothing_else(aws, mp_api, context, fake_wechat):
    token, uid = _with_phone(aws, mp_api, context, fake_wechat, openid="oRect4")
    grant(uid, ("personalisation",), granted=False, at=int(time.time()))
    status, doc = call(mp_api, context, "PATCH", "privacy/me", {"topics": ["tea"], "remove_phone": True}, token=token)
    assert status == 403 and doc["error"]["code"] == "consent_required"
    person = _person(aws, uid)
    assert "phone" in person and not (person.get("prefs") or {}).get("topics")  # neither change was made


def test_a_person_corrects_only_their_own_record(aws, mp_api, context, fake_wechat):
    token_a, uid_a = _with_phone(aws, mp_api, context, fake_wechat, openid="oRectA")
    token_b, uid_b = _with_phone(aws, mp_api, context, fake_wechat, openid="oRectB")
    assert call(mp_api, context, "PATCH", "privacy/me", {"remove_phone": True}, token=token_b)[0] == 200
    assert "phone" in _person(aws, uid_a) and "phone" not in _person(aws, uid_b)
    # a token of this MP used on another app's route is refused before anything is read or written
    status, _ = call(mp_api, context, "PATCH", "privacy/me", {"remove_phone": True}, token=token_a,
                     app_id="wx" + "0" * 16)
    assert status in (401, 403, 404) and "phone" in _person(aws, uid_a)


def _inbound(openid: str):
    from wxloop.domain.inbound import Inbound

    return Inbound(openid=openid, to_user=OA_APP, msg_type="event", create_time=int(time.time()), event="subscribe")


def test_a_correction_counts_once_against_the_rate_limit_however_many_steps_it_takes(
        aws, mp_api, context, fake_wechat, monkeypatch):
    from wxloop.services.mp_api import context as mp_context

    token, uid = _with_phone(aws, mp_api, context, fake_wechat, openid="oRectRate")
    grant(uid, ["personalisation"])
    aws.ddb.update_item(TableName=aws.table, Key={"pk": {"S": f"USER#{uid}"}, "sk": {"S": "PROFILE"}},
                        UpdateExpression="REMOVE " + ", ".join(f"rl_{i}" for i in range(16)))  # log-in's calls
    monkeypatch.setenv("MP_RATE_LIMIT_PER_MINUTE", "2")
    mp_context.mp_settings.cache_clear()
    minute = int(time.time()) // 60
    body = {"remove_phone": True, "topics": ["tea"]}  # consent read, topics, phone, the answer: one count
    assert [call(mp_api, context, "PATCH", "privacy/me", body, token=token)[0] for _ in range(2)] == [200, 200]
    status = call(mp_api, context, "PATCH", "privacy/me", body, token=token)[0]
    if int(time.time()) // 60 == minute:  # the counter is per minute: the third call of one minute is over
        assert status == 429
    assert _person(aws, uid)["prefs"]["topics"] == ["tea"] and "phone" not in _person(aws, uid)
