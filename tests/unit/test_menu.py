"""Menu as code: WeChat's menu/create shape, validated before it is posted."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from wxloop.domain.menu import Menu, MenuError

REPO = Path(__file__).resolve().parents[2]
MP = "wxabcdef1234567890"


def click(name="关于", key="ABOUT") -> dict:
    return {"type": "click", "name": name, "key": key}


def menu_of(*buttons) -> dict:
    return {"menu": {"button": list(buttons)}}


def error_path(doc) -> str:
    with pytest.raises(MenuError) as err:
        Menu.from_doc(doc)
    return err.value.path


def test_given_the_example_menu_when_validated_then_it_posts_wechats_own_json_shape():
    doc = yaml.safe_load((REPO / "rules" / "menu.yaml").read_text(encoding="utf-8"))
    menu = Menu.from_doc(doc)
    assert menu.to_wechat_json() == doc["menu"]
    assert menu.click_keys() == ["ABOUT_US", "CONTACT"]


def test_given_every_button_type_when_validated_then_required_fields_are_kept_in_the_json():
    doc = menu_of(
        click("点我", "K1"),
        {"name": "更多", "sub_button": [
            {"type": "view", "name": "官网", "url": "https://example.com"},
            {"type": "miniprogram", "name": "商城", "appid": MP, "pagepath": "pages/index/index",
             "url": "https://example.com/fallback"},
            {"type": "scancode_push", "name": "扫码", "key": "SCAN"},
            {"type": "media_id", "name": "图片", "media_id": "MEDIA"},
            {"type": "article_id", "name": "文章", "article_id": "ART"},
        ]},
    )
    out = Menu.from_doc(doc).to_wechat_json()
    assert out == doc["menu"]
    assert Menu.from_doc(doc["menu"]).to_wechat_json() == out  # the bare {"button": [...]} form too
    assert Menu.from_doc(doc).click_keys() == ["K1"]  # only click buttons push a CLICK event


def test_given_too_many_buttons_when_validated_then_it_is_refused():
    assert error_path(menu_of(*(click(f"b{i}", f"K{i}") for i in range(4)))) == "menu.button"
    assert error_path(menu_of()) == "menu.button"
    subs = [click(f"s{i}", f"K{i}") for i in range(6)]
    assert error_path(menu_of({"name": "更多", "sub_button": subs})) == "menu.button[0].sub_button"
    assert error_path(menu_of({"name": "更多", "sub_button": []})) == "menu.button[0].sub_button"


def test_given_names_at_and_over_the_byte_limits_when_validated_then_only_the_longer_ones_are_refused():
    Menu.from_doc(menu_of(click("一二三四五", "K")))  # 15 bytes
    Menu.from_doc(menu_of(click("x" * 16, "K")))
    assert error_path(menu_of(click("一二三四五六", "K"))) == "menu.button[0].name"  # 18 bytes
    Menu.from_doc(menu_of({"name": "m", "sub_button": [click("字" * 20, "K")]}))  # 60 bytes
    assert error_path(menu_of({"name": "m", "sub_button": [click("字" * 20 + "x", "K")]})) == \
        "menu.button[0].sub_button[0].name"


def test_given_keys_and_urls_over_their_limits_when_validated_then_they_are_refused():
    Menu.from_doc(menu_of(click("k", "K" * 128)))
    assert error_path(menu_of(click("k", "K" * 129))) == "menu.button[0].key"
    url = "https://example.com/" + "a" * (1024 - 20)
    Menu.from_doc(menu_of({"type": "view", "name": "v", "url": url}))
    assert error_path(menu_of({"type": "view", "name": "v", "url": url + "a"})) == "menu.button[0].url"
    assert error_path(menu_of({"type": "view", "name": "v", "url": "javascript:alert(1)"})) == "menu.button[0].url"


@pytest.mark.parametrize(
    ("button", "path"),
    [
        ({"type": "click", "name": "c"}, "menu.button[0].key"),
        ({"type": "view", "name": "v"}, "menu.button[0].url"),
        ({"type": "miniprogram", "name": "m", "appid": MP, "pagepath": "p"}, "menu.button[0].url"),
        ({"type": "miniprogram", "name": "m", "pagepath": "p", "url": "https://x.cn"}, "menu.button[0].appid"),
        ({"type": "view", "name": "v", "url": "https://x.cn", "key": "K"}, "menu.button[0].key"),
        ({"type": "teleport", "name": "t"}, "menu.button[0].type"),
        ({"name": "no type"}, "menu.button[0].type"),
        ({"type": "click", "key": "K"}, "menu.button[0].name"),
        ({"type": "click", "name": "c", "key": "K", "colour": "red"}, "menu.button[0].colour"),
        ({"type": "click", "name": "   ", "key": "K"}, "menu.button[0].name"),
        ({"type": "click", "name": "g", "key": "K", "sub_button": [click()]}, "menu.button[0]"),
        ({"name": "g", "sub_button": [{"name": "s", "sub_button": [click()]}]}, "menu.button[0].sub_button[0].sub_button"),
    ],
)
def test_given_a_button_missing_or_misusing_fields_when_validated_then_the_error_names_the_field(button, path):
    assert error_path(menu_of(button)) == path


def test_given_a_document_with_stray_top_level_fields_when_validated_then_it_is_refused():
    assert error_path({"menu": {"button": [click()]}, "rules": []}) == "rules"
    assert error_path({"menu": {"button": [click()], "matchrule": {}}}) == "menu.matchrule"
    assert error_path(["not", "a", "mapping"]) == ""


def test_given_a_valid_menu_when_serialised_then_the_input_document_is_not_modified():
    doc = menu_of(click())
    before = copy.deepcopy(doc)
    Menu.from_doc(doc).to_wechat_json()
    assert doc == before
