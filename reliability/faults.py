"""Faults: DynamoDB throttling, errors and latency, SQS errors, WeChat API errors and slowness.

Each push is sent while a fault is on; WeChat's own retries are played after the faults stop (a push that
got no 200 is delivered again). The ledger compares what was accepted (answered 200) with what landed
(a journey record) once the stack has settled: nothing accepted may be missing. Jobs (customer-service
cards) are each done, or still in the queue, or in the DLQ: none missing.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

from devstack import faults
from reliability.harness import OA, answer_budget, dedupe_key, ms
from reliability.registry import Run, scenario

WECHAT_RETRIES = 2  # WeChat delivers a push 3 times in all


def _send_all(h, sim, pushes: list[str], concurrency: int = 4) -> list[tuple[str, int, float]]:
    """Each push once, ``concurrency`` at a time: (xml, status, seconds)."""
    out, lock, todo = [], threading.Lock(), list(pushes)

    def worker() -> None:
        while True:
            with lock:
                if not todo:
                    return
                xml = todo.pop()
            mode = random.choice(("plain", "safe"))
            status, _, secs = h.post_push(OA, sim.push(xml, mode))
            with lock:
                out.append((xml, status, secs))

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _ledger(run: Run, label: str, fault_specs: list[dict], n: int, *, card: bool = False, hold: float = 0.0) -> dict:
    """Send ``n`` pushes under the faults, retry the unanswered ones after, settle, compare."""
    h, sim = run.harness, run.harness.simulator(OA)
    tag = f"{label[:6]}{random.randrange(16**4):04x}"
    pushes = [sim.text(f"oFault{tag}{i:05d}".ljust(28, "x"), "优惠券" if card else f"fault {i}") for i in range(n)]
    queued_before = h.queue_depth() + h.queue_depth("dlq")
    switched = [faults.switch(**spec) for spec in fault_specs]
    try:
        first = _send_all(h, sim, pushes)
        time.sleep(hold)  # faults on the pumps: keep them on while the stream works through the pushes
    finally:
        faults.clear()
    accepted = {x for x, s, _ in first if s == 200}
    refused = [x for x, s, _ in first if s != 200]
    for _ in range(WECHAT_RETRIES):  # WeChat delivers again what got no 200
        refused = [x for x, s, _ in _send_all(h, sim, refused) if s != 200]
    keys = {x: dedupe_key(x) for x in pushes}
    h.settle({keys[x] for x in pushes if x not in refused}, timeout=run.size(30, 90))
    ids = h.journey_ids()
    missing = [x for x in accepted if ids.get(keys[x], 0) == 0]
    queued = max(0, h.queue_depth() + h.queue_depth("dlq") - queued_before)  # queued pushes wait out SQS's retry delay (30 s, 60 s…)
    lost = missing[queued:] if queued else missing
    doubled = [x for x in pushes if ids.get(keys[x], 0) > 1]
    worst = max(s for _, _, s in first)
    fig = {"pushes": n, "accepted_first": len(accepted), "refused_then_retried": n - len(accepted),
           "never_accepted": len(refused), "landed": sum(1 for x in pushes if ids.get(keys[x])),
           "not_landed_yet": len(missing), "queued_or_dlq": queued, "lost": len(lost), "doubled": len(doubled), "max_ms": ms(worst),
           "injected": sum(f.hits for f in switched),
           "statuses": dict(Counter(s for _, s, _ in first))}
    run.figures[label] = fig
    run.check(f"{label}: faults were hit", fig["injected"] > 0, fig["injected"])
    run.check(f"{label}: nothing accepted lost (landed, or queued for a retry)", not lost,
              f"{len(missing)} of {len(accepted)} not landed, {queued} messages queued")
    run.check(f"{label}: nothing doubled", not doubled, len(doubled))
    run.check(f"{label}: answered within {answer_budget():g} s", worst < answer_budget(), f"max {ms(worst)} ms")
    run.check(f"{label}: WeChat's retries land everything", not refused, f"{len(refused)} never accepted")
    return fig


@scenario("dynamodb_faults", "faults", "DynamoDB throttled, failing, slow and timing out under pushes")
def dynamodb_faults(run: Run) -> None:
    n = run.size(8, 40)
    _ledger(run, "throttle", [{"service": "dynamodb", "kind": "throttle", "rate": 0.5}], n)
    _ledger(run, "error", [{"service": "dynamodb", "kind": "error", "rate": 0.3}], n)
    _ledger(run, "slow", [{"service": "dynamodb", "kind": "latency", "seconds": 0.6, "rate": 0.5}], n)
    _ledger(run, "timeout", [{"service": "dynamodb", "kind": "latency", "seconds": 3.0, "rate": 0.3}], n)


@scenario("sqs_faults", "faults", "SQS failing, alone and together with DynamoDB")
def sqs_faults(run: Run) -> None:
    n = run.size(8, 30)
    # the webhook sends nothing to SQS while DynamoDB works (jobs ride on the write): the stream's sends fail
    _ledger(run, "sqs_error", [{"service": "sqs", "kind": "error", "operations": ["SendMessage", "SendMessageBatch"],
                                "pumps": True, "rate": 0.5}], n, card=True, hold=run.size(6, 10))
    both = _ledger(run, "ddb_and_sqs", [{"service": "dynamodb", "kind": "error", "rate": 0.5},
                                        {"service": "sqs", "kind": "error"}], n)
    run.check("ddb_and_sqs: a push neither stored nor queued is refused (500), not answered",
              both["statuses"].get(500, 0) > 0, both["statuses"])


# WeChat API faults through the fake's controls: (label, path, errcode, times, http status, slow seconds).
WECHAT_FAULTS = (
    ("40001_storm", "/cgi-bin/message/custom/send", 40001, 6, 200, 0),
    ("45015_closed", "/cgi-bin/message/custom/send", 45015, 3, 200, 0),
    ("5xx", "/cgi-bin/message/custom/send", None, 2, 502, 0),
    ("slow_1s", "/cgi-bin/message/custom/send", None, 3, 200, 1.0),
    ("45009_quota", "/cgi-bin/message/custom/send", 45009, 1, 200, 0),
)


@scenario("wechat_api_faults", "faults", "WeChat API 40001 storms, 45015, 5xx, slow answers, 45009: no job lost")
def wechat_api_faults(run: Run) -> None:
    from wxloop.adapters.dynamo import jobs as job_store

    h = run.harness
    sim = h.simulator(OA)
    for label, path, errcode, times, status, slow in WECHAT_FAULTS:
        tag = f"{label[:5]}{random.randrange(16**4):04x}"
        pushes = [sim.text(f"oWx{tag}{i:04d}".ljust(28, "x"), "优惠券") for i in range(run.size(4, 12))]
        tokens_before = len(h.fake.calls("/cgi-bin/stable_token")) + len(h.fake.calls("/cgi-bin/token"))
        if slow:
            h.fake.slow_next(path, slow, times)
        else:
            h.fake.fail_next(path, errcode, times, status=status)
        answered = _send_all(h, sim, pushes)
        keys = [f"{dedupe_key(x)}:cs" for x in pushes]
        deadline = time.monotonic() + run.size(20, 60)
        while time.monotonic() < deadline:  # until every job is done, or the rest wait in a queue
            done = [k for k in keys if (job_store.get_job(k) or {}).get("state") == "done"]
            if len(done) == len(keys) or (len(done) + h.queue_depth() + h.queue_depth("dlq") >= len(keys)
                                          and time.monotonic() > deadline - run.size(15, 50)):
                break
            time.sleep(0.5)
        outcomes = Counter((job_store.get_job(k) or {}).get("outcome", "pending") for k in keys)
        waiting = h.queue_depth() + h.queue_depth("dlq")
        tokens = len(h.fake.calls("/cgi-bin/stable_token")) + len(h.fake.calls("/cgi-bin/token")) - tokens_before
        run.figures[label] = {"jobs": len(keys), "outcomes": dict(outcomes), "queued_or_dlq": waiting,
                              "token_fetches": tokens, "max_push_ms": ms(max(s for _, _, s in answered))}
        missing = outcomes.get("pending", 0) - waiting
        run.check(f"{label}: every job done, queued or in the DLQ", missing <= 0,
                  f"{outcomes.get('pending', 0)} not done, {waiting} in the queues")
        run.check(f"{label}: pushes answered 200 in time", all(s == 200 and t < answer_budget() for _, s, t in answered))
        if label == "40001_storm":
            run.check("40001_storm: token fetches stay few", tokens <= times, tokens)
        h.clear_wechat_faults()
