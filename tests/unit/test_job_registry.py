"""The job registry: one typed record per kind, validated when the job is read (a malformed job is poison,
never a retry), and a poison reason that names fields, never values."""

from __future__ import annotations

import json

import pytest

OA = "wx1234567890abcdef"


def tag_job(**extra):
    return json.dumps({"id": "j-tag", "kind": "tag", "app_id": OA, "openid": "o-oa-1", **extra})


@pytest.mark.parametrize("tag_id", ["²", "٣", "1²", " 12", "12 ", "-1", "1e3", "12345678901", True, 1.5, None])
def test_tag_ids_that_are_not_ascii_digits_are_poison(tag_id):
    """"²".isdigit() is True but int("²") fails: such an id used to pass and then fail on every retry."""
    from wxloop.services import jobs

    with pytest.raises(jobs.PoisonJob, match="add"):
        jobs.parse(tag_job(add=[tag_id]))


def test_tag_ids_in_ascii_digits_become_ints():
    from wxloop.services import jobs

    _, record = jobs.validate(json.loads(tag_job(add=[100, "101"], remove=["7"])))
    assert (record.add, record.remove) == ([100, 101], [7])


@pytest.mark.parametrize("openid", ["", "o oa", "o<]]>", "x" * 65, 12])
def test_an_openid_outside_wechats_alphabet_is_poison(openid):
    from wxloop.services import jobs

    with pytest.raises(jobs.PoisonJob, match="openid"):
        jobs.parse(json.dumps({"id": "j", "kind": "user_info", "app_id": OA, "openid": openid}))


def test_a_poison_reason_names_the_field_never_the_value():
    from wxloop.services import jobs

    body = json.dumps({"id": "j", "kind": "cs_send", "app_id": OA, "openid": "13900001111 o",
                       "message": "13900001112", "deferrals": "x13900001113"})
    with pytest.raises(jobs.PoisonJob) as caught:
        jobs.parse(body)
    reason = str(caught.value)
    assert "openid" in reason and "message" in reason and "deferrals" in reason
    assert "1390000111" not in reason
    assert caught.value.__cause__ is None and caught.value.__context__ is not None  # raised "from None"


@pytest.mark.parametrize("body", [
    "[" * 100_000,  # nesting deep enough to exhaust the parser's recursion
    json.dumps({"id": "j", "kind": "subscribe_send", "app_id": OA, "openid": "o1", "template_id": "t", "data": {}}),
    json.dumps({"id": "j", "kind": "touch", "app_id": OA, "inbound": {}}),
    json.dumps({"id": "j", "kind": "tag_topics", "app_id": OA, "openid": "o1", "uid": ""}),
    json.dumps({"id": "", "kind": "user_info", "app_id": OA, "openid": "o1"}),
    json.dumps({"id": "j", "kind": "user_info", "app_id": OA, "openid": "o1", "deferrals": -1}),
    json.dumps({"id": "j", "kind": "campaign_send", "app_id": OA, "openid": "o1", "campaign": "c", "run": "r",
                "uid": "u", "channel": "oa_cs", "message": {"text": {"content": "no msgtype"}}}),
    json.dumps({"id": "j", "kind": "campaign_send", "app_id": OA, "openid": "o1", "campaign": "c", "run": "r",
                "uid": "u", "channel": "mp_subscribe", "data": {"thing1": {"value": "no template"}}}),
    json.dumps({"id": "j", "kind": "campaign_send", "app_id": OA, "openid": "o1", "campaign": "c", "run": "r",
                "uid": "u", "channel": "oa_mass", "message": {"msgtype": "text"}}),
    json.dumps({"id": "j", "kind": "campaign_mass", "app_id": OA, "campaign": "c", "run": "r", "stage": "tag",
                "batch": "b", "openids": [f"o{i}" for i in range(51)]}),
    json.dumps({"id": "j", "kind": "campaign_mass", "app_id": OA, "campaign": "c", "run": "r", "stage": "tag",
                "batch": "b", "uids": ["u"], "openids": ["not an openid"]}),
    json.dumps({"id": "j", "kind": "campaign_mass", "app_id": OA, "campaign": "c", "run": "r", "stage": "tag",
                "batch": "b", "uids": ["u1"], "openids": ["o1", "o2"]}),
    json.dumps({"id": "j", "kind": "campaign_mass", "app_id": OA, "campaign": "c", "run": "r", "stage": "send",
                "message": {"text": "hi", "media_id": "m"}}),
    json.dumps({"id": "j", "kind": 7, "app_id": OA}),
])
def test_malformed_jobs_of_every_kind_are_poison(body):
    from wxloop.services import jobs

    with pytest.raises(jobs.PoisonJob):
        jobs.parse(body)


def test_every_kind_has_a_record_and_a_function():
    from wxloop.services import jobs

    assert set(jobs.KINDS) == {"cs_send", "subscribe_send", "user_info", "tag", "tag_topics", "touch",
                                "reward_notice", "untag_all", "consent_withdraw", "channel_renew",
                                "campaign_send", "campaign_mass", "job_settle"}
    for name, kind in jobs.KINDS.items():
        assert kind.name == name and issubclass(kind.record, jobs.Job) and callable(kind.run)
    assert [n for n, k in jobs.KINDS.items() if not k.calls_wechat] == ["touch", "consent_withdraw", "job_settle"]
    cs, sub = jobs.KINDS["cs_send"], jobs.KINDS["subscribe_send"]
    _, record = jobs.validate({"id": "j", "kind": "subscribe_send", "app_id": OA, "openid": "o1",
                               "template_id": "tpl-9", "data": {"a": 1}})
    assert sub.channel_of(record) == "subscribe:tpl-9" and jobs.KINDS["tag"].channel_of(record) == "tag"
    assert cs.channel_of(record) == "cs"


def test_a_campaign_send_closes_the_channel_its_send_uses():
    from wxloop.services import jobs

    kind = jobs.KINDS["campaign_send"]
    base = {"id": "j", "kind": "campaign_send", "app_id": OA, "openid": "o1", "campaign": "c", "run": "r", "uid": "u"}
    for channel, body, closed in (
        ("oa_cs", {"message": {"msgtype": "text", "text": {"content": "hi"}}}, "cs"),
        ("mp_cs", {"message": {"msgtype": "text", "text": {"content": "hi"}}}, "cs"),
        ("mp_subscribe", {"template_id": "tpl-9", "data": {"thing1": {"value": "x"}}}, "subscribe:tpl-9"),
        ("oa_template", {"template_id": "tpl-1", "data": {"first": {"value": "x"}}}, "template"),
    ):
        _, record = jobs.validate({**base, "channel": channel, **body})
        assert kind.channel_of(record) == closed, channel
    assert kind.calls_wechat and kind.on_outcome is not None
