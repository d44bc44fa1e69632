"""(a) Warm CPU per safe-mode text message through the real OA handler, AWS calls stubbed at zero cost,
beside a bare-wechatpy floor (verify + decrypt + parse + reply + encrypt). Budget: handler <= 1.5x floor."""

from __future__ import annotations

import contextlib
import os
import statistics
import time

from benchmarks._env import OA_AES_KEY, OA_APP, OA_TOKEN, setup_env


class _StubDynamo:
    """Answers the identity touch as DynamoDB would for a known user, without any I/O."""

    def __init__(self):
        from wxloop.adapters.repository import marshal

        self._item = {"Attributes": marshal({"pk": "ID#x", "sk": "ID", "uid": "u1", "last_at": 1})}

    def update_item(self, **_kw):
        return self._item

    def get_item(self, **_kw):  # the rules cache's version check: no rule set stored
        return {}


def _sample(fn, n: int) -> float:
    """CPU microseconds per call over ``n`` calls."""
    start = time.process_time_ns()
    for _ in range(n):
        fn()
    return (time.process_time_ns() - start) / n / 1000


# long: floor and handler set up side by side and sampled alternately, so noise hits both alike
def run(n: int = 200, samples: int = 60) -> dict:
    """``samples`` short runs of ``n`` calls each, floor and handler alternating, so that noise from other
    processes hits both alike. Noise only ever adds time, so the ratio is taken of the lowest decile of
    each (the median ratio is reported beside it)."""
    setup_env()
    from wechatpy.crypto import WeChatCrypto
    from wechatpy.parser import parse_message
    from wechatpy.replies import TextReply
    from wechatpy.utils import check_signature

    import wxloop.protocol  # noqa: F401
    from devstack.gateway import LambdaContext, load_function
    from devstack.simulator import Simulator, http_event
    from wxloop.adapters import aws

    sim = Simulator(OA_APP, OA_TOKEN, OA_AES_KEY)
    push = sim.push(sim.text("oBenchUser0000000000000001", "zzz no rule matches"), "safe")
    query, body = push.query, push.body

    crypto = WeChatCrypto(OA_TOKEN, OA_AES_KEY, OA_APP)

    def floor():
        check_signature(OA_TOKEN, query["signature"], query["timestamp"], query["nonce"])
        xml = crypto.decrypt_message(body, query["msg_signature"], query["timestamp"], query["nonce"])
        msg = parse_message(xml)
        reply = TextReply(content="Default reply", message=msg).render()
        return crypto.encrypt_message(reply, query["nonce"], query["timestamp"])

    aws._clients["dynamodb"] = _StubDynamo()
    handler = load_function("OaWebhookFunction")
    event = http_event("POST", OA_APP, query, body)
    ctx = LambdaContext("bench")

    def through_handler():
        event["requestContext"]["timeEpoch"] = int(time.time() * 1000)
        out = handler(event, ctx)
        assert out["statusCode"] == 200 and "<Encrypt>" in out["body"], out
        return out

    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # EMF metrics go to stdout
        through_handler()
        floor()
        floor_runs, handler_runs = [], []
        for _ in range(samples):
            floor_runs.append(_sample(floor, n))
            handler_runs.append(_sample(through_handler, n))
    aws.reset()

    def decile(xs: list[float]) -> float:
        return statistics.quantiles(xs, n=10)[0]

    floor_us, handler_us = decile(floor_runs), decile(handler_runs)
    ratio = handler_us / floor_us
    return {"name": "webhook_warm_cpu", "unit": "us/message", "handler": round(handler_us, 1),
            "floor_bare_wechatpy": round(floor_us, 1), "ratio": round(ratio, 2), "budget_ratio": 1.5,
            "within_budget": ratio <= 1.5, "messages": n * samples,
            "handler_median": round(statistics.median(handler_runs), 1),
            "floor_median": round(statistics.median(floor_runs), 1),
            "ratio_of_medians": round(statistics.median(handler_runs) / statistics.median(floor_runs), 2)}


if __name__ == "__main__":
    from benchmarks._env import dumps

    print(dumps(run()))
