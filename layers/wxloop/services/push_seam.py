"""The push seam every webhook shares (OA and MP): the endpoint of an account, the time budget, GET
verification, refusing what is not WeChat's, the plain-mode query binding, recording a push within the budget
or queueing it for the worker, and getting jobs decided after the write to the worker.

What differs per platform (how a push is opened and parsed, which pushes count, how the answer is decided
and sent) stays in ``oa_push`` and ``mp_push``, which pass it in. Nothing here imports more than those did.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from wxloop import config as config_mod
from wxloop.adapters import queue
from wxloop.adapters.dynamo import codec, identities, people, query_bindings
from wxloop.domain.inbound import Inbound
from wxloop.protocol import http
from wxloop.protocol.http import HttpOut
from wxloop.protocol.outbound import SUCCESS
from wxloop.protocol.push import Malformed, Opened, PushEndpoint, PushRejected
from wxloop.services.recording import first_touch, inbound_to_dict
from wxloop.settings import settings

if TYPE_CHECKING:
    from wxloop.domain.rules import Decision

logger = Logger(child=True)

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
Post = Callable[..., HttpOut]

NOT_FOUND = HttpOut(404, "unknown app")
OK_SUCCESS = HttpOut(200, SUCCESS)


class PushNotAccepted(RuntimeError):
    """Nothing was kept of this push: answer 500 so WeChat delivers it again."""


@dataclass(frozen=True, slots=True)
class ReplyPlan:
    """What to answer a push and what to leave on the identity: ``xml`` (the passive reply body; None:
    ``success``, or rendered after the write when ``personal``), the decision, and the event with its jobs."""

    decision: Decision | None
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


def late(deadline: float) -> bool:
    """Whether a write started now could miss ``deadline`` (see ``WRITE_RESERVE_SECONDS``)."""
    return time.monotonic() > deadline - WRITE_RESERVE_SECONDS


def dispatch(request: http.Request, *, count: Count, kind: str, post: Post) -> HttpOut:
    """Answer one decoded request to the push endpoint of an account of ``kind``: a refused request as such,
    GET as URL verification, POST through ``post(app_id, query, body, *, deadline=, count=)``, else 405."""
    if request.problem is not None:
        count("Rejected_bad_request")
        return request.problem
    if request.method == "GET":
        return handle_get(request.app_id, request.query, count, kind=kind)
    if request.method == "POST":
        deadline = deadline_for(request.time_epoch_ms)
        return post(request.app_id, request.query, request.body, deadline=deadline, count=count)
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


def open_push(app_id: str, opener: Callable[[], tuple[Opened, Inbound]],
              count: Count) -> tuple[Opened, Inbound] | HttpOut:
    """The opened push and what it says, from ``opener`` (verify, decrypt, parse); or the answer to a push
    refused as not WeChat's (403 and the like, nothing written) or signed but unreadable (``success``)."""
    try:
        return opener()
    except PushRejected as exc:
        count(f"Rejected_{exc.reason}")
        logger.info("push rejected", extra={"reason": exc.reason, "app_id": app_id})
        return HttpOut(exc.status, "forbidden" if exc.status == 403 else exc.reason)
    except Malformed as exc:
        count("Malformed")
        logger.warning("signed push unreadable", extra={"reason": str(exc), "app_id": app_id})
        return OK_SUCCESS


def refuse_replayed_query(app_id: str, opened: Opened, count: Count) -> HttpOut | None:
    """403 for a plain push whose signed query came with another body; None when the push may go on."""
    if opened.encrypted or bind_plain_query(app_id, opened):
        return None
    count("Rejected_query_replayed")
    logger.info("push rejected", extra={"reason": "query_replayed", "app_id": app_id})
    return HttpOut(403, "forbidden")


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


Replan = Callable[..., ReplyPlan]


def record_push(app_id: str, inb: Inbound, plan: ReplyPlan, *, now: int, deadline: float, platform: str,
                replan: Replan) -> tuple[identities.Touch, ReplyPlan]:
    """Record the push on its sender's identity (one write; a first contact takes a second, creating the
    person). ``replan(app_id, inb, plan, now=)`` gives a first contact's plan. Returns the touch and the plan
    that was written. Raises ``OutOfTime`` when a first contact's second write no longer fits,
    ``RepositoryError`` when DynamoDB fails."""
    touch = identities.touch_identity(app_id, inb, now=now, event=plan.event, reply=plan.stored_reply,
                                      want_uid=plan.personal)
    if touch.status != "unknown":
        return touch, plan
    plan = replan(app_id, inb, plan, now=now)
    if late(deadline):
        raise OutOfTime(plan)
    touch = identities.create_identity(app_id, inb, now=now, event=plan.event, reply=plan.stored_reply,
                                       first_touch=first_touch(app_id, inb, now, platform))
    return touch, plan


def record_within_budget(app_id: str, inb: Inbound, *, now: int, deadline: float, count: Count,
                         decide: Callable[[], ReplyPlan], undecided: Callable[[], Mapping], platform: str,
                         replan: Replan) -> tuple[identities.Touch, ReplyPlan] | None:
    """Decide (``decide``) and record the push while the budget allows; otherwise, or when DynamoDB fails,
    queue it for the worker with its event (``undecided()`` when there was no time to decide) and return None
    (answer ``success``). Raises ``PushNotAccepted`` when even the queue failed."""
    codec.ddb()  # a cold container creates its client here (~0.2 s of CPU), before the budget check
    if late(deadline):  # the budget first: no rule matching on time that is not there
        record_later_queued(app_id, inb, undecided(), now=now, count=count, reason="deadline",
                                   platform=platform)
        return None
    plan = decide()
    if late(deadline):  # the decision's own time counts
        record_later_queued(app_id, inb, plan.event, now=now, count=count, reason="deadline",
                                   platform=platform)
        return None
    try:
        return record_push(app_id, inb, plan, now=now, deadline=deadline, platform=platform, replan=replan)
    except OutOfTime as out:
        record_later_queued(app_id, inb, out.plan.event, now=now, count=count, reason="deadline",
                                   platform=platform)
        return None
    except codec.RepositoryError as exc:
        logger.error("identity write failed", extra={"app_id": app_id, "error": str(exc)[:200]})
        record_later_queued(app_id, inb, plan.event, now=now, count=count, reason="write_failed",
                                   platform=platform)
        return None


def record_later_queued(app_id: str, inb: Inbound, event: Mapping, *, now: int, count: Count, reason: str,
                        platform: str = "oa") -> None:
    """Queue the push itself (with its decided follow-ups) so the worker records it; if even that fails,
    raise ``PushNotAccepted`` so WeChat retries."""
    job = {"id": f"{inb.dedupe_key}:touch", "kind": "touch", "platform": platform, "app_id": app_id,
           "inbound": inbound_to_dict(inb), "at": now, "jobs": list(event.get("jobs") or [])}
    try:
        queue.send(job)
    except queue.QueueError as exc:
        count("Error")
        logger.error("push neither recorded nor queued", extra={"reason": reason, "error": str(exc)[:200]})
        raise PushNotAccepted(reason) from exc
    count(f"Queued_{reason}")
    return None


def placeholder_values(person: Mapping) -> dict:
    """The person's fields a reply may show (never openids, unionid or phone)."""
    return {
        "points": person.get("points", 0),
        "invite_code": person.get("invite_code", ""),
        "nickname": person.get("nickname", ""),
    }


def person_values(uid: str, deadline: float) -> Mapping:
    """The placeholder values of person ``uid``, read only while the read and one more write still fit the
    budget; empty (placeholders show their fallbacks) when there is no time or the read fails."""
    if time.monotonic() >= deadline - 2 * CALL_RESERVE_SECONDS:
        return {}
    try:
        return placeholder_values(people.get_person(uid) or {})
    except Exception as exc:
        logger.warning("person read failed", extra={"error": repr(exc)[:200]})
        return {}


def outbox_event(app_id: str, inb: Inbound, jobs: list, now: int) -> dict | None:
    """The event that carries jobs decided after the touch to the stream (no journey record); None without
    jobs."""
    if not jobs:
        return None
    return {"id": f"{inb.dedupe_key}:outbox", "type": "outbox", "app": app_id, "at": inb.create_time or now,
            "journey": False, "jobs": jobs}


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
