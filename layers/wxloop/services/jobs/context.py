"""What a kind's function gets besides its record: the run's clock, the job as queued, WeChat's client."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def wechat_client(app_id: str) -> Any:
    """The container's WeChat API client for ``app_id`` (``wxloop.adapters.wechat.WxClient``)."""
    from wxloop.adapters import wechat  # requests + wechatpy: only when a job calls WeChat

    return wechat.api_client(app_id)


@dataclass(frozen=True, slots=True)
class JobContext:
    now: int
    raw: Mapping[str, Any]  # the job exactly as queued (for services that take the mapping)

    def wechat(self, app_id: str) -> Any:
        """WeChat's API client for ``app_id``; resolved at call time so tests can watch the calls."""
        return wechat_client(app_id)
