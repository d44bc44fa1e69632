"""The committed openapi.json is what the code generates (regenerate with `make openapi`)."""

from __future__ import annotations

import json

from tests.conftest import ROOT


def test_openapi_json_matches_the_code():
    from wxloop.services.mp_api.http import openapi_document

    committed = (ROOT / "openapi.json").read_text(encoding="utf-8")
    generated = openapi_document()
    assert committed == generated, "openapi.json drifted from the code: run `make openapi` and commit it"


def test_the_document_covers_every_route_and_marks_the_open_one():
    doc = json.loads((ROOT / "openapi.json").read_text(encoding="utf-8"))
    paths = {(p, method) for p, ops in doc["paths"].items() for method in ops}
    assert paths == {("/mp/{app_id}/session", "post"), ("/mp/{app_id}/me", "get"),
                     ("/mp/{app_id}/me/prompt", "post"), ("/mp/{app_id}/phone", "post"),
                     ("/mp/{app_id}/share-info", "post"), ("/mp/{app_id}/events", "post"),
                     ("/mp/{app_id}/preferences", "put"), ("/mp/{app_id}/invite", "get"),
                     ("/mp/{app_id}/referrals", "get"), ("/mp/{app_id}/points", "get"),
                     ("/mp/{app_id}/privacy/consent", "get"), ("/mp/{app_id}/privacy/consent", "put"),
                     ("/mp/{app_id}/privacy/export", "post"), ("/mp/{app_id}/privacy/export/{export_id}", "get"),
                     ("/mp/{app_id}/privacy/me", "delete"), ("/mp/{app_id}/privacy/me", "patch")}
    for (path, method) in paths:
        secured = "security" in doc["paths"][path][method]
        assert secured == (path != "/mp/{app_id}/session"), path


def test_swagger_ui_outside_prod_only(monkeypatch, aws):
    from tests.conftest import LambdaContext
    from tests.integration.mp_api_kit import mp_event
    from wxloop.services.mp_api.http import build_app

    event = mp_event("GET", "swagger", app_id="docs", headers={"content-type": "text/html"})
    monkeypatch.setenv("STAGE", "dev")
    assert build_app().resolve(dict(event), LambdaContext())["statusCode"] == 200
    monkeypatch.setenv("STAGE", "prod")
    assert build_app().resolve(dict(event), LambdaContext())["statusCode"] == 404
