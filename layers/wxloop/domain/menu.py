"""Menu as code: an Official Account's custom menu, validated before it is posted to ``menu/create``.

The document has WeChat's own JSON shape, ``{"menu": {"button": [...]}}`` (or just ``{"button": [...]}``):
1–3 top-level buttons, each either an action or a group with 1–5 ``sub_button`` actions. Limits come from
WeChat's ``menu/create`` documentation (button names were 16/40 bytes in older docs, sub-button names are
60 bytes today; change one constant if WeChat changes them). Pure: no HTTP here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_BUTTONS = 3
MAX_SUB_BUTTONS = 5
NAME_MAX_BYTES = 16
SUB_NAME_MAX_BYTES = 60
KEY_MAX_BYTES = 128
URL_MAX_BYTES = 1024

# Button type -> required fields (besides name). Click-like types push an event with the button's key.
BUTTON_TYPES: dict[str, tuple[str, ...]] = {
    "click": ("key",),
    "view": ("url",),
    "miniprogram": ("appid", "pagepath", "url"),  # url: opened by clients too old for mini programs
    "scancode_push": ("key",),
    "scancode_waitmsg": ("key",),
    "pic_sysphoto": ("key",),
    "pic_photo_or_album": ("key",),
    "pic_weixin": ("key",),
    "location_select": ("key",),
    "media_id": ("media_id",),
    "view_limited": ("media_id",),
    "article_id": ("article_id",),
    "article_view_limited": ("article_id",),
}
_FIELDS = ("name", "type", "key", "url", "appid", "pagepath", "media_id", "article_id")


class MenuError(ValueError):
    """An invalid menu document. ``path`` locates the field (``menu.button[1].sub_button[0].url``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class Button:
    name: str
    type: str = ""  # "" for a group of sub buttons
    key: str = ""
    url: str = ""
    appid: str = ""
    pagepath: str = ""
    media_id: str = ""
    article_id: str = ""
    sub_buttons: tuple[Button, ...] = ()

    def to_wechat_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.type:
            out["type"] = self.type
        out["name"] = self.name
        for name in _FIELDS[2:]:
            value = getattr(self, name)
            if value:
                out[name] = value
        if self.sub_buttons:
            out["sub_button"] = [b.to_wechat_json() for b in self.sub_buttons]
        return out


@dataclass(frozen=True, slots=True)
class Menu:
    buttons: tuple[Button, ...]

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Menu:
        """Validate a menu document; raises :class:`MenuError` naming the offending path."""
        if not isinstance(doc, Mapping):
            raise MenuError("", "a menu file is a mapping with menu: {button: [...]}")
        base = ""
        if "menu" in doc:
            extra = set(doc) - {"menu"}
            if extra:
                raise MenuError(sorted(extra)[0], "unknown field (a menu file holds only menu)")
            doc, base = doc["menu"], "menu"
            if not isinstance(doc, Mapping):
                raise MenuError(base, "must be a mapping with button: [...]")
        for key in doc:
            if key != "button":
                raise MenuError(_join(base, str(key)), "unknown field (allowed: button)")
        path = _join(base, "button")
        buttons = doc.get("button")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_BUTTONS:
            raise MenuError(path, f"1 to {MAX_BUTTONS} top-level buttons")
        return cls(tuple(_button(b, f"{path}[{i}]", top=True) for i, b in enumerate(buttons)))

    def to_wechat_json(self) -> dict[str, Any]:
        """The body for ``POST /cgi-bin/menu/create``."""
        return {"button": [b.to_wechat_json() for b in self.buttons]}

    def click_keys(self) -> list[str]:
        """Keys of every ``click`` button: the EventKeys that ``click`` rules answer."""
        out = []
        for b in self.buttons:
            for leaf in b.sub_buttons or (b,):
                if leaf.type == "click":
                    out.append(leaf.key)
        return out


def _join(base: str, name: str) -> str:
    return f"{base}.{name}" if base else name


def _bytes(value: str) -> int:
    return len(value.encode("utf-8"))


def _button(raw: object, path: str, *, top: bool) -> Button:
    if not isinstance(raw, Mapping):
        raise MenuError(path, "a button is a mapping with name and type")
    values = _string_fields(raw, path, top=top)
    name = values.get("name", "")
    if not name:
        raise MenuError(f"{path}.name", "is required")
    limit = NAME_MAX_BYTES if top else SUB_NAME_MAX_BYTES
    if _bytes(name) > limit:
        raise MenuError(f"{path}.name", f"{_bytes(name)} bytes; at most {limit} (UTF-8, a Chinese character is 3)")

    if "sub_button" in raw:
        subs = raw["sub_button"]
        if "type" in values or len(values) > 1:
            raise MenuError(path, "a button with sub_button has only a name")
        if not isinstance(subs, list) or not 1 <= len(subs) <= MAX_SUB_BUTTONS:
            raise MenuError(f"{path}.sub_button", f"1 to {MAX_SUB_BUTTONS} sub buttons")
        return Button(name=name, sub_buttons=tuple(
            _button(b, f"{path}.sub_button[{i}]", top=False) for i, b in enumerate(subs)))
    _check_action(values, path)
    return Button(**values)  # type: ignore[arg-type]  # values holds only the str fields checked above


def _string_fields(raw: Mapping[str, object], path: str, *, top: bool) -> dict[str, str]:
    """The button's own fields as non-empty strings (numeric keys and ids as text); refuses unknown ones."""
    allowed = set(_FIELDS) | ({"sub_button"} if top else set())
    for key in raw:
        if key not in allowed:
            hint = " (sub buttons cannot have sub buttons)" if key == "sub_button" else ""
            raise MenuError(f"{path}.{key}", f"unknown field{hint}")
    values: dict[str, str] = {}
    for name in _FIELDS:
        value = raw.get(name)
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool) and name in ("key", "article_id", "media_id"):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise MenuError(f"{path}.{name}", "must be a non-empty string")
        values[name] = value
    return values


def _check_action(values: dict[str, str], path: str) -> None:
    """A leaf button: a known type, exactly its required fields, and each within WeChat's limits."""
    kind = values.get("type")
    if kind not in BUTTON_TYPES:
        raise MenuError(f"{path}.type", f"must be one of {', '.join(BUTTON_TYPES)}, not {kind!r}")
    required = BUTTON_TYPES[kind]
    for field in required:
        if field not in values:
            raise MenuError(f"{path}.{field}", f"is required for a {kind} button")
    for field in values:
        if field not in ("name", "type") and field not in required:
            raise MenuError(f"{path}.{field}", f"does not belong on a {kind} button")
    if "key" in values and _bytes(values["key"]) > KEY_MAX_BYTES:
        raise MenuError(f"{path}.key", f"at most {KEY_MAX_BYTES} bytes")
    if "url" in values:
        if _bytes(values["url"]) > URL_MAX_BYTES:
            raise MenuError(f"{path}.url", f"at most {URL_MAX_BYTES} bytes")
        if not re.match(r"^https?://\S+$", values["url"]):
            raise MenuError(f"{path}.url", "must be an http:// or https:// URL")
    if "appid" in values and not re.match(r"^[A-Za-z0-9_-]{1,64}$", values["appid"]):
        raise MenuError(f"{path}.appid", f"{values['appid']!r} is not an app id")
