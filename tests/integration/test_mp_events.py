"""The MP sample event in events/ (for ``sam local invoke MpWebhookFunction``) against the real handler."""

from __future__ import annotations

import json

from tests.conftest import ROOT, load_handler

EVENTS = ROOT / "events"
FUNCTION = "MpWebhookFunction"


def test_the_mp_sample_event_is_a_safe_json_push_the_handler_records(aws, context, monkeypatch):
    doc = json.loads((EVENTS / "env.json").read_text(encoding="utf-8"))
    for name, value in {**doc["Parameters"], **doc[FUNCTION]}.items():
        if name not in ("TABLE_NAME", "QUEUE_URL"):
            monkeypatch.setenv(name, value)
    event = json.loads((EVENTS / "mp-text-json-safe.json").read_text(encoding="utf-8"))
    assert event["rawPath"].startswith("/wechat/mp/") and event["queryStringParameters"]["encrypt_type"] == "aes"
    assert set(json.loads(event["body"])) == {"ToUserName", "Encrypt"}
    out = load_handler("mp_webhook").lambda_handler(event, context)
    assert (out["statusCode"], out["body"]) == (200, "success")
    [identity] = [i for i in aws.items() if i["pk"].startswith("ID#") and i["sk"] == "ID"]
    assert identity["ev"]["type"] == "mp.text"


def test_sam_local_passes_every_mp_env_json_variable_to_the_function():
    from devstack.table import load_template

    template = load_template()
    doc = json.loads((EVENTS / "env.json").read_text(encoding="utf-8"))
    declared = set(template["Globals"]["Function"]["Environment"]["Variables"])
    declared |= set(template["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"])
    assert set({**doc["Parameters"], **doc[FUNCTION]}) - declared == set()
