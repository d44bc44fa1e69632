"""The one error a rule-set document raises when it is invalid."""

from __future__ import annotations


class RuleError(ValueError):
    """A rule-set document is invalid. ``path`` locates the field (``rules[3].keywords[0]``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message

