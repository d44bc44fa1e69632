"""Phone numbers are PII: how one is shown everywhere but the person's own export (pure)."""

from __future__ import annotations

import re
from typing import TypeGuard

_DIGITS = re.compile(r"^\+?[0-9]{5,20}$")


def is_phone(value: object) -> TypeGuard[str]:
    """A number as WeChat's ``phone_info`` gives it: optional ``+``, then 5-20 digits."""
    return isinstance(value, str) and bool(_DIGITS.match(value))


def mask(phone: str) -> str:
    """``13812341234`` → ``138****1234``: the first 3 and last 4 digits stay, the middle becomes ``*``. Numbers
    too short for that keep only their last 2 digits. A leading ``+`` (country code) is kept. Anything that
    is not a phone number masks to ``****`` (never echoed)."""
    if not is_phone(phone):
        return "****"
    plus, digits = ("+", phone[1:]) if phone.startswith("+") else ("", phone)
    if len(digits) >= 11:
        return plus + digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    return plus + "*" * (len(digits) - 2) + digits[-2:]


def sealed_phone_aad(uid: str) -> str:
    """Associated data of a sealed phone number: it opens only on its own person (re-sealed on a merge)."""
    return f"phone|{uid}"
