"""Reply templates: ``{name}`` and ``{name|fallback}`` placeholders, checked when a file is loaded and filled
per message by :func:`render`. ``{{`` and ``}}`` are literal braces; nothing else is ever interpreted: no
attribute or index access, no conversion, no format spec. Which fields of which reply kinds are templates,
and how a value placed in each is escaped, comes from ``wxloop.domain.replies.REPLY_KINDS``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from wxloop.domain.replies import (
    ARTICLE_TEMPLATES,
    REPLY_KINDS,
    TEXT_LIMIT_BYTES,
    Reply,
    truncate_utf8,
)
from wxloop.domain.rules.errors import RuleError

PLACEHOLDER_VALUE_MAX = 512
ELLIPSIS = "…"

_NAME = r"[A-Za-z][A-Za-z0-9_]{0,63}"
PLACEHOLDER_RE = re.compile(r"\{\{|\}\}|\{(" + _NAME + r")(?:\|([^{}]{0,200}))?\}")
_BRACE_TOKEN_RE = re.compile(r"\{\{|\}\}|\{[^{}]*\}|[{}]")
_VALID_PLACEHOLDER_RE = re.compile(r"^\{" + _NAME + r"(?:\|[^{}]{0,200})?\}$")
_ANCHOR_OPEN_RE = re.compile(r"<a[\s>]", re.IGNORECASE)
# A query parameter whose whole value is one placeholder without a fallback: dropped when the value is missing.
_PARAM_RE = re.compile(r"([?&])[^?&=#\"'<>\s{}]+=\{(" + _NAME + r")\}(?=[&#\"']|$)")
_TAG_RE = re.compile(r"(<[^<>]*>)")  # a tag of a text reply: its attributes hold URLs and page paths
# Substituted values cannot open or close markup in a text reply (an injected <a> would link anywhere).
_CONTENT_SAFE = str.maketrans({"<": "＜", ">": "＞", '"': "＂"})


def placeholders_in(template: str) -> frozenset[str]:
    """The placeholder names a template uses (``{name}`` or ``{name|fallback}``)."""
    if "{" not in template:
        return frozenset()
    return frozenset(m.group(1) for m in PLACEHOLDER_RE.finditer(template) if m.group(1))


def check_template(template: str, path: str) -> None:
    """Refuse anything in braces but ``{name}``, ``{name|fallback}``, ``{{`` and ``}}``."""
    if "{" not in template and "}" not in template:
        return
    for m in _BRACE_TOKEN_RE.finditer(template):
        token = m.group(0)
        if token in ("{{", "}}") or _VALID_PLACEHOLDER_RE.match(token):
            continue
        raise RuleError(
            path,
            f"invalid placeholder {token!r}: use {{name}} or {{name|fallback}} (letters, digits, _), "
            "and {{ or }} for a literal brace",
        )


def encode_url_value(value: str) -> str:
    """A value placed in a URL or a page path: percent-encoded, so it cannot add parameters, a fragment or
    path segments (``a b&c=d/#?`` → ``a%20b%26c%3Dd%2F%23%3F``)."""
    return quote(value, safe="")


def _fill(template: str, values: Mapping[str, object], mode: str) -> str:
    if "{" not in template and "}" not in template:
        return template
    if mode == "text" and "<" in template:
        # Inside a tag (<a href=…>, <a data-miniprogram-path=…>) a value is part of a URL or page path.
        parts = _TAG_RE.split(template)
        return "".join(_fill(part, values, "url" if n % 2 else "text") for n, part in enumerate(parts))
    if mode == "url":
        template = _drop_missing_params(template, values)

    def sub(m: re.Match[str]) -> str:
        whole: str = m.group(0)
        if whole == "{{":
            return "{"
        if whole == "}}":
            return "}"
        value = _lookup(values, m.group(1))
        if value == "":
            return m.group(2) or ""  # the fallback is operator-written: no escaping
        if mode == "url":
            return encode_url_value(value)
        if mode == "text":
            return value.translate(_CONTENT_SAFE)
        return value

    return PLACEHOLDER_RE.sub(sub, template)


def _drop_missing_params(template: str, values: Mapping[str, object]) -> str:
    """``?code={invite_code}`` with no ``invite_code`` → the parameter is left out, not sent empty."""
    if "=" not in template:
        return template
    dropped = False

    def sub(m: re.Match[str]) -> str:
        nonlocal dropped
        if _lookup(values, m.group(2)) != "":
            return str(m.group(0))
        dropped = True
        return ""

    out = _PARAM_RE.sub(sub, template)
    if not dropped:
        return out
    # the first parameter went with its "?": the next one, if any, now starts the query
    if "?" in out.split("#", 1)[0]:
        return out
    return re.sub(r"^([^?#&]*)&(?:amp;)?", r"\1?", out, count=1)  # in a tag's attribute "&" is "&amp;"


# What XML 1.0 does not allow (C0 controls but tab/newline/CR, U+FFFE/FFFF) and lone surrogates: a value
# carrying one would make the reply XML invalid or fail to encode, so it is dropped from the value.
_NOT_XML_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _lookup(values: Mapping[str, object], name: str) -> str:
    """The placeholder's value as text safe in XML (see ``_NOT_XML_RE``), at most PLACEHOLDER_VALUE_MAX."""
    try:
        value = values.get(name)
        if value is None or isinstance(value, bool):
            return "" if value is None else ("1" if value else "0")
        text = value if isinstance(value, str) else str(value)
    except Exception:  # a hostile mapping or __str__ must not break the reply
        return ""
    if not text.isascii() or not text.isprintable():
        text = _NOT_XML_RE.sub("", text)
    return text[:PLACEHOLDER_VALUE_MAX]


def cut_text(content: str, limit: int = TEXT_LIMIT_BYTES) -> str:
    """Cut text to ``limit`` UTF-8 bytes like ``truncate_utf8``, but never inside an ``<a …>…</a>`` link
    or any other tag: a link the cut would split is dropped whole."""
    if len(content) * 4 <= limit or len(content.encode("utf-8")) <= limit:
        return content
    body = truncate_utf8(content, limit, ELLIPSIS)[: -len(ELLIPSIS)]
    last_open = None
    for m in _ANCHOR_OPEN_RE.finditer(body):
        last_open = m.start()
    if last_open is not None and body.lower().find("</a>", last_open) == -1:
        body = body[:last_open]
    lt = body.rfind("<")
    if lt != -1 and body.find(">", lt) == -1:
        body = body[:lt]
    return body.rstrip() + ELLIPSIS


def render(reply: Reply, values: Mapping[str, object]) -> Reply:
    """``reply`` with its ``{placeholders}`` filled from ``values``; never raises.

    Only ``{name}`` and ``{name|fallback}`` are filled (a missing, None or empty value gives the fallback or
    ""); anything else in braces stays as written; nothing is looked up on objects. Values put into text are
    stripped of markup characters, values put into URLs and page paths are percent-encoded. Text is then cut
    to WeChat's limit without splitting a link.
    """
    try:
        kind = REPLY_KINDS.get(reply.kind)
        if kind is None:
            return reply
        changes: dict[str, Any] = {}
        for name, mode in kind.templates:
            old = getattr(reply, name)
            new = _fill(old, values, mode)
            if name == "content":
                new = cut_text(new)
            if new != old:
                changes[name] = new
        if kind.articles and reply.articles:
            articles = tuple(
                replace(a, **{name: _fill(getattr(a, name), values, mode) for name, mode in ARTICLE_TEMPLATES})
                for a in reply.articles
            )
            if articles != reply.articles:
                changes["articles"] = articles
        return replace(reply, **changes) if changes else reply
    except Exception:  # defensive: rendering is on the webhook's critical path
        return reply


def reply_needs(reply: Reply) -> frozenset[str]:
    """The placeholder names ``reply`` uses (empty: it can be sent without reading the person)."""
    kind = REPLY_KINDS.get(reply.kind)
    if kind is None:
        return frozenset()
    names: set[str] = set()
    for name, _ in kind.templates:
        names |= placeholders_in(getattr(reply, name))
    if kind.articles:
        for article in reply.articles:
            for name, _ in ARTICLE_TEMPLATES:
                names |= placeholders_in(getattr(article, name))
    return frozenset(names)

