"""The API's errors: one JSON shape ``{"error": {"code", "message"}}`` with a stable code per status."""

from __future__ import annotations

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict",
         413: "too_large", 422: "invalid", 429: "rate_limited", 500: "internal", 503: "unavailable"}


class ApiError(Exception):
    """An answer other than 200. ``code`` defaults to the status's stable code; ``message`` is for people
    and never holds personal data or internals."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


def error_body(status: int, message: str, code: str | None = None) -> dict:
    return ApiError(status, message, code).body()
