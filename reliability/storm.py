"""Retry storm: every push delivered 4 times by 8 concurrent senders → one effect each, one answer each."""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from reliability.harness import OA, answer_budget, dedupe_key, ms, percentile
from reliability.registry import Run, scenario

# WeChat's retry timing, compressed: a retry can land while the first delivery is still running (two at
# once), a third shortly after, a fourth after the first answered. Seconds after the push's first send.
RETRY_OFFSETS = (0.0, 0.0, 0.05, 0.4)
SENDERS = 8


@dataclass
class Delivery:
    push_no: int
    attempt: int
    due: float

    def __lt__(self, other: Delivery) -> bool:
        return self.due < other.due


def _mixed_pushes(sim, n: int, run_tag: str) -> list[tuple[str, str, str]]:
    """(xml, mode, kind): texts (some with a customer-service card), clicks, scans, follows, images."""
    kinds: list[tuple[str, Callable[[str, int], str]]] = [
        ("text", lambda o, i: sim.text(o, f"hello {i}")),
        ("text+card", lambda o, i: sim.text(o, "优惠券")),
        ("click", lambda o, i: sim.event(o, "CLICK", key="ABOUT_US", create_time=int(time.time()) + i)),
        ("scan", lambda o, i: sim.event(o, "SCAN", key=f"store_{i}", create_time=int(time.time()) + i)),
        ("subscribe", lambda o, i: sim.subscribe(o, f"store_{i}", create_time=int(time.time()) + i)),
        ("image", lambda o, i: sim.message(o, "image", {"PicUrl": "http://img.invalid/x.jpg", "MediaId": f"m{i}"})),
    ]
    out = []
    for i in range(n):
        kind, make = kinds[i % len(kinds)]
        openid = f"oStorm{run_tag}{i % max(1, n // 3):06d}".ljust(28, "x")  # about 3 pushes per person
        out.append((make(openid, i), ("plain", "safe")[(i // len(kinds)) % 2], kind))
    return out


# Push sources the storm mixes: name → maker(harness, n, tag) returning (app_id, kind route, sim, pushes).
# A new push endpoint (the MP one) adds its maker here.
SOURCES: dict[str, Callable] = {
    "oa": lambda h, n, tag: (OA, "oa", h.simulator(OA), _mixed_pushes(h.simulator(OA), n, tag)),
}


@scenario("retry_storm", "storm", "N pushes x 4 deliveries from 8 senders: N effects, one answer per push")
# long: one scenario read top to bottom: build the pushes, deliver them in a storm, then check each promise
def retry_storm(run: Run) -> None:
    h, n = run.harness, run.size(24, 200)
    tag = f"{random.randrange(16**4):04x}"
    pushes = []  # (app_id, route kind, sim, xml, mode, kind)
    for name, make in SOURCES.items():
        app_id, route, sim, made = make(h, n // len(SOURCES), tag + name[:1])
        pushes += [(app_id, route, sim, xml, mode, kind) for xml, mode, kind in made]
    rate = _offered_rate(h, run.size(20, 50))
    spread = n / rate  # new pushes a second (x4 deliveries), their retries interleaved
    plan = [Delivery(i, a, i / n * spread + off) for i in range(len(pushes)) for a, off in enumerate(RETRY_OFFSETS)]
    heapq.heapify(plan)
    answers, statuses, latencies, lock = defaultdict(list), Counter(), [], threading.Lock()
    slow_5xx: list[float] = []
    start = time.monotonic()
    cs_before = len(h.fake.calls("/cgi-bin/message/custom/send"))

    def sender() -> None:
        while True:
            with lock:
                if not plan:
                    return
                d = heapq.heappop(plan)
            time.sleep(max(0.0, start + d.due - time.monotonic()))
            app_id, route, sim, xml, mode, _ = pushes[d.push_no]
            push = sim.push(xml, mode)  # every delivery signed afresh (new nonce), as WeChat does
            sent = time.monotonic()
            status, body, secs = h.post_push(app_id, push, route)
            reply = sim.open_reply(body.decode(), push) if status == 200 else f"HTTP {status}"
            with lock:
                statuses[status] += 1
                latencies.append(secs)
                answers[d.push_no].append((sent, sent + secs, _normalise(reply)))
                if status >= 500:
                    slow_5xx.append(ms(secs))

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = {dedupe_key(p[3]) for p in pushes}
    settled = h.settle(expected, timeout=run.size(30, 120))
    ids = h.journey_ids()
    landed = {k: ids[k] for k in expected if k in ids}
    cards = sum(1 for p in pushes if p[5] == "text+card")
    cs_sent = len(h.fake.calls("/cgi-bin/message/custom/send")) - cs_before
    from wxloop.adapters.dynamo import jobs as job_store

    card_jobs = Counter((job_store.get_job(f"{dedupe_key(p[3])}:cs") or {}).get("outcome", "pending")
                        for p in pushes if p[5] == "text+card")
    queued = h.queue_depth() + h.queue_depth("dlq")
    differing, overlapping = _compare_answers(answers)
    run.figures.update(pushes=len(pushes), new_pushes_per_s=round(rate, 1), deliveries=sum(statuses.values()), senders=SENDERS,
                       statuses=dict(statuses), journey_records=sum(landed.values()),
                       cs_cards_expected=cards, cs_cards_sent=cs_sent, card_jobs=dict(card_jobs), queued=queued,
                       p50_ms=ms(percentile(latencies, 50)), p99_ms=ms(percentile(latencies, 99)),
                       max_ms=ms(max(latencies)), overlapping_deliveries=overlapping,
                       ms_of_5xx=sorted(slow_5xx)[:10])
    run.check("settled", settled, f"{len(landed)}/{len(expected)} recorded")
    run.check("exactly one journey record per push", len(landed) == len(expected) and
              all(v == 1 for v in landed.values()), f"{sum(landed.values())} records for {len(expected)} pushes")
    run.check("no card sent twice", cs_sent <= cards, f"{cs_sent} sent, {cards} expected")
    run.check("every card job done or still queued", card_jobs.get("pending", 0) <= queued, dict(card_jobs))
    run.check("identical answers to every delivery after the first answer; `success` or the same while it runs",
              differing == 0, f"{differing} pushes answered differently")
    run.check("no 5xx", not any(s >= 500 for s in statuses), dict(statuses))
    budget = answer_budget()
    run.check(f"every answer inside {budget:g} s", max(latencies) < budget, f"max {ms(max(latencies))} ms")


def _offered_rate(h, target: float) -> float:
    """New pushes a second the stand-ins can take with room to spare: the target, or less when a push
    takes long here (moto serialises DynamoDB; a shared machine slows it), so that the storm tests the
    code's dedupe rather than the stand-in's capacity. Half the sequential capacity, over 4 deliveries."""
    sim = h.simulator(OA)
    took = []
    for i in range(8):
        push = sim.push(sim.text("oCalibrate000000000000000001", f"calibrate {time.time_ns()} {i}"), "plain")
        took.append(h.post_push(OA, push)[2])
    per_push = sorted(took)[len(took) // 2]
    return max(1.0, min(target, 0.5 / per_push / len(RETRY_OFFSETS) * SENDERS / 2))


def _compare_answers(answers: dict) -> tuple[int, int]:
    """Pushes whose deliveries disagree, and how many deliveries overlapped a running first one.

    WeChat retries only after 5 s without an answer, so every delivery it can see starts after an earlier
    one answered: those must match. A delivery that overlaps a still-running one may say ``success``."""
    differing = overlapping = 0
    for deliveries in answers.values():
        first_end = min(end for _, end, _ in deliveries)
        reference = [r for _, end, r in deliveries if end == first_end][0]
        after = {r for start, _, r in deliveries if start >= first_end}
        during = {r for start, _, r in deliveries if start < first_end}
        overlapping += len(during) and sum(1 for s, _, _ in deliveries if s < first_end) - 1
        final = after | {reference}
        if len(final) > 1 or not during <= final | {"success"} or any(r.startswith("HTTP") for r in final):
            differing += 1
    return differing, overlapping


def _normalise(reply: str) -> str:
    """A passive reply without its CreateTime (WeChat ignores it; a stored reply keeps the first one)."""
    import re

    return re.sub(r"<CreateTime>\d+</CreateTime>", "", reply)
