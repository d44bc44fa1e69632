"""Powertools Idempotency for MP API calls whose retry could double an effect (phone, share-info, events).

Records live in the one table under their own key, ``IDEMP#{key}``/``IDEMP`` (spread over partitions, not
Powertools' single static partition), expire through the table's ``ttl``, and use the shared DynamoDB
client. Imported only by the routes that need it: it loads boto3.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from wxloop.services.mp_api.errors import ApiError

EXPIRES_AFTER_SECONDS = 3600
_lambda_context: list = [None]  # the current invocation's context: in-progress records expire with it


def use_context(context: Any) -> None:
    """Remember the Lambda context of the current invocation (the handler calls this first)."""
    _lambda_context[0] = context


@lru_cache(maxsize=1)
def _store():
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from wxloop.adapters import aws
    from wxloop.adapters.repository import table_name

    class TablePersistence(DynamoDBPersistenceLayer):
        def _get_key(self, idempotency_key: str) -> dict:
            return {"pk": {"S": f"IDEMP#{idempotency_key}"}, "sk": {"S": "IDEMP"}}

    return TablePersistence(table_name=table_name(), key_attr="pk", sort_key_attr="sk", expiry_attr="ttl",
                            boto3_client=aws.client("dynamodb"))


def reset() -> None:
    """Forget the store (tests swap the AWS backend)."""
    _store.cache_clear()


def once(operation: str, key: dict[str, Any], run: Callable[[], dict]) -> dict:
    """``run()``'s answer, computed once per (``operation``, ``key``) within the expiry: a retry gets the
    stored answer. A retry while the first call still runs → 409 ``in_progress``. ``ApiError`` answers are
    not stored (the client may correct and retry)."""
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    config = IdempotencyConfig(expires_after_seconds=EXPIRES_AFTER_SECONDS)
    if _lambda_context[0] is not None:
        config.register_lambda_context(_lambda_context[0])

    @idempotent_function(data_keyword_argument="key", persistence_store=_store(), config=config,
                         key_prefix=f"mp_api.{operation}")
    def guarded(key: dict) -> dict:
        return run()

    try:
        return guarded(key={"operation": operation, **key})
    except IdempotencyAlreadyInProgressError:
        raise ApiError(409, "the same request is still running", "in_progress") from None
