"""Answering an Official Account push: verify, parse, decide the reply, record it on the unified user.

The critical path costs one DynamoDB request for a known user (the identity touch, which also dedupes and
stores the reply for WeChat's retries) and two for a first contact. Work that needs WeChat's API goes to
the job queue. When DynamoDB fails or the time budget runs short, the push is queued for the worker to
record later and WeChat gets ``success``: nothing accepted is lost, and WeChat never waits past its 5 s.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime

from aws_lambda_powertools import Logger

from wxloop.adapters.dynamo import identities
from wxloop.domain import rules as rule_engine
from wxloop.domain.inbound import Inbound
from wxloop.protocol import http
from wxloop.protocol.http import HttpOut
from wxloop.protocol.outbound import passive_xml
from wxloop.protocol.push import parse_inbound
from wxloop.services import push_seam, rules_cache
from wxloop.services.push_seam import (  # noqa: F401 - the seam's names, still reachable from here
    CALL_RESERVE_SECONDS,
    NOT_FOUND,
    OK_SUCCESS,
    Count,
    OutOfTime,
    PushNotAccepted,
    ReplyPlan,
    bind_plain_query,
    deadline_for,
    deliver_outbox,
    endpoint_for,
    handle_get,
    late,
    placeholder_values,
    record_later_queued,
)
from wxloop.services.recording import (  # noqa: F401 - record_later: the worker's entry, kept here
    ab_of,
    follow_up_jobs,
    journey_event,
    record_later,
)

logger = Logger(child=True)
PLATFORM = "oa"
# Pushes that report on the account's own sends, not on a person's action: no touch, no reply.
SYSTEM_EVENTS = frozenset({"templatesendjobfinish", "masssendjobfinish"})


def handle(request: http.Request, *, count: Count) -> HttpOut:
    """Answer one decoded request to an OA push endpoint (GET verification, POST push)."""
    return push_seam.dispatch(request, count=count, kind=PLATFORM, post=handle_post)


def handle_post(app_id: str, query: Mapping[str, str], body: bytes, *, deadline: float, count: Count) -> HttpOut:
    """Answer one POSTed push. ``deadline`` is the ``time.monotonic()`` by which WeChat must have it."""
    endpoint = endpoint_for(app_id, PLATFORM)
    if endpoint is None:
        return NOT_FOUND

    def opener():
        opened = endpoint.open(dict(query), body)
        return opened, parse_inbound(opened.xml)

    pushed = push_seam.open_push(app_id, opener, count)
    if isinstance(pushed, HttpOut):
        return pushed
    opened, inb = pushed
    if inb.is_event and inb.event in SYSTEM_EVENTS:
        count("SystemEvent")
        return OK_SUCCESS
    refused = push_seam.refuse_replayed_query(app_id, opened, count)
    if refused is not None:
        return refused
    xml = answer(app_id, inb, deadline=deadline, count=count)
    if xml is None:
        return OK_SUCCESS
    return HttpOut(200, endpoint.seal(xml, opened), "application/xml; charset=utf-8")


def answer(app_id: str, inb: Inbound, *, deadline: float, count: Count) -> str | None:
    """Decide the reply, record the push on the sender's identity with its follow-up jobs.

    Returns the plain reply XML, or None to answer ``success``. Follow-up jobs (the unionid of a new
    follower, a Mini Program card) ride on the event the write leaves on the identity item; the table's
    stream queues them (``wxloop.services.journey``), so none is lost when SQS fails and the webhook makes
    no SQS request of its own.
    """
    now = int(time.time())
    recorded = push_seam.record_within_budget(
        app_id, inb, now=now, deadline=deadline, count=count, platform=PLATFORM, replan=first_contact_plan,
        decide=lambda: plan_reply(app_id, inb, now=now, first_contact=False),
        undecided=lambda: plain_event(app_id, inb, now))
    if recorded is None:
        return None
    touch, plan = recorded
    if touch.status == "duplicate":
        count("Deduped")
        return touch.stored_reply
    xml = plan.xml
    if plan.personal:
        xml = _render_personal(app_id, inb, plan.decision, touch.uid, now=now, deadline=deadline, count=count)
    count("Replied" if xml else "Success")
    return xml


def plain_event(app_id: str, inb: Inbound, now: int) -> dict:
    """The event of a push recorded without a decision (too late to decide)."""
    return journey_event(app_id, inb, now=now, jobs=follow_up_jobs(app_id, inb, None))


def plan_reply(app_id: str, inb: Inbound, *, now: int, first_contact: bool) -> ReplyPlan:
    """Decide the reply to ``inb`` (pure but for the rules cache) and the event the write leaves."""
    trigger = rule_engine.trigger_for(inb)
    rules = rules_cache.current(app_id)
    decision = rules.decide(trigger, now=datetime.fromtimestamp(now, UTC), first_time=first_contact,
                            person=inb.openid) if trigger else None
    if decision is None:
        jobs = follow_up_jobs(app_id, inb, None, first_contact=first_contact)
        return ReplyPlan(None, None, journey_event(app_id, inb, now=now, jobs=jobs), False)
    # a reply with placeholders is rendered after the write, with the person's values
    reply = None if decision.needs else decision.reply
    jobs = follow_up_jobs(app_id, inb, reply, first_contact=first_contact) + action_jobs(app_id, inb, decision)
    event = journey_event(app_id, inb, now=now, rule_id=decision.rule_id, jobs=jobs, ab=ab_of(decision))
    xml = passive_xml(reply, openid=inb.openid, account=inb.to_user, now=now) if reply else None
    return ReplyPlan(decision, xml, event, bool(decision.needs))


def action_jobs(app_id: str, inb: Inbound, decision: rule_engine.Decision | None) -> list[dict]:
    """The job a rule's action needs: an opt-out keyword withdraws marketing consent (rides the outbox, so
    the webhook spends no extra request and the withdrawal is not lost)."""
    if decision is None or decision.action != "opt_out_marketing":
        return []
    return [{"id": f"{inb.dedupe_key}:consent", "kind": "consent_withdraw", "app_id": app_id, "openid": inb.openid,
             "at": inb.create_time}]


def first_contact_plan(app_id: str, inb: Inbound, plan: ReplyPlan, *, now: int) -> ReplyPlan:
    """The plan for a person met for the first time: decided again only where being new can change the
    answer (a follow's first welcome); otherwise the same reply, plus the first contact's jobs."""
    if inb.is_event and inb.event == "subscribe":
        return plan_reply(app_id, inb, now=now, first_contact=True)
    reply = None if plan.decision is None or plan.personal else plan.decision.reply
    rule_id = plan.decision.rule_id if plan.decision is not None else ""
    event = journey_event(app_id, inb, now=now, rule_id=rule_id,
                          jobs=follow_up_jobs(app_id, inb, reply, first_contact=True)
                          + action_jobs(app_id, inb, plan.decision), ab=ab_of(plan.decision))
    return ReplyPlan(plan.decision, plan.xml, event, plan.personal)


def record_push(app_id: str, inb: Inbound, plan: ReplyPlan, *, now: int, deadline: float, platform: str = "oa",
                replan=None) -> tuple[identities.Touch, ReplyPlan]:
    """``push_seam.record_push`` with the OA's first-contact plan (``first_contact_plan``) by default."""
    return push_seam.record_push(app_id, inb, plan, now=now, deadline=deadline, platform=platform,
                                 replan=replan or first_contact_plan)


def _render_personal(app_id: str, inb: Inbound, decision, uid: str, *, now: int, deadline: float,
                     count: Count) -> str | None:
    """A reply with placeholders: load the person, render, and keep the reply for WeChat's retries in one
    more write, which also carries a Mini Program card among the reply as an outbox event (the stream
    queues it, as for the jobs of the touch). Each AWS call starts only while one bounded call and the
    answer still fit in the budget; what does not fit is skipped (placeholders show their fallbacks)."""
    reply = rule_engine.render(decision.reply, push_seam.person_values(uid, deadline))
    xml = passive_xml(reply, openid=inb.openid, account=inb.to_user, now=now)
    jobs = [j for j in follow_up_jobs(app_id, inb, reply) if j["kind"] == "cs_send"]
    outbox = push_seam.outbox_event(app_id, inb, jobs, now)
    if (xml or outbox) and time.monotonic() < deadline - CALL_RESERVE_SECONDS:
        try:
            if identities.store_reply(app_id, inb.openid, inb.dedupe_key, xml, outbox=outbox):
                return xml
        except Exception as exc:  # retries then get "success"; the reply itself still goes out
            logger.warning("reply not kept for retries", extra={"error": repr(exc)[:200]})
    deliver_outbox(app_id, inb, jobs, outbox, deadline=deadline, count=count)
    return xml
