"""Reachability: which customer-service window lets wxloop message a person now (pure; no I/O).

WeChat's rules for an Official Account (a Mini Program's are the same shape):
- a message from the person opens a window of 48 hours for up to 5 customer-service messages;
- a menu click, scancode push, follow or QR scan opens a window of 1 minute for up to 3.
Outside both, a send fails with 45015; over a cap with 45047. The identity item keeps, per window, when it
opened (``win_msg_at`` / ``win_evt_at``) and how many messages it has carried (``win_*_sent``); the webhook
opens them, the worker spends them (``repository.spend_cs_window``) before each send.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Window:
    name: str  # the attribute infix: win_{name}_at, win_{name}_sent
    seconds: int
    cap: int


SHORT = Window("evt", 60, 3)
MESSAGE = Window("msg", 48 * 3600, 5)
WINDOWS = (SHORT, MESSAGE)  # the one that closes first is spent first
# A Mini Program: 2 messages within 1 minute of entering the session, 5 within 48 hours of a message.
MP_SHORT = Window("evt", 60, 2)
MP_WINDOWS = (MP_SHORT, MESSAGE)


@dataclass(frozen=True, slots=True)
class OpenWindow:
    window: Window
    opened_at: int
    sent: int

    @property
    def left(self) -> int:
        return self.window.cap - self.sent


def open_cs_windows(
    identity: Mapping[str, object] | None, now: int, windows: tuple[Window, ...] = WINDOWS
) -> list[OpenWindow]:
    """The windows still open at ``now`` with messages left, the one closing first first. A window opened
    after ``now`` (by a push recorded since the caller read its clock, or by a webhook whose clock is ahead)
    is open. ``windows`` defaults to the Official Account's; a Mini Program passes ``MP_WINDOWS``."""
    out: list[OpenWindow] = []
    for window in windows:
        opened = _int((identity or {}).get(f"win_{window.name}_at"))
        sent = _int((identity or {}).get(f"win_{window.name}_sent"))
        if opened and now < opened + window.seconds and sent < window.cap:
            out.append(OpenWindow(window, opened, sent))
    return sorted(out, key=lambda w: w.opened_at + w.window.seconds)


def _int(value: object) -> int:
    try:
        number: int = int(value or 0)  # type: ignore[call-overload]
        return number
    except (TypeError, ValueError):
        return 0
