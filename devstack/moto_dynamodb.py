"""Dev-stack-only fixes to moto's DynamoDB, applied when ``make run`` starts the embedded AWS.

moto (5.x) has two faults that break a long-running local stack, not the tests (they use ``mock_aws``):

- ``TransactWriteItems`` deep-copies every table it touches before each transaction and, on a cancel,
  swaps the copy in: each transaction costs time and memory in the size of the table, and after a cancel
  the stream reader holds the shard of a table that no longer exists, so the stream stops for good.
  The patch backs up only the items the transaction names and, on a cancel, puts those items back and
  drops the stream records the cancelled transaction wrote (DynamoDB streams nothing for it either).
- The server is not thread-safe (``dictionary changed size during iteration`` under concurrent
  transactions). The patch serialises DynamoDB and DynamoDB Streams requests with one lock; SQS and
  Secrets Manager are left concurrent (SQS long polls would otherwise hold the lock).

``apply()`` is idempotent; ``remove()`` undoes it (for tests).
"""

from __future__ import annotations

import copy
import functools
import threading
import types
from typing import Any

from moto.core.responses import BaseResponse
from moto.dynamodb import models as ddb_models
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

LOCK = threading.RLock()
_in_transaction = threading.local()
_originals: dict[str, Any] = {}


def _deepcopy_except_tables(value: Any, memo: dict | None = None) -> Any:
    """moto's whole-table backup becomes the table itself inside a patched transaction (so its swap on a
    cancel is a no-op); every other deep copy in that module stays a real one."""
    if isinstance(value, Table) and getattr(_in_transaction, "active", False):
        return value
    return copy.deepcopy(value, memo)


class _ItemJournal:
    """The items one transaction names, as they were before it, and each touched stream's length."""

    def __init__(self, backend: Any, transact_items: list[dict[str, Any]]) -> None:
        self.backend = backend
        self.items: dict[tuple[str, Any, Any], Any] = {}
        self.streams: dict[str, int] = {}
        for entry in transact_items:
            for op_type, op in entry.items():
                self._remember(op_type, op)

    def _remember(self, op_type: str, op: dict[str, Any]) -> None:
        table = self.backend.tables.get(op.get("TableName"))
        if table is None:
            return
        key = op.get("Key") if op_type != "Put" else {
            attr: op.get("Item", {}).get(attr) for attr in (table.hash_key_attr, table.range_key_attr) if attr}
        try:
            hash_key, range_key = self.backend.get_keys_value(table, key or {})
        except Exception:  # noqa: BLE001 - moto rejects this op itself; it writes nothing to restore
            return
        slot = (table.name, hash_key, range_key)
        if slot not in self.items:
            current = table.get_item(hash_key, range_key)
            self.items[slot] = copy.deepcopy(current)
        if table.stream_shard is not None:
            self.streams.setdefault(table.name, len(table.stream_shard.items))

    def rollback(self) -> None:
        """Put every named item back as it was and drop the stream records written since."""
        for (table_name, hash_key, range_key), before in self.items.items():
            table = self.backend.tables[table_name]
            if range_key is not None:
                rows = table.items[hash_key]
                if before is None:
                    rows.pop(range_key, None)
                    if not rows:
                        table.items.pop(hash_key, None)
                else:
                    rows[range_key] = before
            elif before is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = before
        for table_name, length in self.streams.items():
            shard = self.backend.tables[table_name].stream_shard
            if shard is not None:
                del shard.items[length:]


def _transact_write_items(original):
    @functools.wraps(original)
    def transact_write_items(self, transact_items: list[dict[str, Any]]) -> None:
        journal = _ItemJournal(self, transact_items)
        _in_transaction.active = True
        try:
            return original(self, transact_items)
        except Exception:
            journal.rollback()
            raise
        finally:
            _in_transaction.active = False

    return transact_write_items


def _serialised(call_action):
    @functools.wraps(call_action)
    def locked_call_action(self):
        with LOCK:
            return call_action(self)

    return locked_call_action


def apply() -> None:
    """Patch moto's DynamoDB backend and handlers in this process (before the moto server serves)."""
    if _originals:
        return
    backend_cls = ddb_models.DynamoDBBackend
    _originals.update(transact=backend_cls.transact_write_items, copy=ddb_models.copy,
                      ddb_call=DynamoHandler.call_action,
                      streams_call=DynamoDBStreamsHandler.__dict__.get("call_action"))
    backend_cls.transact_write_items = _transact_write_items(backend_cls.transact_write_items)
    ddb_models.copy = types.SimpleNamespace(deepcopy=_deepcopy_except_tables, copy=copy.copy)
    DynamoHandler.call_action = _serialised(DynamoHandler.call_action)
    DynamoDBStreamsHandler.call_action = _serialised(
        _originals["streams_call"] or BaseResponse.call_action)


def remove() -> None:
    """Undo ``apply()``."""
    if not _originals:
        return
    ddb_models.DynamoDBBackend.transact_write_items = _originals["transact"]
    ddb_models.copy = _originals["copy"]
    DynamoHandler.call_action = _originals["ddb_call"]
    if _originals["streams_call"] is None:
        del DynamoDBStreamsHandler.call_action
    else:
        DynamoDBStreamsHandler.call_action = _originals["streams_call"]
    _originals.clear()
