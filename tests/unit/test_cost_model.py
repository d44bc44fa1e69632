"""The cost model's arithmetic, checked by hand: write units by item size, the quantities of one push and of
one MP API call, and prices per 1M in each region."""

from __future__ import annotations

import pytest

from reliability import cost

PUSH = {  # a repeat text in safe mode: one UpdateItem on a 1.5 KB identity item
    "code_ms_mean": 3.4, "aws_requests_per_push": {"dynamodb.UpdateItem": 1.0},
    "log_bytes_per_push": 170.0, "identity_item_bytes": 1536, "journey_item_bytes": 400,
}


@pytest.mark.parametrize("size, units", [(0, 1), (1, 1), (1024, 1), (1025, 2), (2048, 2), (3000, 3)])
def test_a_write_costs_one_unit_per_started_kilobyte(size, units):
    assert cost.write_units(size) == units


def test_a_read_costs_half_a_unit_per_started_4_kb_unless_consistent():
    assert cost.read_units(4096) == 0.5
    assert cost.read_units(4097) == 1.0
    assert cost.read_units(100, consistent=True) == 1


def test_one_push_is_billed_for_its_update_by_item_size_the_journey_put_and_the_stream_record():
    q = cost.per_push(PUSH)
    assert q["ddb_write_units"] == 2 + 1  # 1.5 KB identity update, 400 B journey put
    assert q["ddb_read_units"] == 0
    # webhook: ceil(3.4 + 6) = 10 ms; stream: 2 + 6 = 8 ms a record, one record a batch; both 0.5 GB
    assert q["lambda_gb_s"] == pytest.approx((10 * 0.5 + 8 * 0.5) / 1000)
    assert q["lambda_requests"] == 2 and q["http_api_requests"] == 1 and q["sqs_requests"] == 0
    assert q["log_bytes"] == 170 + 330 * 2


def test_an_item_in_the_index_doubles_its_writes():
    q = cost.per_push({**PUSH, "identity_in_index": True, "journey_in_index": True})
    assert q["ddb_write_units"] == 2 * 2 + 1 * 2


def test_a_first_contact_transaction_costs_two_units_per_item():
    q = cost.per_push({**PUSH, "aws_requests_per_push": {"dynamodb.TransactWriteItems": 1, "dynamodb.UpdateItem": 1}})
    assert q["ddb_write_units"] == 2 * 2 + 2 + 1


def test_prices_per_million_pushes_add_up_by_service():
    usd = cost.price(cost.per_push(PUSH))
    assert usd["lambda"] == pytest.approx(0.009 * 0.0000133334 * 1e6 + 2 * 0.20, abs=0.01)  # 0.52
    assert usd["http_api"] == 1.00
    assert usd["dynamodb"] == pytest.approx(3 * 0.625, abs=0.01)  # 1.88
    assert usd["logs"] == pytest.approx(830 * 1e6 / 1e9 * 0.50, abs=0.01)  # 0.42
    assert usd["total"] == pytest.approx(usd["lambda"] + usd["http_api"] + usd["dynamodb"] + usd["sqs"]
                                         + usd["logs"], abs=0.02)


def test_china_is_in_cny_and_marked_estimated():
    assert cost.PRICES["cn-north-1"]["currency"] == "CNY" and cost.PRICES["cn-north-1"]["estimated"]
    usd, cny = cost.price(cost.per_push(PUSH)), cost.price(cost.per_push(PUSH), region="cn-north-1")
    assert cny["total"] == pytest.approx(usd["total"] * cost.CNY_PER_USD, rel=0.01)


def test_the_naive_design_pays_five_requests_and_more_writes():
    naive, lean = cost.naive_push(PUSH), cost.per_push(PUSH)
    assert naive["ddb_write_units"] == 1 + 2 + 1 + 1 and naive["ddb_read_units"] == 0.5
    assert naive["lambda_gb_s"] == pytest.approx(34 * 0.5 / 1000)  # ceil(3.4 + 5 * 6)
    assert cost.price(naive)["total"] > cost.price(lean)["total"]


def test_an_mp_api_call_writes_the_person_once_for_its_rate_count():
    q = cost.per_mp_call({"code_ms_mean": 5.2, "aws_requests_per_call": {"dynamodb.UpdateItem": 1},
                          "person_item_bytes": 700, "log_bytes_per_call": 90})
    assert q["ddb_write_units"] == 1 and q["ddb_read_units"] == 0
    assert q["lambda_gb_s"] == pytest.approx(12 * 0.5 / 1000)  # ceil(5.2 + 6)
    assert q["log_bytes"] == 90 + 330
