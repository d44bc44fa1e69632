"""What 1M pushes and 1M MP API calls cost on arm64, from the figures the load scenarios measured.

Prices are list prices, on-demand, without free tiers, in one table so that a change is one edit.
Global: us-east-1 in USD. China: cn-north-1 (Beijing) in CNY — ESTIMATED as the USD price times
``CNY_PER_USD`` (AWS China publishes its own price list; check it before quoting these figures).
"""

from __future__ import annotations

import math

from reliability.registry import Run, scenario

CNY_PER_USD = 7.2
PRICES_USD = {
    "lambda_gb_s_arm64": 0.0000133334, "lambda_request": 0.20 / 1e6, "http_api_request": 1.00 / 1e6,
    "ddb_write_unit": 0.625 / 1e6, "ddb_read_unit": 0.125 / 1e6, "sqs_request": 0.40 / 1e6,
    "log_gb": 0.50, "stream_read": 0.0,  # Lambda's reads of DynamoDB Streams are free
}
LAMBDA_PLATFORM_LOG_BYTES = 330  # START, END and REPORT lines per invocation
MEMORY_GB = {"oa_webhook": 0.5, "stream": 0.5, "mp_api": 0.5}
REAL_DDB_MS = 6.0  # a DynamoDB request from Lambda in-region (the stand-in's own time is subtracted)


def write_units(item_bytes: float) -> int:
    return max(1, math.ceil(item_bytes / 1024))


def per_push(f: dict) -> dict[str, float]:
    """Billable quantities of one push (repeat text, the common case), from the in-process figures."""
    reqs = f["aws_requests_per_push"]
    ddb_writes = sum(v for k, v in reqs.items() if k.split(".")[1] in ("UpdateItem", "PutItem", "TransactWriteItems"))
    ddb_reads = sum(v for k, v in reqs.items() if k.split(".")[1] in ("GetItem", "Query"))
    ddb_calls = ddb_writes + ddb_reads
    webhook_ms = f["code_ms_mean"] + REAL_DDB_MS * ddb_calls
    stream_ms = 15.0  # one stream batch item: journey put (measured by the stream's own tests; per record)
    return {
        "lambda_gb_s": (webhook_ms * MEMORY_GB["oa_webhook"] + stream_ms * MEMORY_GB["stream"]) / 1000,
        "lambda_requests": 1 + 0.1,  # the webhook, and a share of a stream batch (batches of ~10)
        "http_api_requests": 1,
        "ddb_write_units": ddb_writes * write_units(f["identity_item_bytes"]) + write_units(f["journey_item_bytes"]),
        "ddb_read_units": ddb_reads * 0.5,
        "sqs_requests": sum(v for k, v in reqs.items() if k.startswith("sqs.")),
        "log_bytes": f["log_bytes_per_push"] + LAMBDA_PLATFORM_LOG_BYTES * 1.1,
    }


def naive_push(f: dict) -> dict[str, float]:
    """The same push in a naive design: five DynamoDB requests on the critical path (dedupe put, user get,
    identity update, journey put, window update), each ~1 KB, no stream."""
    q = per_push(f)
    return {**q, "lambda_gb_s": (f["code_ms_mean"] + REAL_DDB_MS * 5) * MEMORY_GB["oa_webhook"] / 1000,
            "lambda_requests": 1, "ddb_write_units": 4 * write_units(f["identity_item_bytes"]), "ddb_read_units": 0.5}


def per_mp_call(code_ms: float = 8.0, ddb_calls: float = 1.0) -> dict[str, float]:
    """An authenticated MP API read (GET me): one DynamoDB read, no write."""
    return {"lambda_gb_s": (code_ms + REAL_DDB_MS * ddb_calls) * MEMORY_GB["mp_api"] / 1000, "lambda_requests": 1,
            "http_api_requests": 1, "ddb_write_units": 0, "ddb_read_units": 0.5 * ddb_calls, "sqs_requests": 0,
            "log_bytes": 400 + LAMBDA_PLATFORM_LOG_BYTES}


def price(q: dict[str, float], *, per: float = 1e6, cny: bool = False) -> dict[str, float]:
    p = PRICES_USD
    parts = {
        "lambda": q["lambda_gb_s"] * p["lambda_gb_s_arm64"] + q["lambda_requests"] * p["lambda_request"],
        "http_api": q["http_api_requests"] * p["http_api_request"],
        "dynamodb": q["ddb_write_units"] * p["ddb_write_unit"] + q["ddb_read_units"] * p["ddb_read_unit"],
        "sqs": q["sqs_requests"] * p["sqs_request"],
        "logs": q["log_bytes"] / 1e9 * p["log_gb"],
    }
    rate = CNY_PER_USD if cny else 1.0
    out = {k: round(v * per * rate, 2) for k, v in parts.items()}
    out["total"] = round(sum(parts.values()) * per * rate, 2)
    return out


@scenario("cost", "cost", "Cost per 1M pushes and 1M MP API calls (arm64), from the measured figures",
          needs_stack=True)
def cost(run: Run) -> None:
    f = run.harness.figures_of("load_in_process")
    if not f:
        run.check("the in-process load figures exist (run load_in_process first)", False)
        return
    q, naive, mp = per_push(f), naive_push(f), per_mp_call()
    run.figures["per_push_quantities"] = {k: round(v, 4) for k, v in q.items()}
    run.figures["usd_per_1M_pushes"] = price(q)
    run.figures["usd_per_1M_pushes_naive"] = price(naive)
    run.figures["cny_per_1M_pushes_est"] = price(q, cny=True)
    run.figures["usd_per_1M_mp_calls"] = price(mp)
    run.figures["cny_per_1M_mp_calls_est"] = price(mp, cny=True)
    run.check("cheaper than the naive design", price(q)["total"] < price(naive)["total"],
              (price(q)["total"], price(naive)["total"]))
