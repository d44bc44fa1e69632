"""The token refresh service, without AWS: each account's result, failures logged without their text."""

from __future__ import annotations


def test_each_account_gets_its_result_and_one_failure_stops_nothing(caplog):
    from wxloop.services import tokens

    seen = []

    def refresh(app_id, margin):
        seen.append((app_id, margin))
        if app_id == "wx-b":
            raise RuntimeError("secret=demo-oa-secret appid=wx-b")
        return app_id == "wx-a"

    out = tokens.refresh_due(["wx-a", "wx-b", "wx-c"], margin=300, refresh=refresh)
    assert out == {"wx-a": "refreshed", "wx-b": "failed", "wx-c": "unchanged"}
    assert seen == [("wx-a", 300), ("wx-b", 300), ("wx-c", 300)]
    [failed] = [r for r in caplog.records if r.getMessage() == "token refresh failed"]
    assert failed.error == "RuntimeError" and failed.app_id == "wx-b"
    assert all("demo-oa-secret" not in str(r.__dict__) for r in caplog.records)
