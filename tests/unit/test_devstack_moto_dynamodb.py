"""The dev stack's moto patch: a cancelled transaction restores only the items it named, keeps the table
(and its stream) alive, streams nothing for itself; a successful one copies no table; requests serialise."""

from __future__ import annotations

import threading

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from devstack import moto_dynamodb
from devstack.table import create_table

TABLE = "wxloop-patch"


@pytest.fixture
def ddb(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    moto_dynamodb.apply()
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            create_table(client, TABLE)
            yield client
    finally:
        moto_dynamodb.remove()


def _backend_table():
    return dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[TABLE]


def _put(pk: str, value: str) -> dict:
    return {"Put": {"TableName": TABLE, "Item": {"pk": {"S": pk}, "sk": {"S": "ID"}, "v": {"S": value}},
                    "ConditionExpression": "attribute_not_exists(pk)"}}


def _get(ddb, pk: str) -> dict | None:
    return ddb.get_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": "ID"}}).get("Item")


def test_cancelled_transaction_restores_named_items_and_keeps_table_and_stream(ddb):
    ddb.put_item(TableName=TABLE, Item={"pk": {"S": "A"}, "sk": {"S": "ID"}, "v": {"S": "old"}})
    table, shard = _backend_table(), _backend_table().stream_shard
    records = len(shard.items)
    update = {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "A"}, "sk": {"S": "ID"}},
                         "UpdateExpression": "SET v = :v", "ExpressionAttributeValues": {":v": {"S": "new"}}}}
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        # B is written, A updated, then C's condition fails (it exists): all three must be undone
        ddb.put_item(TableName=TABLE, Item={"pk": {"S": "C"}, "sk": {"S": "ID"}, "v": {"S": "c"}})
        records += 1
        ddb.transact_write_items(TransactItems=[_put("B", "b"), update, _put("C", "again")])
    assert _backend_table() is table and table.stream_shard is shard, "the stream reader's table stays live"
    assert _get(ddb, "A")["v"]["S"] == "old"
    assert _get(ddb, "B") is None
    assert _get(ddb, "C")["v"]["S"] == "c"
    assert len(shard.items) == records, "a cancelled transaction streams nothing"
    ddb.transact_write_items(TransactItems=[_put("D", "d")])
    assert len(shard.items) == records + 1 and shard.items[-1].record["dynamodb"]["Keys"]["pk"] == {"S": "D"}


def test_successful_transaction_copies_no_table(ddb, monkeypatch):
    copied = []
    real = moto_dynamodb.copy.deepcopy
    monkeypatch.setattr(moto_dynamodb.copy, "deepcopy",
                        lambda v, memo=None: copied.append(type(v).__name__) or real(v, memo))
    ddb.transact_write_items(TransactItems=[_put(f"P{i}", "x") for i in range(3)])
    assert "Table" not in copied
    assert all(_get(ddb, f"P{i}") for i in range(3))


def test_concurrent_transactions_on_one_key_leave_one_winner_and_the_stream_working(ddb):
    errors, barrier = [], threading.Barrier(8)

    def worker(n: int) -> None:
        barrier.wait()
        try:
            ddb.transact_write_items(TransactItems=[_put("SAME", str(n)), _put(f"OWN{n}", str(n))])
        except ddb.exceptions.TransactionCanceledException:
            errors.append(n)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 7
    winner = int(_get(ddb, "SAME")["v"]["S"])
    assert [n for n in range(8) if _get(ddb, f"OWN{n}")] == [winner]
    keys = [r.record["dynamodb"]["Keys"]["pk"]["S"] for r in _backend_table().stream_shard.items]
    assert sorted(keys) == sorted(["SAME", f"OWN{winner}"])


def test_apply_is_idempotent_and_remove_restores_moto():
    from moto.dynamodb.models import DynamoDBBackend

    before = DynamoDBBackend.transact_write_items
    moto_dynamodb.apply()
    patched = DynamoDBBackend.transact_write_items
    moto_dynamodb.apply()
    assert DynamoDBBackend.transact_write_items is patched is not before
    moto_dynamodb.remove()
    assert DynamoDBBackend.transact_write_items is before
