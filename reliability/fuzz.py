"""Mutation fuzzer over signed pushes, through the webhook handler in-process (the stack's AWS behind it).

Seeds are genuine pushes (plain, compat and safe mode; messages and events); each case mutates the body,
the query or both. Promises: the handler never raises and never answers 5xx, and a refused case (4xx)
makes no write request. Plain mode signs only the query, so a mutated plain body that still parses is a
genuine push by WeChat's protocol and may be recorded.
"""

from __future__ import annotations

import base64
import random
import time
from collections import Counter

from devstack import faults
from devstack.simulator import http_event
from reliability.harness import OA, SAFE_OA
from reliability.registry import Run, scenario

SEED = 15


def _seeds(h) -> list[tuple[str, object]]:
    out = []
    for app_id in (OA, SAFE_OA):
        sim = h.simulator(app_id)
        modes = ("plain", "compat", "safe") if app_id == OA else ("safe", "compat")
        for i, xml in enumerate([
            sim.text("oFuzzSeed00000000000000000a", "优惠券"),
            sim.event("oFuzzSeed00000000000000000b", "CLICK", key="ABOUT_US"),
            sim.subscribe("oFuzzSeed00000000000000000c", "store_1"),
            sim.event("oFuzzSeed00000000000000000d", "subscribe_msg_popup_event",
                      extra={"SubscribeMsgPopupEvent": "<List><TemplateId>t1</TemplateId></List>"}),
        ]):
            out.append((app_id, sim.push(xml, modes[i % len(modes)])))
    return out


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    op = rng.randrange(9)
    if not data:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    i = rng.randrange(len(data))
    if op == 0:  # flip a byte
        return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]
    if op == 1:  # truncate
        return data[:i]
    if op == 2:  # insert junk, often not UTF-8
        return data[:i] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16))) + data[i:]
    if op == 3:  # duplicate a slice (repeated tags)
        j = rng.randrange(i, len(data) + 1)
        return data[:j] + data[i:j] * rng.randrange(2, 6) + data[j:]
    if op == 4:  # deep nesting
        depth = rng.choice((50, 500, 5000))
        return data.replace(b"<xml>", b"<xml>" + b"<a>" * depth + b"</a>" * depth, 1)
    if op == 5:  # an entity declaration (billion laughs, external entity)
        return (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">'
                b'<!ENTITY e SYSTEM "file:///etc/passwd">]>' + data.replace(b"<Content>", b"<Content>&b;&e;", 1))
    if op == 6:  # a huge field
        return data.replace(b"<xml>", b"<xml><Big>" + b"A" * rng.choice((1000, 70000)) + b"</Big>", 1)
    if op == 7:  # swap two slices
        j = rng.randrange(len(data))
        a, b = sorted((i, j))
        return data[:a] + data[b:] + data[a:b]
    return data.replace(b"<", b"<!--", 1) if rng.random() < 0.5 else data.upper()


def _mutate_query(rng: random.Random, query: dict) -> dict:
    q = dict(query)
    key = rng.choice(sorted(q) + ["encrypt_type", "msg_signature", "echostr", "openid"])
    choice = rng.randrange(5)
    if choice == 0:
        q.pop(key, None)
    elif choice == 1:
        q[key] = ""
    elif choice == 2:
        q[key] = rng.choice(["0" * 40, "aes", "raw", "-1", "9" * 30, "\x00", "é" * 10, str(int(time.time()) - 10**6)])
    elif choice == 3:
        v = q.get(key, "x")
        q[key] = v[:-1] + ("0" if v[-1:] != "0" else "1")
    else:
        q["timestamp"] = str(int(time.time()) + rng.choice((-400, 400, 10**9)))
    return q


def _event(app_id: str, query: dict, body: bytes) -> dict:
    ev = http_event("POST", app_id, query, "")
    try:
        ev["body"], ev["isBase64Encoded"] = body.decode("utf-8"), False
    except UnicodeDecodeError:  # API Gateway hands non-UTF-8 bodies over base64-encoded
        ev["body"], ev["isBase64Encoded"] = base64.b64encode(body).decode(), True
    if not body:
        ev["body"] = None
    return ev


@scenario("mutation_fuzz", "fuzz", "≥10,000 mutated signed pushes through the handler: no crash, no 5xx, no write when refused")
def mutation_fuzz(run: Run) -> None:
    from devstack.gateway import LambdaContext, load_function, routes_from_template

    route = next(r for r in routes_from_template() if r.template == "/wechat/oa/{app_id}")
    handler = load_function(route.function)
    rng = random.Random(SEED)
    seeds = _seeds(run.harness)
    cases = run.size(1500, 10000)
    statuses, crashes, leaks, start = Counter(), [], [], time.perf_counter()
    for n in range(cases):
        app_id, push = rng.choice(seeds)
        body, query = push.body.encode(), push.query
        what = rng.randrange(3)
        for _ in range(rng.choice((1, 1, 2, 3))):
            if what in (0, 2):
                body = _mutate_bytes(rng, body)
            if what in (1, 2):
                query = _mutate_query(rng, query)
        tap = faults.reset_thread_tap()
        try:
            out = handler(_event(app_id, query, body), LambdaContext("fuzz", 6))
            status = int(out["statusCode"])
        except Exception as exc:  # a crash: the gateway would answer 500
            crashes.append(f"case {n}: {exc!r}"[:200])
            status = 599
        statuses[status] += 1
        if 400 <= status < 500 and tap.writes():
            leaks.append(f"case {n}: {status} after {dict(tap.calls)}")
    seconds = time.perf_counter() - start
    run.figures.update(cases=cases, statuses=dict(sorted(statuses.items())), crashes=len(crashes),
                       writes_when_refused=len(leaks), cases_per_s=round(cases / seconds))
    run.check(f"at least {run.size(1500, 10000)} cases", cases >= run.size(1500, 10000))
    run.check("no crash", not crashes, crashes[:3])
    run.check("no 5xx", not any(s >= 500 for s in statuses), dict(statuses))
    run.check("refused cases wrote nothing", not leaks, leaks[:3])
    run.check("both refusals and acceptances were exercised", statuses.get(200, 0) > 0 and
              sum(v for s, v in statuses.items() if 400 <= s < 500) > 0, dict(statuses))
