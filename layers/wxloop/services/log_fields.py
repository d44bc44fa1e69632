"""What a log line may say about a failure."""

from __future__ import annotations

from typing import Any


def error_fields(exc: BaseException) -> dict[str, Any]:
    """The failure's type and, when it has one, WeChat's ``errcode``. Never ``str(exc)``: an exception's
    text can carry values of a job or a request (openids, keys, bodies, phone numbers)."""
    fields: dict[str, Any] = {"error": type(exc).__name__}
    code = getattr(exc, "errcode", None)
    if isinstance(code, int) and not isinstance(code, bool):
        fields["errcode"] = code
    return fields
