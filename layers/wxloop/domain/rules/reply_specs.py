"""Reply specs in a rule file → ``Reply``: one parser per spec kind, in one table (``SPEC_KINDS``).

The spec kinds are the reply kinds of ``wxloop.domain.replies.REPLY_KINDS`` plus ``mp_link``, a text reply
holding a link that opens a Mini Program page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from wxloop.domain.replies import TEXT_LIMIT_BYTES, Article, Reply, mp_link
from wxloop.domain.rules.errors import RuleError
from wxloop.domain.rules.fields import app_id, no_unknown, string
from wxloop.domain.rules.templates import PLACEHOLDER_RE, check_template

_URL_RE = re.compile(r"^https?://")


def parse_reply(raw: object, path: str) -> tuple[Reply, dict[str, Any]]:
    """A reply spec from YAML → (``Reply``, canonical spec); raises :class:`RuleError`."""
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise RuleError(path, f"a mapping with exactly one of: {', '.join(SPEC_KINDS)}")
    ((kind, body),) = raw.items()
    parser = SPEC_KINDS.get(kind)
    if parser is None:
        raise RuleError(path, f"unknown reply kind {kind!r} (one of: {', '.join(SPEC_KINDS)})")
    reply, spec = parser(body, f"{path}.{kind}")
    return reply, {kind: spec}


def _fields(raw: object, path: str, required: Iterable[str], optional: Iterable[str]) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise RuleError(path, f"a mapping with {', '.join(required)}")
    required, optional = list(required), list(optional)
    no_unknown(raw, set(required) | set(optional), path)
    out = {}
    for name in required:
        out[name] = string(raw.get(name), f"{path}.{name}")
    for name in optional:
        if raw.get(name) is not None:
            out[name] = string(raw.get(name), f"{path}.{name}", required=False)
    for name, value in out.items():
        check_template(value, f"{path}.{name}")
    return out


def _check_url(value: str, path: str) -> None:
    if value and not value.startswith("{") and not _URL_RE.match(value):
        raise RuleError(path, "must start with http:// or https://")


def _check_text_size(content: str, path: str) -> None:
    static = PLACEHOLDER_RE.sub("", content)
    size = len(static.encode("utf-8"))
    if size > TEXT_LIMIT_BYTES:
        raise RuleError(path, f"text is {size} bytes; WeChat's limit is about {TEXT_LIMIT_BYTES}")


def _text(body: object, where: str) -> tuple[Reply, object]:
    content = string(body, where, max_len=8192)
    check_template(content, where)
    _check_text_size(content, where)
    return Reply(kind="text", content=content), content


def _media(kind: str) -> Callable[[object, str], tuple[Reply, object]]:
    def parse(body: object, where: str) -> tuple[Reply, object]:
        media_id = string(body, where, max_len=256)
        return Reply(kind=kind, media_id=media_id), media_id

    return parse


def _video(body: object, where: str) -> tuple[Reply, object]:
    f = _fields(body, where, ["media_id"], ["title", "description"])
    return Reply(kind="video", media_id=f["media_id"], title=f.get("title", ""),
                 description=f.get("description", "")), f


def _music(body: object, where: str) -> tuple[Reply, object]:
    f = _fields(body, where, ["thumb_media_id"], ["title", "description", "music_url", "hq_music_url"])
    for name in ("music_url", "hq_music_url"):
        _check_url(f.get(name, ""), f"{where}.{name}")
    return Reply(kind="music", thumb_media_id=f["thumb_media_id"], title=f.get("title", ""),
                 description=f.get("description", ""), music_url=f.get("music_url", ""),
                 hq_music_url=f.get("hq_music_url", "")), f


def _news(body: object, where: str) -> tuple[Reply, object]:
    if isinstance(body, list):
        if len(body) != 1:
            raise RuleError(where, "exactly one article per reply (WeChat refuses more)")
        body = body[0]
    f = _fields(body, where, ["title", "url"], ["description", "image"])
    _check_url(f["url"], f"{where}.url")
    _check_url(f.get("image", ""), f"{where}.image")
    article = Article(title=f["title"], description=f.get("description", ""), url=f["url"], image=f.get("image", ""))
    return Reply(kind="news", articles=(article,)), f


def _mp_card(body: object, where: str) -> tuple[Reply, object]:
    f = _fields(body, where, ["title", "appid", "pagepath", "thumb_media_id"], ["text"])
    app_id(f["appid"], f"{where}.appid")
    if "text" in f:
        _check_text_size(f["text"], f"{where}.text")
    return Reply(kind="mp_card", title=f["title"], appid=f["appid"], pagepath=f["pagepath"],
                 thumb_media_id=f["thumb_media_id"], content=f.get("text", "")), f


def _mp_link(body: object, where: str) -> tuple[Reply, object]:
    if not isinstance(body, Mapping):
        raise RuleError(where, "a mapping with appid, path, label and optional text")
    no_unknown(body, {"appid", "path", "label", "text"}, where)
    appid = app_id(body.get("appid"), f"{where}.appid")
    page = string(body.get("path"), f"{where}.path", max_len=1024)
    label = string(body.get("label"), f"{where}.label", max_len=256)
    template = string(body.get("text", "{link}"), f"{where}.text", max_len=8192)
    if "{link}" not in template:
        raise RuleError(f"{where}.text", "must contain {link} where the link goes")
    check_template(page, f"{where}.path")
    check_template(label, f"{where}.label")
    content = template.replace("{link}", mp_link(appid, page, label))
    check_template(content, f"{where}.text")
    _check_text_size(content, f"{where}.text")
    spec = {"appid": appid, "path": page, "label": label}
    if "text" in body:
        spec["text"] = template
    return Reply(kind="text", content=content), spec


def _transfer(body: object, where: str) -> tuple[Reply, object]:
    if body not in (True, None, {}):
        raise RuleError(where, "true (or an empty mapping): the conversation goes to customer-service staff")
    return Reply(kind="transfer_customer_service"), True


# The one table of reply spec kinds (order: how errors list them).
SPEC_KINDS: dict[str, Callable[[object, str], tuple[Reply, object]]] = {
    "text": _text,
    "image": _media("image"),
    "voice": _media("voice"),
    "video": _video,
    "music": _music,
    "news": _news,
    "mp_card": _mp_card,
    "mp_link": _mp_link,
    "transfer_customer_service": _transfer,
}
