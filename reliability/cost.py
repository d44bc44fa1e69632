"""What 1M pushes and 1M MP API calls cost on arm64, from figures measured on the local stack.

Measured here or by ``load_in_process``: the code's own time per request, the AWS requests per request by
operation, the bytes logged, and the items' real sizes (the identity item after 1, 10 and N pushes of one
person, the journey item, the MP person item), which set the DynamoDB write units. Modelled: 6 ms per
DynamoDB round trip in-region, the stream function's time per record, and Lambda's START/END/REPORT lines.

Prices are on-demand list prices without free tiers, one table per region so that a change is one edit.
us-east-1 is in USD. cn-north-1 is in CNY and ESTIMATED (USD list × ``CNY_PER_USD``) until its entries are
replaced by the amazonaws.cn price list; the report says so beside every China figure.
"""

from __future__ import annotations

import logging
import math
import os
import time

from reliability.registry import Run, scenario

CNY_PER_USD = 7.2
PRICES_USD = {
    "lambda_gb_s_arm64": 0.0000133334, "lambda_request": 0.20 / 1e6, "http_api_request": 1.00 / 1e6,
    "ddb_write_unit": 0.625 / 1e6, "ddb_read_unit": 0.125 / 1e6, "sqs_request": 0.40 / 1e6, "log_gb": 0.50,
}
PRICES = {
    "us-east-1": {"currency": "USD", "estimated": False, **PRICES_USD},
    "cn-north-1": {"currency": "CNY", "estimated": True, **{k: v * CNY_PER_USD for k, v in PRICES_USD.items()}},
}
LAMBDA_PLATFORM_LOG_BYTES = 330  # START, END and REPORT lines per invocation
MEMORY_GB = {"oa_webhook": 0.5, "stream": 0.5, "mp_api": 0.5}  # MemorySize in template.yaml
REAL_DDB_MS = 6.0  # a DynamoDB request from Lambda in-region (the stand-in's own time is taken off)
STREAM_CODE_MS_PER_RECORD = 2.0  # decode one stream record, build the journey event (pure code)
STREAM_RECORDS_PER_BATCH = 1  # at low traffic each push is its own batch: the dearest case
TRANSACT_FACTOR = 2  # a transactional write costs two write units per KB


def write_units(item_bytes: float) -> int:
    """On-demand write units of one write of an item this size: 1 per KB started (at least 1)."""
    return max(1, math.ceil(item_bytes / 1024))


def read_units(item_bytes: float, *, consistent: bool = False) -> float:
    """Read units of one GetItem: 1 per 4 KB started, half of that eventually consistent."""
    units = max(1, math.ceil(item_bytes / 4096))
    return units if consistent else units / 2


def _ops(requests: dict[str, float], service: str = "dynamodb") -> dict[str, float]:
    return {k.split(".", 1)[1]: v for k, v in requests.items() if k.startswith(service + ".")}


def _ddb_units(ops: dict[str, float], item_bytes: float) -> tuple[float, float]:
    """Write and read units of these operations on an item of ``item_bytes`` (an update is billed on the
    larger of the item before and after: the measured item is the one after)."""
    wcu = write_units(item_bytes)
    writes = (ops.get("UpdateItem", 0) + ops.get("PutItem", 0) + ops.get("DeleteItem", 0)) * wcu
    writes += ops.get("TransactWriteItems", 0) * 2 * TRANSACT_FACTOR  # first contact: two small items
    reads = (ops.get("GetItem", 0) + ops.get("Query", 0)) * read_units(item_bytes)
    return writes, reads


def per_push(f: dict) -> dict[str, float]:
    """Billable quantities of one push (a repeat text, the common case) from the measured figures ``f``:
    ``code_ms_mean``, ``aws_requests_per_push``, ``log_bytes_per_push``, ``identity_item_bytes``,
    ``journey_item_bytes`` and (optional) ``identity_in_index`` / ``journey_in_index`` (a GSI write too)."""
    ops = _ops(f["aws_requests_per_push"])
    writes, reads = _ddb_units(ops, f["identity_item_bytes"])
    writes *= 2 if f.get("identity_in_index") else 1
    journey = write_units(f["journey_item_bytes"]) * (2 if f.get("journey_in_index") else 1)
    webhook_ms = math.ceil(f["code_ms_mean"] + REAL_DDB_MS * sum(ops.values()))  # billed per started ms
    stream_ms = (STREAM_CODE_MS_PER_RECORD + REAL_DDB_MS) * STREAM_RECORDS_PER_BATCH  # one PutItem a record
    stream_share = 1 / STREAM_RECORDS_PER_BATCH
    return {
        "lambda_gb_s": (webhook_ms * MEMORY_GB["oa_webhook"] + stream_ms * stream_share * MEMORY_GB["stream"]) / 1000,
        "lambda_requests": 1 + stream_share,
        "http_api_requests": 1,
        "ddb_write_units": writes + journey,
        "ddb_read_units": reads,
        "sqs_requests": sum(_ops(f["aws_requests_per_push"], "sqs").values()),
        "log_bytes": f["log_bytes_per_push"] + LAMBDA_PLATFORM_LOG_BYTES * (1 + stream_share),
    }


def naive_push(f: dict) -> dict[str, float]:
    """The same push in a naive design: five DynamoDB requests in the webhook (dedupe put, user get, identity
    update, journey put, window update), no stream."""
    q = per_push(f)
    webhook_ms = math.ceil(f["code_ms_mean"] + REAL_DDB_MS * 5)
    return {**q, "lambda_gb_s": webhook_ms * MEMORY_GB["oa_webhook"] / 1000, "lambda_requests": 1,
            "ddb_write_units": 1 + write_units(f["identity_item_bytes"]) + write_units(f["journey_item_bytes"]) + 1,
            "ddb_read_units": read_units(f["identity_item_bytes"]),
            "log_bytes": f["log_bytes_per_push"] + LAMBDA_PLATFORM_LOG_BYTES}


def per_mp_call(m: dict) -> dict[str, float]:
    """Billable quantities of one authenticated MP API call (``GET me``: one conditional UpdateItem on the
    person, which also counts the rate limit) from ``code_ms_mean``, ``aws_requests_per_call``,
    ``person_item_bytes`` and ``log_bytes_per_call``."""
    ops = _ops(m["aws_requests_per_call"])
    writes, reads = _ddb_units(ops, m["person_item_bytes"])
    return {"lambda_gb_s": math.ceil(m["code_ms_mean"] + REAL_DDB_MS * sum(ops.values())) * MEMORY_GB["mp_api"] / 1000,
            "lambda_requests": 1, "http_api_requests": 1, "ddb_write_units": writes, "ddb_read_units": reads,
            "sqs_requests": sum(_ops(m["aws_requests_per_call"], "sqs").values()),
            "log_bytes": m["log_bytes_per_call"] + LAMBDA_PLATFORM_LOG_BYTES}


def price(q: dict[str, float], *, per: float = 1e6, region: str = "us-east-1") -> dict[str, float]:
    """The cost of ``per`` requests with quantities ``q`` in ``region``'s currency, by service and in total."""
    p = PRICES[region]
    parts = {
        "lambda": q["lambda_gb_s"] * p["lambda_gb_s_arm64"] + q["lambda_requests"] * p["lambda_request"],
        "http_api": q["http_api_requests"] * p["http_api_request"],
        "dynamodb": q["ddb_write_units"] * p["ddb_write_unit"] + q["ddb_read_units"] * p["ddb_read_unit"],
        "sqs": q["sqs_requests"] * p["sqs_request"],
        "logs": q["log_bytes"] / 1e9 * p["log_gb"],
    }
    out = {k: round(v * per, 2) for k, v in parts.items()}
    out["total"] = round(sum(parts.values()) * per, 2)
    return out


# -- the scenario: measure what the load scenario does not, then price it ---------------------------------
def _item(h, key: dict) -> dict:
    from wxloop.adapters.repository import unmarshal

    found = h.ddb.get_item(TableName=h.stack.table, Key=key).get("Item")
    return unmarshal(found) if found else {}


def _identity_growth(h, pushes: int) -> dict[str, int]:
    """Bytes of one person's identity item after 1, 10 and ``pushes`` repeat texts (dedupe keys and the
    stored reply make it grow until the dedupe window caps it)."""
    from devstack.gateway import LambdaContext, load_function, routes_from_template
    from devstack.simulator import http_event
    from reliability.harness import OA
    from reliability.load import item_size

    route = next(r for r in routes_from_template() if r.template == "/wechat/oa/{app_id}")
    handler, sim = load_function(route.function), h.simulator(OA)
    openid = f"oCostGrowth{int(time.time() * 1000) % 10**9:09d}".ljust(28, "x")
    key = {"pk": {"S": f"ID#{OA}#{openid}"}, "sk": {"S": "ID"}}
    sizes: dict[str, int] = {}
    for i in range(1, pushes + 1):
        push = sim.push(sim.text(openid, f"growth {i}"), "safe")
        handler(http_event("POST", OA, push.query, push.body), LambdaContext("cost", 6))
        if i in (1, 10, pushes):
            sizes[f"after_{i}"] = item_size(_item(h, key))
    return sizes


def _mp_calls(h, calls: int) -> dict:
    """``GET me`` through the MP API handler in-process: the code's own time, AWS requests and log bytes per
    call, and the person item's size."""
    import io

    from devstack.gateway import load_function, routes_from_template
    from reliability.load import item_size

    route = next(r for r in routes_from_template() if r.template.startswith("/mp/"))
    handler = load_function(route.function)
    people = [f"oCostMp{n}{int(time.time()) % 10**6:06d}".ljust(28, "x") for n in range(max(1, calls // 50))]
    tokens = [h.login(p) for p in people]  # ≤ 50 calls each: under the 120-a-minute rate limit
    own, requests, out = [], {}, io.StringIO()
    service = logging.getLogger(os.environ.get("POWERTOOLS_SERVICE_NAME", "wxloop"))
    saved, level = [(hd, hd.stream) for hd in service.handlers if hasattr(hd, "stream")], service.level
    service.setLevel(logging.INFO)  # the deployed level; its lines are counted, not shown
    for hd, _ in saved:
        hd.stream = out
    try:
        _call_me(handler, route, tokens, calls, own, requests, out)
    finally:
        service.setLevel(level)
        for hd, stream in saved:
            hd.stream = stream
    from reliability.harness import MP

    uid = _item(h, {"pk": {"S": f"ID#{MP}#{people[0]}"}, "sk": {"S": "ID"}}).get("uid")
    person = _item(h, {"pk": {"S": f"USER#{uid}"}, "sk": {"S": "PROFILE"}}) if uid else {}
    return {"calls": calls, "code_ms_mean": round(sum(own) / calls * 1000, 2),
            "aws_requests_per_call": {k: round(v / calls, 3) for k, v in sorted(requests.items())},
            "log_bytes_per_call": round(len(out.getvalue().encode()) / calls, 1),
            "person_item_bytes": item_size(person) if person else 1024}


def _call_me(handler, route, tokens: list[str], calls: int, own: list, requests: dict, out) -> None:
    import contextlib

    from devstack import faults
    from devstack.gateway import LambdaContext, make_event
    from reliability.harness import MP

    for i in range(calls):
        event = make_event("GET", route, f"/mp/{MP}/me", {"app_id": MP, "proxy": "me"}, "",
                           {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}, b"")
        tap = faults.reset_thread_tap()
        start = time.perf_counter()
        with contextlib.redirect_stdout(out):
            status = handler(event, LambdaContext("cost", 10))["statusCode"]
        own.append(time.perf_counter() - start - tap.seconds)
        for k, v in tap.calls.items():
            requests[k] = requests.get(k, 0) + v
        if status != 200:
            raise RuntimeError(f"GET me answered {status}")


@scenario("cost", "cost", "Cost per 1M pushes and 1M MP API calls (arm64), from the measured figures",
          needs_stack=True)
def cost(run: Run) -> None:
    f = dict(run.harness.figures_of("load_in_process"))
    if not f:
        run.check("the in-process load figures exist (run load_in_process first)", False)
        return
    growth = _identity_growth(run.harness, run.size(30, 200))
    f["identity_item_bytes"] = max(f["identity_item_bytes"], *growth.values())  # the dearest item billed
    mp = _mp_calls(run.harness, run.size(50, 500))
    q, naive, m = per_push(f), naive_push(f), per_mp_call(mp)
    run.figures.update(identity_item_bytes_after=growth, mp_api_measured=mp,
                       per_push_quantities={k: round(v, 4) for k, v in q.items()},
                       per_mp_call_quantities={k: round(v, 4) for k, v in m.items()})
    for region, prefix in (("us-east-1", "usd"), ("cn-north-1", "cny_est")):  # cn-north-1: estimated prices
        run.figures[f"{prefix}_per_1M_pushes"] = price(q, region=region)
        run.figures[f"{prefix}_per_1M_pushes_naive"] = price(naive, region=region)
        run.figures[f"{prefix}_per_1M_mp_calls"] = price(m, region=region)
    run.check("cheaper than the naive design", price(q)["total"] < price(naive)["total"],
              (price(q)["total"], price(naive)["total"]))
    n = run.size(30, 200)
    per_push_growth = (growth[f"after_{n}"] - growth["after_10"]) / (n - 10)
    run.figures["identity_bytes_added_per_push_within_the_hour"] = round(per_push_growth, 1)
    # the hourly dedupe sets hold every key of the last 1-2 hours: a person's item grows with each push
    run.check("the identity item grows by no more than a dedupe key a push", per_push_growth <= 64,
              round(per_push_growth, 1))
