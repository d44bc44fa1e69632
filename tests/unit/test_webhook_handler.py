"""The push handler factory every webhook uses: decode, answer through the platform's ``handle``, count, and
500 when nothing was kept. A stand-in ``handle`` shows each outcome without AWS or WeChat."""

from __future__ import annotations

import pytest

from wxloop.protocol.http import HttpOut
from wxloop.services.push_seam import PushNotAccepted
from wxloop.services.webhook import push_handler


def _event(method: str = "POST", body: str = "<xml/>", raw_query: str = "") -> dict:
    return {"requestContext": {"http": {"method": method}, "requestId": "r-1", "timeEpoch": 0},
            "pathParameters": {"app_id": "wx1234567890abcdef"}, "rawQueryString": raw_query,
            "queryStringParameters": {}, "body": body, "isBase64Encoded": False}


def test_given_an_answer_when_invoked_then_it_is_the_http_response(context):
    seen = []

    def handle(request, *, count):
        seen.append((request.method, request.app_id, request.body))
        count("Replied")
        return HttpOut(200, "<xml>hi</xml>", "application/xml; charset=utf-8")

    out = push_handler("oa", handle)(_event(), context)
    assert out == {"statusCode": 200, "headers": {"Content-Type": "application/xml; charset=utf-8"},
                   "body": "<xml>hi</xml>"}
    assert seen == [("POST", "wx1234567890abcdef", b"<xml/>")]


@pytest.mark.parametrize("error", [PushNotAccepted("deadline"), RuntimeError("boom")], ids=["not_accepted", "bug"])
def test_given_nothing_was_kept_when_invoked_then_500_so_wechat_retries(context, capsys, error):
    def handle(request, *, count):
        raise error

    out = push_handler("mp", handle)(_event(), context)
    assert out["statusCode"] == 500 and out["body"] == "retry"
    metrics = capsys.readouterr().out  # the outcome metrics, as embedded metric format
    assert ('"Error":[1.0]' in metrics) is (type(error) is RuntimeError)  # a bug counts, a refusal was counted
    assert "boom" not in out["body"]


def test_a_refused_request_reaches_handle_with_its_problem(context):
    """A repeated query parameter is decoded as a problem; ``handle`` decides the answer (here: as is)."""

    def handle(request, *, count):
        return request.problem

    out = push_handler("oa", handle)(_event(raw_query="a=1&a=2"), context)
    assert out["statusCode"] == 400
