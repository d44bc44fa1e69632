"""What the push services need from the outside, as ``typing.Protocol``s: the DynamoDB adapter, the queue
adapter and the clock satisfy them in production; in-memory fakes (``tests/fakes``) in unit tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from wxloop.domain.inbound import Inbound


class TouchResult(Protocol):
    status: str
    uid: str
    stored_reply: str | None


class IdentityStore(Protocol):
    """Records pushes on identities (``wxloop.adapters.dynamo.identities``)."""

    def touch_identity(self, app_id: str, inb: Inbound, *, now: int, event: Mapping, reply: str | None,
                       replay: bool = False, want_uid: bool = False) -> Any: ...

    def create_identity(self, app_id: str, inb: Inbound, *, now: int, event: Mapping, reply: str | None,
                        first_touch: Mapping) -> Any: ...

    def store_reply(self, app_id: str, openid: str, dedupe_key: str, reply: str | None, *,
                    outbox: Mapping | None = None) -> bool: ...

    def leave_outbox(self, app_id: str, openid: str, outbox: Mapping) -> bool: ...


class JobQueue(Protocol):
    """Sends jobs to the worker (``wxloop.adapters.queue``)."""

    def send(self, job: Mapping) -> None: ...

    def send_many(self, jobs: list) -> None: ...


class Clock(Protocol):
    """Wall and monotonic time (the ``time`` module)."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...
