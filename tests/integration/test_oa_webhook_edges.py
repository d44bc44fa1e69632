"""OA webhook edge cases: a verification without ``echostr``, an unknown message type, byte-identical retries.

Same pattern as test_oa_webhook.py: real API Gateway v2 events into the real handler, moto behind it.
"""

from __future__ import annotations

import time

import pytest
import xmltodict

from devstack.simulator import http_event
from tests.conftest import OA_APP
from tests.integration.oa_webhook_kit import identities, post

pytest_plugins = ["tests.integration.oa_webhook_kit"]  # fixtures: app, sim

OPENID = "oUserEdge00000000000000000001"


# --- GET verification without echostr ---------------------------------------------------------------


@pytest.mark.parametrize("echostr", [None, ""], ids=["absent", "empty"])
def test_given_a_valid_signature_but_no_echostr_when_verifying_then_400_and_nothing_written(
        aws, app, context, sim, echostr):
    query = sim.verify_query()
    if echostr is None:
        del query["echostr"]
    else:
        query["echostr"] = echostr
    out = app.lambda_handler(http_event("GET", OA_APP, query), context)
    assert out["statusCode"] == 400
    assert out["body"] == "missing_echostr"
    assert aws.items() == [] and aws.jobs() == []


def test_given_no_echostr_and_a_bad_signature_then_403_not_400(aws, app, context, sim):
    """The signature is checked first: a stranger learns nothing about which parameter is missing."""
    query = sim.verify_query()
    del query["echostr"]
    query["signature"] = "0" * 40
    out = app.lambda_handler(http_event("GET", OA_APP, query), context)
    assert out["statusCode"] == 403
    assert aws.items() == []


# --- an unknown message type ------------------------------------------------------------------------

# What the sender "wrote" in fields wxloop does not know: none of it may be kept anywhere.
UNKNOWN_FIELDS = {"Content": "my phone is 13900001111", "Foo": "secret-foo-value", "MediaId": "media-xyz"}


def _everything_stored(aws) -> str:
    return repr(aws.items()) + repr(aws.stream_records())


@pytest.mark.parametrize("mode", ["plain", "safe"])
def test_given_an_unknown_message_type_then_success_and_only_the_touch_is_recorded(aws, app, context, sim, mode):
    """A signed push of a type wxloop does not know (oa_push: no rule trigger, so no reply) is answered
    ``success`` and recorded as any push is (identity touch with its kind and dedupe key, the person on a
    first contact), but without anything of its content, without opening a customer-service window and
    without follow-up jobs beyond a first contact's."""
    xml = sim.message(OPENID, "hologram", UNKNOWN_FIELDS)
    out, _ = post(app, context, sim, xml, mode)
    assert out["statusCode"] == 200 and out["body"] == "success"
    [ident] = identities(aws)
    assert ident["last_kind"] == "hologram"
    assert ident["ev"]["type"] == "oa.hologram" and ident["ev"]["detail"] == {}
    assert "last_reply" not in ident
    assert "win_msg_at" not in ident and "win_evt_at" not in ident, "an unknown type opens no window"
    jobs = aws.jobs()
    assert {j["kind"] for j in jobs} <= {"user_info"}, "at most a first contact's user_info job"
    stored = _everything_stored(aws) + repr(jobs)
    for value in UNKNOWN_FIELDS.values():
        assert value not in stored


def test_given_an_unknown_message_type_from_a_known_user_then_success_and_nothing_of_it_kept(
        aws, app, context, sim):
    post(app, context, sim, sim.text(OPENID, "hi"))
    aws.jobs()  # the first contact's follow-ups, if any
    before = identities(aws)[0]
    out, _ = post(app, context, sim, sim.message(OPENID, "hologram", UNKNOWN_FIELDS))
    assert out["body"] == "success"
    [ident] = identities(aws)
    assert ident["last_kind"] == "hologram" and ident["ev"]["detail"] == {}
    assert ident["uid"] == before["uid"] and ident["win_msg_at"] == before["win_msg_at"]
    assert ident["last_reply"] == before["last_reply"], "no reply replaces the kept one"
    assert aws.jobs() == []
    stored = _everything_stored(aws)
    for value in UNKNOWN_FIELDS.values():
        assert value not in stored


def test_a_retried_unknown_message_is_deduped(aws, app, context, sim):
    push = sim.push(sim.message(OPENID, "hologram", UNKNOWN_FIELDS), "safe")
    first = app.lambda_handler(http_event("POST", OA_APP, push.query, push.body), context)
    before = identities(aws)
    second = app.lambda_handler(http_event("POST", OA_APP, push.query, push.body), context)
    assert first["body"] == second["body"] == "success"
    assert identities(aws) == before


# --- a retry gets the very same reply ------------------------------------------------------------------


@pytest.fixture
def later(monkeypatch):
    """Move the webhook's clock (the reply's CreateTime) forward: a re-rendered reply would differ."""
    from wxloop.services import oa_push

    class Later:
        offset = 0

        def time(self):
            return time.time() + self.offset

        def __getattr__(self, name):
            return getattr(time, name)

    clock = Later()
    monkeypatch.setattr(oa_push, "time", clock)
    return clock


def _deliver(app, context, push, clock):
    """One delivery, received by API Gateway at the webhook's (moved) clock."""
    event = http_event("POST", OA_APP, push.query, push.body, time_epoch_ms=int(clock.time() * 1000))
    out = app.lambda_handler(event, context)
    assert out["statusCode"] == 200
    return out


@pytest.mark.parametrize("text", ["shop", "my points please", "what is this"], ids=["keyword", "personal", "default"])
@pytest.mark.parametrize("mode", ["plain", "compat", "safe"])
def test_a_retried_push_gets_a_byte_identical_reply_but_for_the_encryption_randomness(
        aws, app, context, sim, later, mode, text):
    """The reply to WeChat's retry is the stored one: after decryption the same bytes, CreateTime included;
    the envelope differs only in the ciphertext (random prefix) and its signature."""
    post(app, context, sim, sim.text(OPENID, "hi"))  # a known user (the personal reply reads the person)
    push = sim.push(sim.text(OPENID, text), mode)
    first = _deliver(app, context, push, later)
    assert first["body"] != "success"
    later.offset = 5  # WeChat retries 5 s later: a fresh rendering would carry another CreateTime
    retries = [_deliver(app, context, push, later) for _ in range(2)]

    plain = [sim.open_reply(out["body"], push) for out in (first, *retries)]
    assert "<CreateTime>" in plain[0]
    assert plain[0] == plain[1] == plain[2]
    assert all(out["headers"] == first["headers"] for out in retries)
    if mode == "plain":
        assert first["body"] == retries[0]["body"] == retries[1]["body"]
        return
    envelopes = [xmltodict.parse(out["body"])["xml"] for out in (first, *retries)]
    for env in envelopes[1:]:
        assert env["TimeStamp"] == envelopes[0]["TimeStamp"] == push.query["timestamp"]
        assert env["Nonce"] == envelopes[0]["Nonce"] == push.query["nonce"]
        assert set(env) == set(envelopes[0])
    assert len({env["Encrypt"] for env in envelopes}) == 3, "each answer is encrypted afresh"
