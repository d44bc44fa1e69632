"""Answering a Mini Program push: verify, parse (XML or JSON), decide, record it on the unified user.

The same seam as the OA webhook (``wxloop.services.push_seam``: endpoint, deadline, plain-mode query binding,
recording within the budget, queueing a push the table did not take). What differs: an MP cannot answer passively, so
the rule engine's answer rides on the identity write as a customer-service job (the stream queues it, the
worker sends it inside the MP's own windows, ``reach.MP_WINDOWS``), except ``transfer_customer_service``,
the one passive reply an MP has. Subscribe-message events (popup, change, sent) land on the identity like
any push; the stream turns them into the person's subscribe credits (``services.journey.credit_changes``).
A known person's push costs one DynamoDB request (plain mode adds its query binding), a first contact two.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime

from aws_lambda_powertools import Logger

from wxloop import config as config_mod
from wxloop.domain import rules as rule_engine
from wxloop.domain.inbound import Inbound
from wxloop.domain.replies import Reply
from wxloop.protocol import http
from wxloop.protocol import mp_push as wire
from wxloop.protocol.http import HttpOut
from wxloop.protocol.outbound import cs_message
from wxloop.services import push_seam, rules_cache
from wxloop.services.push_seam import NOT_FOUND, OK_SUCCESS, Count, ReplyPlan
from wxloop.services.recording import ab_of, journey_event

logger = Logger(child=True)
PLATFORM = "mp"
# What an MP pushes that wxloop acts on (customer-service messages, session entry, subscribe-message
# events); anything else is answered "success" and logged, never recorded.
CS_MESSAGES = frozenset({"text", "image", "miniprogrampage"})
EVENTS = frozenset({"user_enter_tempsession", "subscribe_msg_popup_event", "subscribe_msg_change_event",
                    "subscribe_msg_sent_event"})
# Replies an MP customer-service message can carry (no voice, video, music or news).
CS_KINDS = frozenset({"text", "image", "mp_card"})
CONTENT_TYPES = {"xml": "application/xml; charset=utf-8", "json": "application/json; charset=utf-8"}


def handle(request: http.Request, *, count: Count) -> HttpOut:
    """Answer one decoded request to an MP push endpoint (GET verification, POST push)."""
    return push_seam.dispatch(request, count=count, kind=PLATFORM, post=handle_post)


def handled(inb: Inbound) -> bool:
    """Whether wxloop acts on this push (see ``CS_MESSAGES`` and ``EVENTS``)."""
    return inb.event in EVENTS if inb.is_event else inb.msg_type in CS_MESSAGES


def handle_post(app_id: str, query: Mapping[str, str], body: bytes, *, deadline: float, count: Count) -> HttpOut:
    """Answer one POSTed push (XML or JSON, plain, compat or safe). ``deadline``: ``time.monotonic()`` by
    which WeChat must have the answer."""
    endpoint = push_seam.endpoint_for(app_id, PLATFORM)
    if endpoint is None:
        return NOT_FOUND
    account = config_mod.load_config().account(app_id)

    def opener():
        opened = wire.open_push(endpoint, dict(query), body, account.push_format if account else "xml")
        return opened, wire.parse(opened)

    pushed = push_seam.open_push(app_id, opener, count)
    if isinstance(pushed, HttpOut):
        return pushed
    opened, inb = pushed
    if not handled(inb):
        count("Unhandled")
        logger.info("push type not handled", extra={"kind": inb.kind[:80], "app_id": app_id})
        return OK_SUCCESS
    refused = push_seam.refuse_replayed_query(app_id, opened, count)
    if refused is not None:
        return refused
    reply = answer(app_id, inb, fmt=opened.fmt, deadline=deadline, count=count)
    if reply is None:
        return OK_SUCCESS
    return HttpOut(200, endpoint.seal(reply, opened), CONTENT_TYPES[opened.fmt])


def answer(app_id: str, inb: Inbound, *, fmt: str, deadline: float, count: Count) -> str | None:
    """Decide, then record the push with its customer-service job on the sender's identity. Returns the
    passive reply body (``transfer_customer_service`` in ``fmt``), or None to answer ``success``."""
    now = int(time.time())
    recorded = push_seam.record_within_budget(
        app_id, inb, now=now, deadline=deadline, count=count, platform=PLATFORM, replan=_same_plan,
        decide=lambda: plan_reply(app_id, inb, now=now, fmt=fmt),
        undecided=lambda: journey_event(app_id, inb, now=now, platform=PLATFORM))
    if recorded is None:
        return None
    touch, plan = recorded
    if touch.status == "duplicate":
        count("Deduped")
        return touch.stored_reply
    if plan.personal and plan.decision is not None:
        _send_personal(app_id, inb, plan.decision.reply, touch.uid, now=now, deadline=deadline, count=count)
    count("Replied" if plan.xml else ("Queued_cs" if plan.personal or plan.event.get("jobs") else "Success"))
    return plan.xml


def plan_reply(app_id: str, inb: Inbound, *, now: int, fmt: str) -> ReplyPlan:
    """Ask the rule engine (pure but for the rules cache) and build the event the write leaves: a
    customer-service job for the answer, or the passive ``transfer_customer_service`` body. A reply with
    placeholders is rendered after the write (``personal``), with the person's values."""
    trigger = rule_engine.trigger_for(inb)
    decision = rules_cache.current(app_id).decide(trigger, now=datetime.fromtimestamp(now, UTC),
                                                  person=inb.openid) if trigger else None
    if decision is None:
        return ReplyPlan(None, None, journey_event(app_id, inb, now=now, platform=PLATFORM), False)
    reply, personal = decision.reply, bool(decision.needs)
    body = wire.transfer_reply(inb, now=now, fmt=fmt) if reply.kind == "transfer_customer_service" else None
    jobs = cs_jobs(app_id, inb, reply) if body is None and not personal else []
    event = journey_event(app_id, inb, now=now, rule_id=decision.rule_id, jobs=jobs, platform=PLATFORM,
                          ab=ab_of(decision))
    return ReplyPlan(decision, body, event, personal and body is None)


def _same_plan(app_id: str, inb: Inbound, plan: ReplyPlan, *, now: int) -> ReplyPlan:
    return plan  # an MP has no first-time welcome, and learns unionids at login (jscode2session), not here


def cs_jobs(app_id: str, inb: Inbound, reply: Reply) -> list[dict]:
    """The customer-service send of ``reply`` to the sender, as a job id'd by the push (a repeat is a no-op);
    none for a kind an MP's customer service cannot carry."""
    message = cs_message(reply) if reply.kind in CS_KINDS else None
    if not message:
        if reply.kind not in CS_KINDS:
            logger.warning("reply kind not sendable to a Mini Program", extra={"kind": reply.kind})
        return []
    return [{"id": f"{inb.dedupe_key}:cs", "kind": "cs_send", "platform": PLATFORM, "app_id": app_id,
             "openid": inb.openid, "message": message}]


def _send_personal(app_id: str, inb: Inbound, template: Reply, uid: str, *, now: int, deadline: float,
                   count: Count) -> None:
    """Render a reply with placeholders with the person's values (one read while it fits) and leave its
    customer-service job as an outbox event (``push_seam.deliver_outbox``)."""
    jobs = cs_jobs(app_id, inb, rule_engine.render(template, push_seam.person_values(uid, deadline)))
    if jobs:
        outbox = push_seam.outbox_event(app_id, inb, jobs, now)
        push_seam.deliver_outbox(app_id, inb, jobs, outbox, deadline=deadline, count=count)
