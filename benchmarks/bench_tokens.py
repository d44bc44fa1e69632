"""Benchmark: getting the shared access_token (what every WeChat API call of the worker pays first).

Three paths, median over repeats of the mean per call (``time.perf_counter_ns``):
- ``cached_us``: the in-memory copy, while the token is comfortably valid (the common case);
- ``store_read_us``: the token item read (``repository.get_token``) through botocore against moto in-process:
  botocore's serialisation + moto; a real in-region DynamoDB GetItem adds a network round trip (~2-5 ms);
- ``uncached_us``: ``DynamoTokenStore.token()`` with the memory copy dropped (read + decide).

    python benchmarks/bench_tokens.py          # prints JSON
"""

from __future__ import annotations

import os
import statistics
import time

from benchmarks._env import OA_APP, dumps, setup_env


def _measure(fn, n: int, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter_ns() - start) / n / 1000)
    return round(statistics.median(samples), 2)


def run(n: int = 200, repeats: int = 5) -> dict:
    setup_env()
    from moto import mock_aws

    with mock_aws():
        import boto3

        from devstack.fake_wechat import FakeWeChat, accounts_from_config
        from devstack.table import create_table
        from wxloop.adapters import aws, repository, wechat

        aws.reset()
        create_table(boto3.client("dynamodb", region_name="us-east-1"), repository.table_name())
        fake = FakeWeChat(accounts_from_config(os.environ["WECHAT_ACCOUNTS"]))
        client = wechat.new_client(OA_APP, base=fake.start())
        try:
            store = client.store
            token = store.token()  # the one fetch

            def uncached():
                store._cached = None
                return store.token()

            result = {
                "cached_us": _measure(store.token, n * 50, repeats),
                "store_read_us": _measure(lambda: repository.get_token(OA_APP), n, repeats),
                "uncached_us": _measure(uncached, n, repeats),
                "fetches": len(fake.calls("/cgi-bin/stable_token")),
                "token_ok": store.token() == token,
                "note": "store reads are against moto in-process; add the DynamoDB round trip in AWS",
            }
        finally:
            fake.stop()
            aws.reset()
    return result


if __name__ == "__main__":
    print(dumps(run()))
