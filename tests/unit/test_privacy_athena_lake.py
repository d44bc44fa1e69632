"""The deployed lake's erasure with Athena stubbed and S3 in moto: the SQL it sends, and the partition swap
that keeps files Firehose delivered meanwhile."""

from __future__ import annotations

import boto3
import moto  # noqa: F401 - before any boto3 client
import pytest
from moto import mock_aws

from wxloop.services.privacy.athena_lake import AthenaLake

UID = "0123456789abcdef0123456789abcdef"


class FakeAthena:
    def __init__(self, s3, bucket):
        self.sql, self.s3, self.bucket = [], s3, bucket

    def start_query_execution(self, QueryString, **_):  # noqa: N803 - botocore's names
        self.sql.append(QueryString)
        if QueryString.startswith("UNLOAD"):  # Athena writes the compacted copy to the staging prefix
            prefix = QueryString.split("TO 's3://")[1].split("'")[0].split("/", 1)[1]
            self.s3.put_object(Bucket=self.bucket, Key=prefix + "part-0.parquet", Body=b"compacted")
        return {"QueryExecutionId": str(len(self.sql))}

    def get_query_execution(self, QueryExecutionId):  # noqa: N803
        return {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}}

    def get_query_results(self, QueryExecutionId):  # noqa: N803
        rows = [{"Data": [{"VarCharValue": "dt"}]}]
        if self.sql[int(QueryExecutionId) - 1].startswith("SELECT DISTINCT dt"):
            rows.append({"Data": [{"VarCharValue": "2026-11-30"}]})
        return {"ResultSet": {"Rows": rows}}


@pytest.fixture
def lake():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="lake")
        s3.put_object(Bucket="lake", Key="journey/dt=2026-11-30/old.parquet", Body=b"old")
        yield AthenaLake("lake", "db", "wg", athena=FakeAthena(s3, "lake"), s3=s3), s3


def test_the_list_takes_only_uids_and_compaction_swaps_the_partition(lake):
    athena_lake, s3 = lake
    athena_lake.add([UID, UID], 0)
    assert athena_lake._athena.sql == [f"INSERT INTO erased (person) VALUES ('{UID}')"]
    with pytest.raises(ValueError):
        athena_lake.add(["x'); DROP TABLE journey; --"], 0)
    out = athena_lake.compact(now=10**10, keep_seconds=0)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="lake")["Contents"])
    assert len(keys) == 1 and keys[0].startswith("journey/dt=2026-11-30/compacted-")  # old and staging gone
    assert out["partitions"] == 1
    unload = [q for q in athena_lake._athena.sql if q.startswith("UNLOAD")][0]
    assert "dt = '2026-11-30'" in unload and "person NOT IN (SELECT person FROM erased)" in unload
