"""DynamoDB plumbing shared by every aggregate: the marshaller, the client, the table name and ONE call
wrapper, so every DynamoDB call either returns or raises a ``RepositoryError`` (never a raw botocore error).

Single table, keys ``pk``/``sk``, GSI ``gsi1pk``/``gsi1sk``, TTL attribute ``ttl`` (README, "Data"). Uses the
low-level botocore client (see ``wxloop.adapters.aws``) with a small marshaller.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, overload

from botocore.exceptions import ClientError

from wxloop.adapters import aws
from wxloop.settings import settings

# Operations that address one table: the wrapper names it, so callers never do.
_SINGLE_TABLE_OPS = frozenset({"get_item", "put_item", "update_item", "delete_item", "query"})


class RepositoryError(RuntimeError):
    """DynamoDB did not accept a write or read (throttled, unavailable, timed out, refused)."""


class ConditionFailed(RepositoryError):
    """A conditional write's condition did not hold. ``item``: the old item when the call asked for it."""

    def __init__(self, message: str, item: dict | None = None):
        super().__init__(message)
        self.item = item


class TransactionCancelled(RepositoryError):
    """A transaction was cancelled; ``reasons`` holds one cancellation code per item (``None`` for none)."""

    def __init__(self, message: str, reasons: list[str | None]):
        super().__init__(message)
        self.reasons = reasons

    def any_of(self, *codes: str) -> bool:
        return any(r in codes for r in self.reasons)


# --- marshalling -------------------------------------------------------------------------------------


def to_attr(value: Any) -> dict:  # noqa: C901 - one branch per DynamoDB type, ordered by frequency
    """One Python value as a DynamoDB attribute value."""
    kind = type(value)
    if kind is str:  # the common cases first: this runs on the hot path
        return {"S": value}
    if kind is int:
        return {"N": str(value)}
    if kind is dict:
        return {"M": {str(k): to_attr(v) for k, v in value.items()}}
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, Decimal)):
        return {"N": str(value)}
    if isinstance(value, float):
        return {"N": repr(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (bytes, bytearray)):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_attr(v) for k, v in value.items()}}
    if isinstance(value, (set, frozenset)):
        if all(isinstance(v, str) for v in value):
            return {"SS": sorted(value)}
        return {"NS": sorted(str(v) for v in value)}
    if isinstance(value, (list, tuple)):
        return {"L": [to_attr(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__}")


def _number(text: str) -> int | float:
    return int(text) if text.lstrip("-").isdigit() else float(text)


def from_attr(attr: Mapping[str, Any]) -> Any:
    """One DynamoDB attribute value as a Python value (numbers as int/float, sets as set)."""
    (tag, value), = attr.items()
    if tag in ("S", "BOOL", "B"):
        return value
    if tag == "N":
        return _number(value)
    if tag == "NULL":
        return None
    if tag == "M":
        return {k: from_attr(v) for k, v in value.items()}
    if tag == "L":
        return [from_attr(v) for v in value]
    if tag == "SS":
        return set(value)
    if tag == "NS":
        return {_number(v) for v in value}
    raise TypeError(f"unknown DynamoDB type {tag}")


def marshal(item: Mapping[str, Any]) -> dict:
    """A plain dict as a DynamoDB item (attribute-value map)."""
    return {k: to_attr(v) for k, v in item.items()}


@overload
def unmarshal(item: Mapping[str, Any]) -> dict: ...
@overload
def unmarshal(item: None) -> None: ...
@overload
def unmarshal(item: Mapping[str, Any] | None) -> dict | None: ...
def unmarshal(item: Mapping[str, Any] | None) -> dict | None:
    """A DynamoDB item as a plain dict (numbers as int/float, sets as set); None for None."""
    if item is None:
        return None
    return {k: from_attr(v) for k, v in item.items()}


# --- the client and the one call wrapper -------------------------------------------------------------


def table_name() -> str:
    name = settings().table_name
    if not name:
        raise RuntimeError("TABLE_NAME is not set")
    return name


def ddb():
    """The shared low-level DynamoDB client (created on first use)."""
    return aws.client("dynamodb")


def is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def call(operation: str, /, **kwargs: Any) -> dict:
    """Run one DynamoDB ``operation`` (``update_item``, ``transact_write_items``…) on the table.

    Single-item operations get ``TableName`` added. Raises ``ConditionFailed`` when a condition did not hold
    (with the old item when ``ReturnValuesOnConditionCheckFailure`` asked for it), ``TransactionCancelled``
    for a cancelled transaction, ``RepositoryError`` for anything else (throttling, timeouts, connection).
    """
    if operation in _SINGLE_TABLE_OPS and "TableName" not in kwargs:
        kwargs["TableName"] = table_name()
    try:
        return getattr(ddb(), operation)(**kwargs)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == "ConditionalCheckFailedException":
            raise ConditionFailed(str(exc), exc.response.get("Item")) from exc
        if code == "TransactionCanceledException":
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
            raise TransactionCancelled(str(exc), reasons) from exc
        raise RepositoryError(str(exc)) from exc
    except RepositoryError:
        raise
    except Exception as exc:  # timeouts, connection errors, a missing TABLE_NAME
        raise RepositoryError(repr(exc)) from exc


def conditional_update(**kwargs: Any) -> dict | None:
    """UpdateItem that returns None when its condition fails; other failures raise ``RepositoryError``."""
    try:
        return call("update_item", **kwargs)
    except ConditionFailed:
        return None


def get(key: dict, *, consistent: bool = True, **kwargs: Any) -> dict | None:
    """The item at ``key`` as a plain dict, or None; raises ``RepositoryError``."""
    return unmarshal(call("get_item", Key=key, ConsistentRead=consistent, **kwargs).get("Item"))
