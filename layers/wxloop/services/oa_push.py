"""Answering an Official Account push: verify, parse, decide the reply, record it on the unified user.

The critical path costs one DynamoDB request for a known user (the identity touch, which also dedupes and
stores the reply for WeChat's retries) and two for a first contact. Work that needs WeChat's API goes to
the job queue. When DynamoDB fails or the time budget runs short, the push is queued for the worker to
record later and WeChat gets ``success``: nothing accepted is lost, and WeChat never waits past its 5 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from aws_lambda_powertools import Logger

from wxloop import config as config_mod
from wxloop.adapters import queue
from wxloop.adapters.dynamo import codec, identities, people, query_bindings
from wxloop.domain import rules as rule_engine
from wxloop.domain.inbound import Inbound
from wxloop.protocol import http
from wxloop.protocol.http import HttpOut
from wxloop.protocol.outbound import SUCCESS, passive_xml
from wxloop.protocol.push import Malformed, Opened, PushEndpoint, PushRejected, parse_inbound
from wxloop.services import rules_cache
from wxloop.services.recording import (  # noqa: F401 - record_later: the worker's entry, kept here
    first_touch,
    follow_up_jobs,
    inbound_to_dict,
    journey_event,
    record_later,
)
from wxloop.settings import settings

logger = Logger(child=True)

# Pushes that report on the account's own sends, not on a person's action: no touch, no reply.
SYSTEM_EVENTS = frozenset({"templatesendjobfinish", "masssendjobfinish"})
# Time kept back for answering once the critical writes are done (render, encrypt, the HTTP hop).
ANSWER_RESERVE_SECONDS = 0.3
GATEWAY_MAX_WAIT_SECONDS = 30.0  # an HTTP API's longest integration timeout
# Latest start of a write before the budget's end: with the webhook's client (WXLOOP_AWS_* in the template:
# one attempt, 0.3 s connect, 0.8 s read) a write takes 1.1 s at worst and so does the fallback queue send
# (or the re-touch after losing a first-contact race), so a write started 1.7 s before a 4 s budget ends
# still answers by 4.6 s, inside WeChat's 5 s.
WRITE_RESERVE_SECONDS = 1.7
# One more bounded AWS call (1.1 s at worst, as above) and the answer after it.
CALL_RESERVE_SECONDS = 1.1 + ANSWER_RESERVE_SECONDS

Count = Callable[[str], None]


NOT_FOUND = HttpOut(404, "unknown app")
OK_SUCCESS = HttpOut(200, SUCCESS)


@lru_cache(maxsize=64)
def _endpoint(app_id: str, token: str, aes_key: str | None, skew: int, mode: str) -> PushEndpoint:
    return PushEndpoint(app_id, token, aes_key, skew_seconds=skew, mode=mode)


def endpoint_for(app_id: str, kind: str) -> PushEndpoint | None:
    """The push endpoint of a configured account of ``kind`` ("oa" or "mp"), or None."""
    account = config_mod.load_config().account(app_id)
    if account is None or account.kind != kind:
        return None
    aes = account.encoding_aes_key.get_secret_value() if account.encoding_aes_key else None
    return _endpoint(app_id, account.token.get_secret_value(), aes, settings().clock_skew_seconds,
                     account.message_mode)


def deadline_for(time_epoch_ms) -> float:
    """The ``time.monotonic()`` by which WeChat must have its answer: the budget counts from when API Gateway
    received the request. API Gateway waits 30 s at most, so an older ``timeEpoch`` is no live request but a
    replayed or sample event (``sam local invoke -e events/...``): for it, as for a future one (clock drift)
    or none, the budget counts from now."""
    waited = time.time() - time_epoch_ms / 1000 if isinstance(time_epoch_ms, int | float) else 0.0
    if not 0.0 <= waited <= GATEWAY_MAX_WAIT_SECONDS:
        waited = 0.0
    return time.monotonic() + settings().push_budget_seconds - waited


def handle(request: http.Request, *, count: Count) -> HttpOut:
    """Answer one decoded request to an OA push endpoint (GET verification, POST push)."""
    if request.problem is not None:
        count("Rejected_bad_request")
        return request.problem
    if request.method == "GET":
        return handle_get(request.app_id, request.query, count)
    if request.method == "POST":
        deadline = deadline_for(request.time_epoch_ms)
        return handle_post(request.app_id, request.query, request.body, deadline=deadline, count=count)
    return HttpOut(405, "method not allowed")


def handle_get(app_id: str, query: Mapping[str, str], count: Count, kind: str = "oa") -> HttpOut:
    """GET URL verification of an account of ``kind`` (``oa`` or ``mp``): echo ``echostr`` when signed."""
    endpoint = endpoint_for(app_id, kind)
    if endpoint is None:
        return NOT_FOUND
    try:
        echostr = endpoint.verify_url(dict(query))
    except PushRejected as exc:
        count(f"Rejected_{exc.reason}")
        return HttpOut(exc.status, "forbidden" if exc.status == 403 else exc.reason)
    count("Verified")
    return HttpOut(200, echostr)


def handle_post(app_id: str, query: Mapping[str, str], body: bytes, *, deadline: float, count: Count) -> HttpOut:
    """Answer one POSTed push. ``deadline`` is the ``time.monotonic()`` by which WeChat must have it."""
    endpoint = endpoint_for(app_id, "oa")
    if endpoint is None:
        return NOT_FOUND
    try:
        opened = endpoint.open(dict(query), body)
        inb = parse_inbound(opened.xml)
    except PushRejected as exc:
        count(f"Rejected_{exc.reason}")
        logger.info("push rejected", extra={"reason": exc.reason, "app_id": app_id})
        return HttpOut(exc.status, "forbidden" if exc.status == 403 else exc.reason)
    except Malformed as exc:
        count("Malformed")
        logger.warning("signed push unreadable", extra={"reason": str(exc), "app_id": app_id})
        return OK_SUCCESS
    if inb.is_event and inb.event in SYSTEM_EVENTS:
        count("SystemEvent")
        return OK_SUCCESS
    if not opened.encrypted and not bind_plain_query(app_id, opened):
        count("Rejected_query_replayed")
        logger.info("push rejected", extra={"reason": "query_replayed", "app_id": app_id})
        return HttpOut(403, "forbidden")
    xml = answer(app_id, inb, deadline=deadline, count=count)
    if xml is None:
        return OK_SUCCESS
    return HttpOut(200, endpoint.seal(xml, opened), "application/xml; charset=utf-8")


def bind_plain_query(app_id: str, opened: Opened) -> bool:
    """Plain mode: the signed query may carry only the first body seen with it (one more DynamoDB request per
    plain push; safe mode needs none, its body is signed). ``PushNotAccepted`` when DynamoDB fails."""
    skew = settings().clock_skew_seconds or 86400  # no skew check: the query lives as long as a dedupe key
    ttl = int(time.time()) + 2 * skew + 60
    try:
        return query_bindings.bind_query(app_id, opened.signature, opened.body_hash, ttl=ttl)
    except codec.RepositoryError as exc:
        logger.error("query binding failed", extra={"app_id": app_id, "error": str(exc)[:200]})
        raise PushNotAccepted("binding_failed") from exc


def answer(app_id: str, inb: Inbound, *, deadline: float, count: Count) -> str | None:
    """Decide the reply, record the push on the sender's identity with its follow-up jobs.

    Returns the plain reply XML, or None to answer ``success``. Follow-up jobs (the unionid of a new
    follower, a Mini Program card) ride on the event the write leaves on the identity item; the table's
    stream queues them (``wxloop.services.journey``), so none is lost when SQS fails and the webhook makes
    no SQS request of its own.
    """
    now = int(time.time())
    codec.ddb()  # a cold container creates its client here (~0.2 s of CPU), before the budget check
    if late(deadline):  # the budget first: no rule matching on time that is not there
        return record_later_queued(app_id, inb, plain_event(app_id, inb, now), now=now, count=count, reason="deadline")
    plan = plan_reply(app_id, inb, now=now, first_contact=False)
    if late(deadline):  # the decision's own time counts
        return record_later_queued(app_id, inb, plan.event, now=now, count=count, reason="deadline")
    try:
        touch, plan = record_push(app_id, inb, plan, now=now, deadline=deadline)
    except OutOfTime as out:
        return record_later_queued(app_id, inb, out.plan.event, now=now, count=count, reason="deadline")
    except codec.RepositoryError as exc:
        logger.error("identity write failed", extra={"app_id": app_id, "error": str(exc)[:200]})
        return record_later_queued(app_id, inb, plan.event, now=now, count=count, reason="write_failed")
    if touch.status == "duplicate":
        count("Deduped")
        return touch.stored_reply
    xml = plan.xml
    if plan.personal:
        xml = _render_personal(app_id, inb, plan.decision, touch.uid, now=now, deadline=deadline, count=count)
    count("Replied" if xml else "Success")
    return xml


@dataclass(frozen=True, slots=True)
class ReplyPlan:
    """What to answer a push and what to leave on the identity: ``xml`` (None: ``success`` or rendered after
    the write when ``personal``), the decision, and the event with its follow-up jobs."""

    decision: rule_engine.Decision | None
    xml: str | None
    event: dict
    personal: bool

    @property
    def stored_reply(self) -> str | None:
        # a reply rendered after the write is kept as "" (being rendered): a retry meanwhile gets "success"
        return "" if self.personal else self.xml


class OutOfTime(Exception):
    """A first contact's second write no longer fits the budget; ``plan`` is what it would have written."""

    def __init__(self, plan: ReplyPlan):
        super().__init__("deadline")
        self.plan = plan


def late(deadline: float) -> bool:
    """Whether a write started now could miss ``deadline`` (see ``WRITE_RESERVE_SECONDS``)."""
    return time.monotonic() > deadline - WRITE_RESERVE_SECONDS


def plain_event(app_id: str, inb: Inbound, now: int) -> dict:
    """The event of a push recorded without a decision (too late to decide)."""
    return journey_event(app_id, inb, now=now, jobs=follow_up_jobs(app_id, inb, None))


def plan_reply(app_id: str, inb: Inbound, *, now: int, first_contact: bool) -> ReplyPlan:
    """Decide the reply to ``inb`` (pure but for the rules cache) and the event the write leaves."""
    trigger = rule_engine.trigger_for(inb)
    rules = rules_cache.current(app_id)
    decision = rules.decide(trigger, now=datetime.fromtimestamp(now, UTC), first_time=first_contact) \
        if trigger else None
    if decision is None:
        jobs = follow_up_jobs(app_id, inb, None, first_contact=first_contact)
        return ReplyPlan(None, None, journey_event(app_id, inb, now=now, jobs=jobs), False)
    # a reply with placeholders is rendered after the write, with the person's values
    reply = None if decision.needs else decision.reply
    jobs = follow_up_jobs(app_id, inb, reply, first_contact=first_contact) + action_jobs(app_id, inb, decision)
    event = journey_event(app_id, inb, now=now, rule_id=decision.rule_id, jobs=jobs)
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
                          + action_jobs(app_id, inb, plan.decision))
    return ReplyPlan(plan.decision, plan.xml, event, plan.personal)


def record_push(app_id: str, inb: Inbound, plan: ReplyPlan, *, now: int, deadline: float,
                platform: str = "oa", replan: Callable | None = None) -> tuple[identities.Touch, ReplyPlan]:
    """Record the push on its sender's identity (one write; a first contact takes a second, creating the
    person). ``replan(app_id, inb, plan, now=)`` gives a first contact's plan (default ``first_contact_plan``).
    Returns the touch and the plan that was written. Raises ``OutOfTime`` when a first contact's second
    write no longer fits, ``RepositoryError`` when DynamoDB fails."""
    touch = identities.touch_identity(app_id, inb, now=now, event=plan.event, reply=plan.stored_reply,
                                      want_uid=plan.personal)
    if touch.status != "unknown":
        return touch, plan
    plan = (replan or first_contact_plan)(app_id, inb, plan, now=now)
    if late(deadline):
        raise OutOfTime(plan)
    touch = identities.create_identity(app_id, inb, now=now, event=plan.event, reply=plan.stored_reply,
                                       first_touch=first_touch(app_id, inb, now, platform))
    return touch, plan


def _render_personal(app_id: str, inb: Inbound, decision, uid: str, *, now: int, deadline: float,
                     count: Count) -> str | None:
    """A reply with placeholders: load the person, render, and keep the reply for WeChat's retries in one
    more write, which also carries a Mini Program card among the reply as an outbox event (the stream
    queues it, as for the jobs of the touch). Each AWS call starts only while one bounded call and the
    answer still fit in the budget; what does not fit is skipped (placeholders show their fallbacks)."""
    values: Mapping = {}
    if time.monotonic() < deadline - 2 * CALL_RESERVE_SECONDS:  # the read, then the write keeping the reply
        try:
            values = placeholder_values(people.get_person(uid) or {})
        except Exception as exc:
            logger.warning("person read failed", extra={"error": repr(exc)[:200]})
    reply = rule_engine.render(decision.reply, values)
    xml = passive_xml(reply, openid=inb.openid, account=inb.to_user, now=now)
    jobs = [j for j in follow_up_jobs(app_id, inb, reply) if j["kind"] == "cs_send"]
    outbox = {"id": f"{inb.dedupe_key}:outbox", "type": "outbox", "app": app_id, "at": inb.create_time or now,
              "journey": False, "jobs": jobs} if jobs else None

    if (xml or outbox) and time.monotonic() < deadline - CALL_RESERVE_SECONDS:
        try:
            if identities.store_reply(app_id, inb.openid, inb.dedupe_key, xml, outbox=outbox):
                return xml
        except Exception as exc:  # retries then get "success"; the reply itself still goes out
            logger.warning("reply not kept for retries", extra={"error": repr(exc)[:200]})
    deliver_outbox(app_id, inb, jobs, outbox, deadline=deadline, count=count)
    return xml


def deliver_outbox(app_id: str, inb: Inbound, jobs: list, outbox: Mapping | None, *, deadline: float,
                   count: Count) -> None:
    """Get jobs decided after the touch to the worker: as an outbox event on the identity (the stream queues
    it), else straight to the queue; each call only while one bounded call and the answer still fit."""

    def fits() -> bool:
        return time.monotonic() < deadline - CALL_RESERVE_SECONDS

    if outbox and fits():
        try:
            if identities.leave_outbox(app_id, inb.openid, outbox):
                return
        except Exception as exc:
            logger.warning("outbox not written", extra={"error": repr(exc)[:200]})
    if jobs and fits():
        try:
            queue.send_many(jobs)
            return
        except queue.QueueError as exc:
            logger.warning("card not queued", extra={"error": str(exc)[:200]})
    if jobs:
        count("JobsLost")
        logger.error("personal card lost", extra={"app_id": app_id, "reason": "writes failed or no time left"})


def placeholder_values(person: Mapping) -> dict:
    """The person's fields a reply may show (never openids, unionid or phone)."""
    return {
        "points": person.get("points", 0),
        "invite_code": person.get("invite_code", ""),
        "nickname": person.get("nickname", ""),
    }


def record_later_queued(app_id: str, inb: Inbound, event: Mapping, *, now: int, count: Count, reason: str,
                        platform: str = "oa") -> None:
    """Queue the push itself (with its decided follow-ups) so the worker records it; if even that fails,
    raise ``PushNotAccepted`` so WeChat retries."""
    job = {"id": f"{inb.dedupe_key}:touch", "kind": "touch", "platform": platform, "app_id": app_id,
           "inbound": inbound_to_dict(inb),
           "at": now, "jobs": list(event.get("jobs") or [])}
    try:
        queue.send(job)
    except queue.QueueError as exc:
        count("Error")
        logger.error("push neither recorded nor queued", extra={"reason": reason, "error": str(exc)[:200]})
        raise PushNotAccepted(reason) from exc
    count(f"Queued_{reason}")
    return None


class PushNotAccepted(RuntimeError):
    """Nothing was kept of this push: answer 500 so WeChat delivers it again."""


