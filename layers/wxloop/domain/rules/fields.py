"""Field checks shared by the rule-set parsers: each raises :class:`RuleError` naming the field's path."""

from __future__ import annotations

import re
from collections.abc import Mapping

from wxloop.domain.rules.errors import RuleError

_APP_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def no_unknown(raw: Mapping[str, object], allowed: set[str], path: str) -> None:
    """Refuse a key of ``raw`` that is not in ``allowed``."""
    for key in raw:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise RuleError(where, f"unknown field {key!r} (allowed: {', '.join(sorted(allowed))})")


def string(raw: object, path: str, *, required: bool = True, max_len: int = 4096) -> str:
    """``raw`` as a string of at most ``max_len`` characters; "" when absent and not ``required``."""
    if raw is None:
        if required:
            raise RuleError(path, "is required")
        return ""
    if not isinstance(raw, str):
        raise RuleError(path, f"must be a string, not {type(raw).__name__}")
    if required and not raw.strip():
        raise RuleError(path, "must not be empty")
    if len(raw) > max_len:
        raise RuleError(path, f"longer than {max_len} characters")
    return raw


def app_id(raw: object, path: str) -> str:
    """``raw`` as a WeChat app id."""
    value = string(raw, path, max_len=64)
    if not _APP_ID_RE.match(value):
        raise RuleError(path, f"{value!r} is not an app id")
    return value
