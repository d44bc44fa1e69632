"""Process settings from the environment, read once per container."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Settings:
    clock_skew_seconds: int
    push_budget_seconds: float
    journey_retention_days: int
    wechat_api_base: str


def number(name: str, default: str, kind=int):
    """The environment variable ``name`` as a non-negative number (``default`` when unset or empty); a
    malformed value raises naming the variable."""
    raw = os.environ.get(name) or default
    try:
        value = kind(raw)
    except ValueError:
        raise RuntimeError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise RuntimeError(f"{name} must not be negative")
    return value


@lru_cache(maxsize=1)
def settings() -> Settings:
    """Parsed settings; a malformed value fails at start naming the variable."""
    return Settings(
        clock_skew_seconds=number("WECHAT_CLOCK_SKEW_SECONDS", "300"),
        push_budget_seconds=number("PUSH_BUDGET_SECONDS", "4.0", float),
        journey_retention_days=number("JOURNEY_RETENTION_DAYS", "180"),
        wechat_api_base=os.environ.get("WECHAT_API_BASE", "https://api.weixin.qq.com").rstrip("/"),
    )
