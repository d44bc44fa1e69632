"""A reward is ONE ``TransactWriteItems``: DynamoDB requests of ``rewards.qualify`` (a bound phone paying the
inviter), of a repeat (already rewarded: reads only), and of a reversal, counted with a botocore hook
against moto in-process. Budget: exactly one TransactWriteItems and no other write per reward or reversal;
none for a repeat."""

from __future__ import annotations

import os
import time
from collections import Counter

from benchmarks._env import dumps, setup_env

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
DOC = {"campaigns": [{"id": "welcome-phone", "qualify": "phone_bound", "points": 100,
                      "caps": {"per_inviter_per_day": 5, "per_inviter": 50, "total": 1000}},
                     {"id": "first-order", "qualify": {"event": "first_order"}, "points": 500,
                      "reverse_on": ["order_refunded"]}]}


# long: the reward path set up and measured step by step inside one moto session
def run() -> dict:
    setup_env()
    from moto import mock_aws

    with mock_aws():
        import boto3

        from devstack.table import create_table
        from wxloop.adapters import aws, mp_store
        from wxloop.adapters.dynamo import rewards as store
        from wxloop.config import load_config
        from wxloop.domain.invites import InviteRef, sign_ref
        from wxloop.domain.rewards import InviteeEvent
        from wxloop.services import rewards

        aws.reset()
        rewards.reset()
        create_table(boto3.client("dynamodb", region_name="us-east-1"), os.environ["TABLE_NAME"])
        now = int(time.time())
        app = next(a for a, acc in load_config().accounts.items() if acc.kind == "mp")
        keys = [k.get_secret_value() for k in load_config().session_keys]

        def person(openid: str, at: int) -> str:
            return mp_store.create_mp_identity(app, openid, now=at, event={"id": openid, "type": "mp.first_launch",
                                                                           "app": app, "at": at},
                                               first_touch={"channel": "mp", "app_id": app, "at": at})

        store.put_reward_config(DOC, version="bench", now=now)
        inviter, invitee, buyer = person("oInv", now - 5000), person("oNew", now), person("oBuyer", now)
        rewards.attribute(app, invitee, ref=sign_ref(InviteRef(inviter, "welcome-phone", now), keys), now=now)
        rewards.attribute(app, buyer, ref=sign_ref(InviteRef(inviter, "first-order", now), keys), now=now)
        rewards.campaigns()  # the config cache, as in a warm container
        calls: Counter = Counter()
        aws.client("dynamodb").meta.events.register(
            "before-call", lambda model, **_: calls.__setitem__(model.name, calls[model.name] + 1))

        def measure(event: InviteeEvent) -> tuple[str, dict]:
            calls.clear()
            outcome = rewards.qualify(event)
            return outcome, dict(calls)

        cases = {
            "reward_phone_bound": measure(InviteeEvent("phone_bound", invitee, now + 1)),
            "repeat_already_rewarded": measure(InviteeEvent("phone_bound", invitee, now + 2)),
            "reward_first_order": measure(InviteeEvent("event", buyer, now + 3, name="first_order")),
            "reversal_order_refunded": measure(InviteeEvent("event", buyer, now + 4, name="order_refunded")),
        }
        aws.reset()
        rewards.reset()

    out: dict = {"name": "reward_requests", "unit": "requests", "cases": {}}
    within = True
    for case, (outcome, ops) in cases.items():
        writes = {k: v for k, v in ops.items() if k in WRITES}
        want = {} if case.startswith("repeat") else {"TransactWriteItems": 1}
        ok = writes == want
        within = within and ok
        out["cases"][case] = {"outcome": outcome, "dynamodb_requests": sum(ops.values()), "operations": ops,
                              "budget": "no write" if not want else "one TransactWriteItems, no other write",
                              "ok": ok}
    out["within_budget"] = within
    return out


if __name__ == "__main__":
    print(dumps(run()))
