"""Security: nobody acts for someone else, and no request that fails authentication changes anything.

Every attempt is made over HTTP; the tap (``devstack.faults``) counts the write requests the handlers made
meanwhile, which must stay 0.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable

from devstack import faults
from reliability.harness import MP, OA, OTHER_MP, SAFE_OA
from reliability.registry import Run, scenario


def _writes_during(fn: Callable[[], tuple[int, object]]) -> tuple[int, object, int]:
    before = faults.tap().writes(requests_only=True)
    status, body = fn()
    return status, body, faults.tap().writes(requests_only=True) - before


def _tamper(token: str) -> str:
    i = len(token) // 2
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]


def _expired_token(h, uid: str) -> str:
    from wxloop.domain.session import SessionClaims, issue

    key = h.accounts["session_keys"][0].encode()
    now = int(time.time())
    return issue(SessionClaims(MP, uid, 0, now - 9000, now - 1800), [key])


@scenario("mp_api_auth", "security", "MP API: missing, forged, tampered, expired, other-app tokens; another's id")
def mp_api_auth(run: Run) -> None:
    h = run.harness
    me = h.login(f"oSecMe{secrets.token_hex(6)}".ljust(28, "x"))
    other = f"oSecOther{secrets.token_hex(5)}".ljust(28, "x")
    h.login(other)
    other_app = h.login(f"oSecApp{secrets.token_hex(6)}".ljust(28, "x"), app_id=OTHER_MP)
    _, my_doc, _ = h.mp_call("GET", "me", token=me)
    uid = my_doc.get("uid") or my_doc.get("person", {}).get("uid") or "u-unknown"
    event = [{"name": "view_item", "ts": int(time.time() * 1000)}]
    tokens = {"none": None, "garbage": "not-a-token", "forged": "v1." + base64.urlsafe_b64encode(
        json.dumps({"app_id": MP, "uid": uid}).encode()).decode() + ".AAAA", "tampered": _tamper(me),
              "expired": _expired_token(h, uid), "other_app": other_app}
    results = {}
    for label, token in tokens.items():
        for method, path, body in (("GET", "me", None), ("POST", "events", event),
                                   ("PUT", "preferences", {"topics": []})):
            status, _, writes = _writes_during(lambda t=token, m=method, p=path, b=body: h.mp_call(m, p, b, token=t)[:2])
            results[f"{label} {method} {path}"] = (status, writes)
    # another person's identity in the body: the schema refuses any field naming a person
    for field in ("openid", "uid", "unionid"):
        body = [{**event[0], field: other}]
        status, _, writes = _writes_during(lambda b=body: h.mp_call("POST", "events", b, token=me)[:2])
        results[f"{field} in body"] = (status, writes)
    status, _, writes = _writes_during(lambda: h.mp_call("GET", "me", token=me, app_id=OTHER_MP)[:2])
    results["my token on the other MP"] = (status, writes)
    run.figures["attempts"] = len(results)
    run.figures["statuses"] = sorted({s for s, _ in results.values()})
    run.figures["writes"] = sum(w for _, w in results.values())
    for label, (status, writes) in results.items():
        run.check(f"{label}: refused", status in (400, 401, 403, 409, 422), status)
        run.check(f"{label}: nothing written", writes == 0, writes)
    status, _, _ = h.mp_call("POST", "events", event, token=me)
    run.check("the real token still works (the refusals are not blanket)", status == 200, status)


def _downgrades(h) -> dict[str, object]:
    """Pushes to the safe-mode account that a forger could send: each must be refused."""
    safe = h.simulator(SAFE_OA)
    other = h.simulator(OA)
    openid = f"oSecDown{secrets.token_hex(5)}".ljust(28, "x")
    xml = safe.text(openid, "优惠券")
    plain = safe.push(xml, "plain")
    enc = safe.push(xml, "safe")
    no_msg_sig = type(enc)({k: v for k, v in enc.query.items() if k != "msg_signature"}, enc.body, True)
    no_aes = type(enc)({k: v for k, v in enc.query.items() if k not in ("encrypt_type", "msg_signature")}, xml, False)
    forged_sig = type(enc)({**enc.query, "msg_signature": "0" * 40}, enc.body, True)
    compat = safe.push(xml, "compat")
    compat_plain_only = type(compat)({k: v for k, v in compat.query.items() if k not in ("encrypt_type", "msg_signature")},
                                     compat.body, False)
    old = safe.push(xml, "safe", timestamp=int(time.time()) - 3600)
    wrong_token = safe.push(xml, "safe", token="not-the-token")  # noqa: S106 - a forger's wrong token
    for_other_app = other.push(other.text(openid, "x"), "safe")  # the same AES key, another app id inside
    return {"plain body": plain, "encrypted without msg_signature": no_msg_sig, "plain body, aes flags dropped": no_aes,
            "forged msg_signature": forged_sig, "compat with aes flags dropped": compat_plain_only,
            "replay an hour old": old, "signed with another token": wrong_token,
            "ciphertext for another app": for_other_app}


@scenario("push_downgrade", "security", "Safe-mode account: plain, stripped, forged, replayed, cross-app pushes")
def push_downgrade(run: Run) -> None:
    h = run.harness
    attempts = _downgrades(h)
    for label, push in attempts.items():
        status, body, writes = _writes_during(lambda p=push: h.post_push(SAFE_OA, p)[:2])
        run.check(f"{label}: 401/403", status in (401, 403), status)
        run.check(f"{label}: nothing written", writes == 0, writes)
    run.figures["attempts"] = len(attempts)
    good = h.simulator(SAFE_OA).push(h.simulator(SAFE_OA).text(f"oSecOk{secrets.token_hex(6)}".ljust(28, "x"), "hi"), "safe")
    status, _, writes = _writes_during(lambda: h.post_push(SAFE_OA, good)[:2])
    run.check("a genuine safe-mode push is still accepted and written", status == 200 and writes >= 1, (status, writes))
