"""Races: many instances doing the same thing at the same moment → one effect.

A scenario for a new race (rewards for one invitee, merges of the same two people, a campaign run started
twice) is one more function here, built on ``together``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable

from reliability.harness import MP, OA, OTHER_MP
from reliability.registry import Run, scenario


def together(n: int, fn: Callable[[int], object]) -> list[object]:
    """Call ``fn(i)`` from ``n`` threads released at once; the results (an exception counts as a result)."""
    gate, out = threading.Barrier(n), [None] * n

    def worker(i: int) -> None:
        gate.wait()
        try:
            out[i] = fn(i)
        except Exception as exc:  # kept: the check decides whether an error is acceptable
            out[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _token_fetches(fake, app_id: str) -> int:
    return sum(1 for c in fake.calls() if c["path"] in ("/cgi-bin/stable_token", "/cgi-bin/token")
               and app_id in (str((c.get("json") or {}).get("appid")), str(c["query"].get("appid"))))


@scenario("token_refresh_storm", "races", "20 instances need a token at once, then all see 40001 → 1 fetch each time")
def token_refresh_storm(run: Run) -> None:
    from wxloop.adapters.wechat import new_client

    h, app = run.harness, OTHER_MP
    before = _token_fetches(h.fake, app)
    clients = [new_client(app) for _ in range(20)]  # 20 containers: each its own client and memory cache
    got = together(20, lambda i: clients[i].store.token())
    first = _token_fetches(h.fake, app) - before
    errors = [g for g in got if isinstance(g, Exception)]
    run.check("no instance failed", not errors, [repr(e) for e in errors[:3]])
    run.check("one token for all", len({g for g in got if isinstance(g, str)}) == 1)
    run.check("1 fetch for 20 instances", first == 1, first)
    # WeChat invalidates the token (a fetch elsewhere): every instance's call fails with 40001 at once
    h.fake.rotate_token(app)
    stale = got[0]
    before = _token_fetches(h.fake, app)
    for c in clients:
        c.store._cached = None  # as after the cache margin: each instance reads the stored (stale) token
    after = together(20, lambda i: (clients[i].store.expire_if(stale), clients[i].store.token())[1])
    second = _token_fetches(h.fake, app) - before
    run.check("compare-and-expire: 1 fetch after a 40001 storm", second == 1, second)
    run.check("all instances on the new token", len({a for a in after if isinstance(a, str)}) == 1 and stale not in after)
    run.figures.update(instances=20, fetches_cold=first, fetches_after_40001=second)


@scenario("first_contact_race", "races", "20 first pushes of one new person at once → 1 person, 20 records")
def first_contact_race(run: Run) -> None:
    h = run.harness
    sim = h.simulator(OA)
    openid = f"oRace{secrets.token_hex(6)}".ljust(28, "x")
    base = int(time.time())
    pushes = [sim.text(openid, f"race {i}", msg_id=base * 100 + i) for i in range(20)]
    statuses = together(20, lambda i: h.post_push(OA, sim.push(pushes[i], "plain"))[0])
    h.settle(timeout=run.size(20, 60))
    items = h.items()
    ident = [i for i in items if i["pk"] == f"ID#{OA}#{openid}"]
    uids = {i.get("uid") for i in ident}
    people = [i for i in items if i.get("sk") == "PROFILE" and i["pk"] in {f"USER#{u}" for u in uids}]
    records = sum(1 for i in items if str(i.get("sk", "")).startswith("EV#") and i["pk"] in {f"USER#{u}" for u in uids})
    run.figures.update(statuses=dict(Counter(statuses)), identities=len(ident), people=len(people), records=records)
    run.check("all answered 200", all(s == 200 for s in statuses), dict(Counter(statuses)))
    run.check("1 identity, 1 person", len(ident) == 1 and len(people) == 1, (len(ident), len(people)))
    run.check("20 journey records", records == 20, records)


@scenario("login_race", "races", "20 concurrent logins of one new MP user → 1 person, 20 valid tokens")
def login_race(run: Run) -> None:
    h = run.harness
    openid = f"oLogin{secrets.token_hex(6)}".ljust(28, "x")
    retries = Counter()

    def login(i: int) -> str:
        # What an MP client does: 503 "try again" (slow storage) → retry; 400 invalid_code → wx.login again
        # for a new code (WeChat's codes are single-use, and the harness resends a request once when its
        # kept-alive connection drops, which may deliver a code twice)
        for attempt in range(3):
            try:
                return h.login(openid)
            except RuntimeError as exc:
                if not (" 503 " in str(exc) or "invalid_code" in str(exc)) or attempt == 2:
                    raise
                retries[i] += 1
        raise AssertionError("unreachable")

    tokens = together(20, login)
    ok = [t for t in tokens if isinstance(t, str)]
    uids = set()
    for t in ok:
        for _ in range(3):  # a 503 says "try again" (slow storage), not who the token belongs to
            status, doc, _ = h.mp_call("GET", "me", token=t)
            if status != 503:
                break
        uids.add(doc.get("uid") or str(doc)[:40] if status == 200 else f"HTTP {status}")
    ident = [i for i in h.items() if i["pk"] == f"ID#{MP}#{openid}"]
    run.figures.update(logins=20, retried=sum(retries.values()), tokens=len(ok), distinct_people=len(uids), identities=len(ident))
    run.check("every login answered", len(ok) == 20, [repr(t) for t in tokens if not isinstance(t, str)][:3])
    run.check("one person behind every token", len(uids) == 1, uids)
    run.check("one identity item", len(ident) == 1, len(ident))
