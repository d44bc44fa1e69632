"""Reading operator config documents (reward and campaign YAML) field by field, with paths in errors.

Every reader takes the value and its path (``campaigns[2].caps.per_day``) and raises :class:`ConfigError`
with that path, which the file loaders turn into ``file:line``. Unknown keys are refused so typos surface.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST since 1991: a fixed offset is exact
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,23}")  # ids that go into keys, refs and codes
DATA_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
# WeChat's subscribe message value limits by data key kind (thing1 ≤ 20 characters, and so on).
SUBSCRIBE_VALUE_MAX = {"thing": 20, "number": 32, "letter": 32, "symbol": 5, "character_string": 32,
                       "phone_number": 17, "car_number": 8, "name": 10, "phrase": 5, "amount": 32}


class ConfigError(ValueError):
    """An invalid config document. ``path`` locates the field (``campaigns[0].segment.points.min``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def mapping(value: object, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """``value`` as a mapping with only ``allowed`` keys and every ``required`` one."""
    if not isinstance(value, Mapping):
        raise ConfigError(path, "must be a mapping")
    for key in value:
        if key not in allowed:
            raise ConfigError(join(path, str(key)), f"unknown field (allowed: {', '.join(allowed)})")
    for key in required:
        if key not in value:
            raise ConfigError(join(path, key), "is required")
    return dict(value)


def string_map(value: object, path: str, *, max_items: int = 20) -> dict[str, Any]:
    """A free-form mapping (template data, preferences) whose keys are identifiers."""
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(path, "must be a non-empty mapping")
    if len(value) > max_items:
        raise ConfigError(path, f"has more than {max_items} fields")
    for key in value:
        if not isinstance(key, str) or not DATA_KEY.fullmatch(key):
            raise ConfigError(join(path, str(key)), f"field names must match {DATA_KEY.pattern}")
    return dict(value)


def template_data(value: object, path: str, *, subscribe: bool) -> dict[str, str]:
    """Template message data ``{key: text}``; for MP subscribe messages each value is held to WeChat's limit
    for its key's kind (``thing1`` ≤ 20 characters, ``phrase3`` ≤ 5, …)."""
    out: dict[str, str] = {}
    for key, v in string_map(value, path).items():
        limit = SUBSCRIBE_VALUE_MAX.get(key.rstrip("0123456789"), 200) if subscribe else 200
        out[key] = text(v, join(path, key), max_len=limit)
    return out


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def text(value: object, path: str, *, max_len: int = 200, pattern: re.Pattern[str] | None = None) -> str:
    """A non-empty string of at most ``max_len`` characters, matching ``pattern`` in full when given."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(path, "must be a non-empty string")
    if len(value) > max_len:
        raise ConfigError(path, f"is longer than {max_len} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise ConfigError(path, f"must match {pattern.pattern}")
    return value


def integer(value: object, path: str, *, low: int = 0, high: int = 10**9) -> int:
    """An integer in ``[low, high]`` (booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(path, "must be an integer")
    if not low <= value <= high:
        raise ConfigError(path, f"must be between {low} and {high}")
    return value


def number(value: object, path: str, *, low: float = 0.0, high: float = 1e9) -> float:
    """A number in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(path, "must be a number")
    if not low <= value <= high:
        raise ConfigError(path, f"must be between {low} and {high}")
    return float(value)


def flag(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(path, "must be true or false")
    return value


def choice(value: object, path: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ConfigError(path, f"must be one of: {', '.join(options)}")
    return str(value)


def items(value: object, path: str, *, max_items: int = 100) -> list[Any]:
    """A non-empty list of at most ``max_items`` items."""
    if not isinstance(value, list) or not value:
        raise ConfigError(path, "must be a non-empty list")
    if len(value) > max_items:
        raise ConfigError(path, f"has more than {max_items} items")
    return value


def unique_ids(ids: list[str], path: str) -> None:
    """Refuses a list whose ``id`` fields repeat, naming the second one."""
    seen: set[str] = set()
    for i, id_ in enumerate(ids):
        if id_ in seen:
            raise ConfigError(f"{path}[{i}].id", f"duplicate campaign id {id_!r}")
        seen.add(id_)


def moment(value: object, path: str) -> int:
    """An ISO date-time (read as Asia/Shanghai without an offset; a bare date is its midnight) as epoch
    seconds. YAML may give a ``date`` or ``datetime`` already."""
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ConfigError(path, "must be an ISO date-time such as 2026-12-01T10:00:00+08:00") from None
    if not isinstance(value, datetime):
        raise ConfigError(path, "must be an ISO date-time such as 2026-12-01T10:00:00+08:00")
    if value.tzinfo is None:
        value = value.replace(tzinfo=SHANGHAI)
    return int(value.timestamp())


def hour_span(value: object, path: str) -> tuple[int, int]:
    """``"HH-HH"`` (whole hours, Asia/Shanghai; end exclusive; may cross midnight; "00-24" is the whole day)
    as (start, end % 24)."""
    match = re.fullmatch(r"(\d{1,2})(?::00)?-(\d{1,2})(?::00)?", value) if isinstance(value, str) else None
    if match is None:
        raise ConfigError(path, 'must be whole hours such as "09-21" or "22:00-08:00"')
    start, end = int(match[1]), int(match[2])
    if start > 23 or end > 24 or start == end:
        raise ConfigError(path, "hours must be 0-24 and the span not empty")
    return start, end % 24


def span_hours(start: int, end: int) -> frozenset[int]:
    """The hours of day covered by the span ``[start, end)`` (wrapping past midnight)."""
    return frozenset((start + i) % 24 for i in range((end - start) % 24 or 24))


def shanghai_hour(ts: int) -> int:
    """The hour of day in Asia/Shanghai of the epoch second ``ts``."""
    return ((ts + 8 * 3600) // 3600) % 24
