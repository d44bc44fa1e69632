"""The operator CLI without AWS: validate and test rule files, validate and push menus (fake client)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from wxloop import rulesfile
from wxloop.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = str(REPO / "rules" / "example.yaml")
MENU = str(REPO / "rules" / "menu.yaml")


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# ------------------------------------------------------------------------------------------ rules validate


def test_given_the_example_rules_when_validated_then_it_reports_ok_with_counts(capsys):
    code, out, _ = run(capsys, "rules", "validate", EXAMPLE)
    assert code == 0
    assert "ok" in out and "13 rules" in out and "first_welcome" in out
    assert "placeholders: invite_code, nickname, points" in out


BROKEN = """\
app_id: wx1234567890abcdef
rules:
  - id: fine
    keywords: [hello]
    reply: {text: hi}
  - id: evil
    match: regex
    keywords:
      - ok
      - '^x\\w+?\\w+?(?=\\w+?\\d)'
    reply: {text: no}
"""


def test_given_a_dangerous_regex_in_a_file_when_validated_then_exit_2_names_file_and_line(capsys, tmp_path):
    path = write(tmp_path, BROKEN)
    code, out, err = run(capsys, "rules", "validate", path)
    assert code == 2 and out == ""
    assert err.startswith(f"{path}:10: rules[1].keywords[1]: regex refused: lookahead")


def test_given_a_missing_field_when_validated_then_the_line_is_that_of_the_nearest_parent(capsys, tmp_path):
    path = write(tmp_path, "rules:\n  - id: a\n    keywords: [x]\n  - id: b\n    keywords: [y]\n")
    code, _, err = run(capsys, "rules", "validate", path)
    assert code == 2
    assert err.startswith(f"{path}:2: rules[0].reply: is required")
    path = write(tmp_path, "rules:\n  - id: a\n    keywords: [x]\n    reply: {text: a}\n  - id: b\n    keywords: [y]\n")
    assert run(capsys, "rules", "validate", path)[2].startswith(f"{path}:5: rules[1].reply")


def test_given_yaml_syntax_errors_and_duplicate_keys_when_validated_then_exit_2_with_the_line(capsys, tmp_path):
    path = write(tmp_path, "rules:\n  - id: a\n    keywords: [x\n    reply: {text: a}\n")
    code, _, err = run(capsys, "rules", "validate", path)
    assert code == 2 and err.startswith(f"{path}:") and "YAML" in err
    path = write(tmp_path, "rules:\n  - id: a\n    keywords: [x]\n    reply: {text: a}\n    reply: {text: b}\n")
    code, _, err = run(capsys, "rules", "validate", path)
    assert code == 2 and err.startswith(f"{path}:5: duplicate key 'reply' (first on line 4)")
    code, _, err = run(capsys, "rules", "validate", str(tmp_path / "missing.yaml"))
    assert code == 2 and "cannot read" in err


def test_given_a_file_when_loaded_for_storage_then_it_is_a_json_able_doc_with_a_version(tmp_path):
    path = write(tmp_path, "rules:\n  - id: a\n    keywords: [x]\n    window: {dates: {from: 2025-01-01}}\n"
                           "    reply: {text: a}\n")
    doc = rulesfile.load_rule_set(path)[0].to_doc()
    assert doc["rules"][0]["window"] == {"dates": {"from": "2025-01-01"}}
    assert isinstance(doc["version"], str) and len(doc["version"]) == 12
    with pytest.raises(rulesfile.FileError) as err:
        rulesfile.load_rule_set(write(tmp_path, "- just\n- a list\n"))
    assert err.value.line == 1


# ------------------------------------------------------------------------------------------ rules test


def test_given_a_keyword_when_tested_then_the_rule_id_and_the_rendered_reply_are_printed(capsys):
    code, out, _ = run(capsys, "rules", "test", EXAMPLE, "我的积分", "--set", "points=120", "--set", "nickname=Ann")
    assert code == 0
    assert out.splitlines()[0] == "rule: points (priority 10, contains)"
    assert "content: Ann，你现在有 120 积分。" in out


def test_given_office_hours_when_tested_at_a_saturday_then_the_closed_rule_answers_and_says_why(capsys):
    code, out, _ = run(capsys, "rules", "test", EXAMPLE, "转人工", "--at", "2025-06-07T10:00")
    assert code == 0
    assert out.startswith("rule: service-closed")
    assert "service-hours: keywords match but its time window is closed" in out
    code, out, _ = run(capsys, "rules", "test", EXAMPLE, "转人工", "--at", "2025-06-06T10:00+08:00")
    assert out.startswith("rule: service-hours")


def test_given_triggers_when_tested_then_click_scene_and_first_time_welcome_are_resolved(capsys):
    assert run(capsys, "rules", "test", EXAMPLE, "ABOUT_US", "--trigger", "click")[1].startswith("rule: menu-about")
    code, out, _ = run(capsys, "rules", "test", EXAMPLE, "store_42", "--trigger", "subscribe", "--first-time")
    assert out.startswith("rule: scene-store") and 'data-miniprogram-appid="wxabcdef1234567890"' in out
    assert run(capsys, "rules", "test", EXAMPLE, "", "--trigger", "subscribe", "--first-time")[1].startswith(
        "rule: defaults.first_welcome")
    assert run(capsys, "rules", "test", EXAMPLE, "", "--trigger", "subscribe")[1].startswith("rule: defaults.welcome")
    code, out, _ = run(capsys, "rules", "test", EXAMPLE, "夜场", "--at", "2025-11-08T01:30")
    assert out.startswith("rule: night-sale") and "customer-service" in out


def test_given_nothing_matches_when_tested_then_exit_1_explains_why(capsys, tmp_path):
    code, out, _ = run(capsys, "rules", "test", EXAMPLE, "NOPE", "--trigger", "click")
    assert code == 1 and out.startswith("no reply: no click rule matched 'NOPE'")
    path = write(tmp_path, "rules:\n  - id: xmas\n    keywords: [sale]\n    window: {dates: {from: 2025-12-24, to: 2025-12-26}}\n"
                           "    reply: {text: ho}\n")
    code, out, _ = run(capsys, "rules", "test", path, "SALE", "--at", "2025-06-01T12:00")
    assert code == 1
    assert "no rule matched and the set has no defaults.reply" in out
    assert "xmas: keywords match but its time window is closed" in out


def test_given_bad_arguments_when_tested_then_exit_2(capsys):
    assert run(capsys, "rules", "test", EXAMPLE, "x", "--at", "yesterday")[0] == 2
    assert run(capsys, "rules", "test", EXAMPLE, "x", "--set", "novalue")[0] == 2
    with pytest.raises(SystemExit) as exit_:
        main(["rules", "test", EXAMPLE, "x", "--trigger", "view"])
    assert exit_.value.code == 2


# ------------------------------------------------------------------------------------------ menu


def test_given_the_example_menu_when_validated_against_the_example_rules_then_every_click_is_answered(capsys):
    code, out, _ = run(capsys, "menu", "validate", MENU, "--rules", EXAMPLE)
    assert code == 0 and "3 top-level buttons, 6 actions" in out and "warning" not in out


def test_given_a_menu_click_without_a_rule_when_validated_with_rules_then_a_warning_names_the_key(capsys, tmp_path):
    path = write(tmp_path, "menu:\n  button:\n    - {type: click, name: 新品, key: NEW_ARRIVALS}\n", "menu.yaml")
    code, out, _ = run(capsys, "menu", "validate", path, "--rules", EXAMPLE)
    assert code == 0 and "warning: click key 'NEW_ARRIVALS' has no click rule" in out


def test_given_an_invalid_menu_when_validated_then_exit_2_names_file_and_line(capsys, tmp_path):
    path = write(tmp_path, "menu:\n  button:\n    - name: 会员\n      sub_button:\n        - type: view\n"
                           "          name: 官网\n", "menu.yaml")
    code, _, err = run(capsys, "menu", "validate", path)
    assert code == 2
    assert err.startswith(f"{path}:5: menu.button[0].sub_button[0].url: is required for a view button")


def test_given_a_valid_menu_when_pushed_then_menu_create_gets_the_wechat_json(capsys, monkeypatch):
    calls = []

    class FakeMenu:
        def create(self, body):
            calls.append(body)
            return {"errcode": 0}

    fake = types.ModuleType("wxloop.adapters.wechat")
    fake.api_client = lambda app_id: types.SimpleNamespace(menu=FakeMenu(), app_id=app_id)
    monkeypatch.setitem(sys.modules, "wxloop.adapters.wechat", fake)
    code, out, _ = run(capsys, "menu", "push", MENU, "--app", "wx1234567890abcdef")
    assert code == 0 and "published" in out
    assert calls == [rulesfile.load_menu_model(MENU)[0].to_wechat_json()]
    assert calls[0]["button"][2]["sub_button"][0] == {"type": "click", "name": "关于我们", "key": "ABOUT_US"}


def test_given_wechat_refuses_the_menu_when_pushed_then_exit_1(capsys, monkeypatch):
    class Refusing:
        def create(self, body):
            raise RuntimeError("40018 invalid button name size")

    fake = types.ModuleType("wxloop.adapters.wechat")
    fake.api_client = lambda app_id: types.SimpleNamespace(menu=Refusing())
    monkeypatch.setitem(sys.modules, "wxloop.adapters.wechat", fake)
    code, _, err = run(capsys, "menu", "push", MENU, "--app", "wx1234567890abcdef")
    assert code == 1 and "40018" in err


def test_given_an_invalid_menu_when_pushed_then_nothing_is_posted(capsys, monkeypatch, tmp_path):
    fake = types.ModuleType("wxloop.adapters.wechat")
    fake.api_client = lambda app_id: pytest.fail("must not call WeChat")
    monkeypatch.setitem(sys.modules, "wxloop.adapters.wechat", fake)
    path = write(tmp_path, "menu:\n  button: []\n", "menu.yaml")
    assert run(capsys, "menu", "push", path, "--app", "wx1234567890abcdef")[0] == 2


def test_the_default_app_is_the_only_official_account_of_the_validated_config(monkeypatch):
    from tests.conftest import OA_APP
    from wxloop import cli

    assert cli._default_app() is None  # the test config holds two Official Accounts
    monkeypatch.setenv("WECHAT_ACCOUNTS", json.dumps({"accounts": {OA_APP: {"kind": "oa", "token": "tok"}}}))
    assert cli._default_app() == OA_APP
    monkeypatch.setenv("WECHAT_ACCOUNTS", json.dumps({"accounts": {OA_APP: {"kind": "oa", "tokn": "tok"}}}))
    assert cli._default_app() is None  # an invalid config names no account


def test_rules_test_shows_the_variant_a_person_gets_always_the_same(capsys, tmp_path):
    path = tmp_path / "ab.yaml"
    path.write_text('version: "1"\nrules:\n  - id: promo\n    keywords: [优惠]\n    variants:\n'
                    '      short: {weight: 1, reply: {text: "10% off"}}\n'
                    '      long: {weight: 3, reply: {text: "member week"}}\n', encoding="utf-8")
    seen = {}
    for person in [f"o{i}" for i in range(12)]:
        code, out, _ = run(capsys, "rules", "test", str(path), "优惠", "--person", person)
        assert code == 0 and "experiment rule:promo" in out
        variant = out.split("variant: ", 1)[1].split(" ", 1)[0]
        assert run(capsys, "rules", "test", str(path), "优惠", "--person", person)[1] == out, "sticky"
        assert ("10% off" in out) == (variant == "short") and f"{ {'short': 25, 'long': 75}[variant]}% of people" in out
        seen[person] = variant
    assert set(seen.values()) == {"short", "long"}
