"""Jobs: work that calls WeChat's API (or that the webhook could not record in time), run by the worker.

A job is JSON ``{"id", "kind", "app_id", ...}``; ``id`` is stable for the same piece of work. Kinds:

- ``cs_send``: ``openid``, ``message`` (customer-service body without ``touser``, e.g.
  ``{"msgtype": "text", "text": {"content": "…"}}``, ``image``, ``news``, ``miniprogrampage``); sent only
  within an open customer-service window, one of whose messages it spends first (else ``closed:window``),
  and never to a person who has unfollowed (``closed:unsubscribed``).
- ``subscribe_send``: ``openid``, ``template_id``, ``data``, ``page``? (MP subscribe message); spends one
  credit of ``ID#{app_id}#{openid}``/``SUB#{template_id}`` before sending when that counter exists (none
  left: ``closed:credit``).
- ``user_info``: ``openid``; fetches OA ``user/info`` and links the ``unionid`` when there is one.
- ``tag``: ``openid``, ``add``/``remove``: lists of tag ids.
- ``tag_topics``: ``openid``, ``uid``, ``version``, ``topics``/``remove``: tag names; the MP's preferences
  mirrored on the OA (``wxloop.services.mp_api.tags``).
- ``touch``: ``inbound`` (dict form of ``Inbound``), ``at``; records a push the webhook queued instead of
  writing (``wxloop.services.oa_push.record_later``).
- ``campaign_send``: one person's message of a campaign run (``wxloop.services.campaign_send``).

Each job runs at most once in effect (a claim item ``JOB#{id}``). Outcomes by errcode:
40001/40014/42001 are handled in the client (compare-and-expire, refresh, one retry); 45015/43101 close the
channel for that person (no retry); 45047 (a person's message cap) re-queues the job with a growing delay;
45009 (the account's daily quota of that API is used up: WeChat says stop for the day) blocks the API until
the quota resets at midnight China time, and every job for it waits in the queue (re-queued at the
longest delay, without calling WeChat) until then, so nothing is dropped; HTTP 5xx, timeouts, -1 (system
busy), answers that are not JSON and DynamoDB failures raise so SQS retries (after ``retry_delay_seconds``
of the receive count, see ``delay_retry``; then the DLQ); any other errcode is recorded, no retry. A job
that can never run (not JSON, unknown kind, missing fields) raises ``PoisonJob`` every time, so SQS's
redrive moves it to the DLQ.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from wxloop.adapters import aws, queue, repository
from wxloop.domain import reach
from wxloop.metrics import OutcomeMetrics

logger = Logger(child=True)
metrics = OutcomeMetrics()  # shared with the worker's handler, which flushes it (log_metrics)

JOB_TTL_SECONDS = 7 * 86400
CLOSED_CODES = frozenset({45015, 43101})  # out of the CS window / unfollowed; no subscribe credit
QUOTA_CODE = 45009  # the daily quota of this API is used up: no call until it resets
BACKOFF_CODES = frozenset({45047})  # the person's customer-service message cap is reached
CALLS_WECHAT = frozenset({"cs_send", "subscribe_send", "user_info", "tag", "tag_topics", "campaign_send"})  # one WeChat API each
CHINA_UTC_OFFSET = 8 * 3600  # WeChat's daily quotas reset at midnight China time (no DST)
BACKOFF_FIRST_SECONDS = 60
BACKOFF_MAX_SECONDS = 900  # SQS DelaySeconds cap
MAX_DEFERRALS = 5
RETRY_FIRST_SECONDS = 30  # a failed delivery is hidden 30 s after its first receive, doubling per receive
RETRY_MAX_SECONDS = 900
CS_SPEND_TRIES = 3  # reads of the identity when a push reopens a window between the read and the spend
NO_CREDIT_CODE = 43101
OUT_OF_WINDOW_CODE = 45015
FINISH_TRIES = 3  # marking a job done after WeChat accepted it


class PoisonJob(ValueError):
    """The message can never run: not JSON, no id/kind/app_id, unknown kind, or missing fields.

    Its message never contains the job body (bodies hold personal data).
    """


class JobBusy(RuntimeError):
    """Another worker holds this job's claim: try again after the visibility timeout."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What running a job came to: ``ok``, ``duplicate``, ``closed``, ``deferred``, ``gave_up``, ``failed``
    (an errcode that retrying will not fix). ``errcode`` when WeChat gave one."""

    status: str
    errcode: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        return self.status if self.errcode is None else f"{self.status}:{self.errcode}"


def backoff_seconds(deferrals: int) -> int:
    """Delay before the ``deferrals``-th re-run of a throttled job: 60, 120, 240, 480, 900, 900…"""
    return min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** max(0, deferrals))


def quota_reset_after(now: int) -> int:
    """The next midnight in China (UTC+8) after ``now``: when WeChat's daily API quotas reset."""
    return ((now + CHINA_UTC_OFFSET) // 86400 + 1) * 86400 - CHINA_UTC_OFFSET


def retry_delay_seconds(receive_count: Any) -> int:
    """How long a delivery that failed stays hidden before SQS hands it out again, from its
    ``ApproximateReceiveCount``: 30, 60, 120, 240, 480, then 900 s."""
    try:
        received = max(1, int(receive_count))
    except (TypeError, ValueError):
        received = 1
    return min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** min(received - 1, 10))


def queue_url_of(source_arn: str) -> str | None:
    """The URL of the queue ``arn:partition:sqs:region:account:name`` (``QUEUE_URL`` when it names that
    queue, else built on the SQS client's endpoint), or None for anything else."""
    parts = str(source_arn or "").split(":")
    if len(parts) != 6 or parts[2] != "sqs" or not parts[5]:
        return None
    account, name = parts[4], parts[5]
    configured = os.environ.get("QUEUE_URL", "").rstrip("/")
    if configured.endswith(f"/{account}/{name}"):
        return configured
    return f"{aws.client('sqs').meta.endpoint_url.rstrip('/')}/{account}/{name}"


def delay_retry(record: Mapping) -> int | None:
    """Hide a failed SQS record (Lambda event shape) for ``retry_delay_seconds`` of its receive count, with
    ChangeMessageVisibility, instead of the queue's fixed visibility timeout. Best effort: a failure is
    logged, never raised (the record then comes back after the visibility timeout). Returns the delay set."""
    receipt = record.get("receiptHandle")
    url = queue_url_of(record.get("eventSourceARN") or "")
    if not receipt or not url:
        return None
    delay = retry_delay_seconds((record.get("attributes") or {}).get("ApproximateReceiveCount"))
    try:
        aws.client("sqs").change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=delay)
    except Exception as exc:
        logger.warning("retry delay not set", extra={"message_id": record.get("messageId"),
                                                     "error": f"{type(exc).__name__}: {exc}"[:200]})
        return None
    return delay


def lease_seconds() -> int:
    """How long a claim blocks other deliveries; longer than the worker's timeout, shorter than the
    queue's visibility timeout (so a crashed run is retried by SQS's redelivery)."""
    return int(os.environ.get("JOB_LEASE_SECONDS", "60"))


# -- kinds ---------------------------------------------------------------------------------------------


def _client(app_id: str):
    from wxloop.adapters import wechat  # requests + wechatpy: only when a job calls WeChat

    return wechat.api_client(app_id)


class NotSendable(RuntimeError):
    """Nothing was sent because WeChat would refuse it; the job ends ``closed:{reason}``, no retry."""

    reason = "window"


class WindowClosed(NotSendable):
    """No customer-service window is open for the person: sending would only earn 45015/45047."""


class Unfollowed(NotSendable):
    """The person has unfollowed the account: a customer-service message would only earn 45015."""

    reason = "unsubscribed"


class NoCredit(NotSendable):
    """The person's subscribe-message counter for the template is at 0: WeChat would answer 43101."""

    reason = "credit"


def _cs_send(job: Mapping, now: int, windows: tuple[reach.Window, ...] = reach.WINDOWS) -> str:
    """Spend a message of an open customer-service window (``wxloop.domain.reach``), then send.

    The spend is conditional on the open time of the window read from the identity. When it fails (the
    person wrote again in between and reopened the window, or a concurrent send took the last message), the
    identity is read again and the spend retried against the current windows: ``CS_SPEND_TRIES`` reads in
    all before concluding that none is open. A person whose identity says ``following`` is False gets
    nothing (``closed:unsubscribed``: WeChat not called, no window spent); absent means unknown: go on.
    """
    app_id, openid = job["app_id"], job["openid"]
    for _ in range(CS_SPEND_TRIES):
        identity = repository.get_identity(app_id, openid)
        if identity is not None and identity.get("following") is False:
            raise Unfollowed("the person has unfollowed")
        open_windows = reach.open_cs_windows(identity, now, windows)
        if not open_windows:
            break
        for open_window in open_windows:
            window = open_window.window
            if repository.spend_cs_window(app_id, openid, window.name, open_window.opened_at, window.cap):
                try:
                    _client(app_id).post("message/custom/send", data={**job["message"], "touser": openid})
                except Exception as exc:
                    if getattr(exc, "errcode", None) == OUT_OF_WINDOW_CODE:  # WeChat knows no open window
                        repository.exhaust_cs_window(app_id, openid, window.name, open_window.opened_at, window.cap)
                    else:  # not sent (or not known to be): give the message back for the retry
                        repository.refund_cs_window(app_id, openid, window.name, open_window.opened_at)
                    raise
                return f"sent:{window.name}"
    raise WindowClosed("no customer-service window open")


def _subscribe_send(job: Mapping, now: int) -> str:
    """Send a subscribe message, spending one credit of the person's ``SUB#{template_id}`` counter first.

    When the counter exists, one credit is taken with a conditional write BEFORE ``message/subscribe/send``
    (none left: ``closed:credit``, WeChat is not called); a failed send gives it back, except 43101 (WeChat
    has no credit either), which sets the counter to 0. When no counter exists (no popup event was ever
    recorded for this person and template), the message is sent uncounted as before and WeChat decides.
    """
    app_id, openid, template_id = job["app_id"], job["openid"], job["template_id"]
    body = {"touser": openid, "template_id": template_id, "data": job["data"]}
    for optional in ("page", "miniprogram_state", "lang"):
        if job.get(optional):
            body[optional] = job[optional]
    state, gen = repository.spend_subscribe_credit(app_id, openid, template_id)
    if state == "none_left":
        raise NoCredit("no subscribe credit left")
    try:
        _client(app_id).post("message/subscribe/send", data=body)
    except Exception as exc:
        if state == "spent":
            if getattr(exc, "errcode", None) == NO_CREDIT_CODE:
                try:
                    repository.zero_subscribe_credit(app_id, openid, template_id, now)
                except Exception as err:  # the next send meets 43101 again and retries this
                    logger.warning("subscribe credit not reset", extra={"job_id": job["id"], "error": repr(err)[:200]})
            else:  # not sent (or not known to be): give the credit back for the retry
                repository.refund_subscribe_credit(app_id, openid, template_id, gen)
        raise
    return "sent" if state == "spent" else "sent-uncounted"


def _user_info(job: Mapping, now: int) -> str:
    info = _client(job["app_id"]).user.get(job["openid"])
    unionid = info.get("unionid") if isinstance(info, Mapping) else None
    if not unionid:
        return "no-unionid"
    uid = repository.link_unionid(job["app_id"], job["openid"], unionid, now)
    return f"linked:{uid}"


def _tag(job: Mapping, now: int) -> str:
    client = _client(job["app_id"])
    for tag_id in job.get("add") or ():
        client.tag.tag_user(int(tag_id), job["openid"])
    for tag_id in job.get("remove") or ():
        client.tag.untag_user(int(tag_id), job["openid"])
    return "tagged"


def _tag_topics(job: Mapping, now: int) -> str:
    from wxloop.services.mp_api.tags import run_tag_topics

    return run_tag_topics(job, _client(job["app_id"]))


def _touch(job: Mapping, now: int) -> str:
    from wxloop.services import oa_push

    return str(oa_push.record_later(job))


def _campaign_send(job: Mapping, now: int) -> str:
    from wxloop.services import campaign_send

    return campaign_send.run(job, now, cs_send=_cs_send, subscribe_send=_subscribe_send, client=_client)


def _campaign_channel(job: Mapping) -> str:
    from wxloop.services import campaign_send

    return campaign_send.closed_channel(job)


def _is_id_list(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(v, int) or str(v).isdigit() for v in value))


# kind → (runner, required fields, channel closed by 45015/43101)
KINDS: dict[str, tuple[Callable[[Mapping, int], str], tuple[str, ...], Callable[[Mapping], str] | None]] = {
    "cs_send": (_cs_send, ("openid", "message"), lambda job: "cs"),
    "subscribe_send": (_subscribe_send, ("openid", "template_id", "data"),
                       lambda job: f"subscribe:{job['template_id']}"),
    "user_info": (_user_info, ("openid",), None),
    "tag": (_tag, ("openid",), None),
    "tag_topics": (_tag_topics, ("openid", "uid"), None),
    "touch": (_touch, ("inbound",), None),
    "campaign_send": (_campaign_send, ("openid", "campaign", "run", "uid", "channel"), _campaign_channel),
}


# -- running -------------------------------------------------------------------------------------------


def parse(body: str | bytes) -> dict:
    """A job from an SQS message body; raises ``PoisonJob`` when it can never run."""
    try:
        job = json.loads(body)
    except (TypeError, ValueError):
        raise PoisonJob("message body is not JSON") from None
    validate(job)
    return job


def validate(job: Any) -> None:
    if not isinstance(job, dict):
        raise PoisonJob("job is not a JSON object")
    for name in ("id", "kind", "app_id"):
        if not isinstance(job.get(name), str) or not job[name]:
            raise PoisonJob(f"job has no {name}")
    spec = KINDS.get(job["kind"])
    if spec is None:
        raise PoisonJob(f"unknown job kind {job['kind'][:40]!r}")
    missing = [f for f in spec[1] if job.get(f) in (None, "", {}, [])]
    if missing:
        raise PoisonJob(f"{job['kind']} job lacks {', '.join(missing)}")
    if job["kind"] == "cs_send" and not (isinstance(job["message"], dict) and job["message"].get("msgtype")):
        raise PoisonJob("cs_send message needs a msgtype")
    if job["kind"] == "tag" and not (_is_id_list(job.get("add")) and _is_id_list(job.get("remove"))):
        raise PoisonJob("tag job add/remove must be lists of tag ids")
    if job["kind"] == "campaign_send":
        from wxloop.services import campaign_send

        why = campaign_send.invalid(job)
        if why:
            raise PoisonJob(why)


def _count(sink: OutcomeMetrics | None, name: str) -> None:
    if sink is not None:
        sink.add_metric(name=name, unit="Count", value=1)


def run(job: Mapping, *, sink: OutcomeMetrics | None = metrics, now: int | None = None) -> Outcome:
    """Run one job at most once in effect; returns its outcome, or raises so SQS retries it.

    Raises ``PoisonJob`` (never runnable), ``JobBusy`` (claimed by a running worker), ``WeChatAPIError``
    (transient: 5xx, timeout, token still refused after one refresh), ``RepositoryError``/``QueueError``.
    """
    validate(job)
    now = int(time.time()) if now is None else int(now)
    job_id, kind = job["id"], job["kind"]
    runner, _, channel_of = KINDS[kind]
    if kind in CALLS_WECHAT:
        blocked_until = repository.quota_blocked_until(job["app_id"], kind)
        if blocked_until > now:  # wait for the quota, without calling WeChat and without losing the job
            queue.send(dict(job), delay_seconds=min(BACKOFF_MAX_SECONDS, blocked_until - now))
            _count(sink, f"job.{kind}.quota_wait")
            return Outcome("deferred", QUOTA_CODE, f"quota until {blocked_until}")
    if not repository.claim_job(job_id, now + JOB_TTL_SECONDS, now=now, lease_seconds=lease_seconds()):
        state = (repository.get_job(job_id) or {}).get("state")
        if state != "done":
            raise JobBusy(f"job {job_id} is running elsewhere")
        _count(sink, f"job.{kind}.duplicate")
        return Outcome("duplicate")
    try:
        detail = runner(job, now)
    except Exception as exc:
        try:
            outcome = _settle_failure(job, exc, channel_of, now)
            if outcome is not None and kind == "campaign_send":
                _settle_campaign(job, outcome, now)
        except Exception:
            outcome = None  # recording the outcome failed: retry the whole job
        if outcome is None:
            _release(job_id)
            _count(sink, f"job.{kind}.retry")
            raise
        _count(sink, f"job.{kind}.{outcome.status}")
        logger.info("job settled", extra={"job_id": job_id, "kind": kind, "outcome": str(outcome)})
        return outcome
    for attempt in range(FINISH_TRIES):  # it was done: acknowledged even if the mark fails, never retried
        try:
            repository.finish_job(job_id, "ok", now=now)
            break
        except Exception as exc:  # left unmarked, only a copy of the job arriving after the lease could rerun it
            if attempt == FINISH_TRIES - 1:
                logger.error("job done but not marked done", extra={"job_id": job_id, "error": repr(exc)[:200]})
                _count(sink, f"job.{kind}.unmarked")
    _count(sink, f"job.{kind}.ok")
    return Outcome("ok", detail=detail)


def _settle_failure(job: Mapping, exc: Exception, channel_of, now: int) -> Outcome | None:
    """Record the outcome of an errcode that retrying will not fix; None means: let SQS retry."""
    from wxloop.adapters.wechat import WeChatAPIError  # only loaded when a WeChat call failed

    if isinstance(exc, NotSendable):  # nothing was sent: WeChat would refuse it
        outcome = Outcome("closed", None, exc.reason)
        repository.finish_job(job["id"], f"closed:{exc.reason}", now=now)
        return outcome
    if not isinstance(exc, WeChatAPIError) or exc.transient:
        return None
    code, job_id = exc.errcode, job["id"]
    if code == QUOTA_CODE:
        until = quota_reset_after(now)
        repository.block_quota(job["app_id"], job["kind"], until)
        _release(job_id)  # the re-queued copy (same id) must be able to claim
        queue.send(dict(job), delay_seconds=BACKOFF_MAX_SECONDS)
        return Outcome("deferred", code, f"quota until {until}")
    if code in CLOSED_CODES:
        channel = channel_of(job) if channel_of else job["kind"]
        repository.mark_channel_closed(job["app_id"], job["openid"], channel, code, now)
        outcome = Outcome("closed", code, channel)
    elif code in BACKOFF_CODES:
        deferrals = int(job.get("deferrals") or 0)
        if deferrals >= MAX_DEFERRALS:
            outcome = Outcome("gave_up", code)
        else:
            # Release first: the re-queued copy (same id) must be able to claim. If the send fails, the
            # exception propagates and SQS retries this delivery instead.
            _release(job_id)
            queue.send({**job, "deferrals": deferrals + 1}, delay_seconds=backoff_seconds(deferrals))
            return Outcome("deferred", code, f"in {backoff_seconds(deferrals)}s")
    else:
        outcome = Outcome("failed", code, exc.errmsg[:100])
    repository.finish_job(job_id, str(outcome), now=now)
    return outcome


def _settle_campaign(job: Mapping, outcome: Outcome, now: int) -> None:
    """A campaign send's outcome on its SEND item; 45009 pauses the run until the quota resets."""
    from wxloop.services import campaign_send

    if outcome.status != "deferred":
        campaign_send.settled(job, str(outcome), now=now)
    elif outcome.errcode == QUOTA_CODE:
        campaign_send.settled(job, str(outcome), now=now, paused_until=quota_reset_after(now))


def _release(job_id: str) -> None:
    try:
        repository.release_job(job_id)
    except Exception:  # the claim then expires on its own after lease_seconds()
        logger.warning("job claim not released", extra={"job_id": job_id})


def handle_message(body: str | bytes, *, sink: OutcomeMetrics | None = metrics, message_id: str = "") -> Outcome:
    """Parse and run one SQS message (the worker's record handler). Poison messages are counted and
    logged without their body, then re-raised so that redrive moves them to the DLQ."""
    try:
        job = parse(body)
    except PoisonJob as exc:
        _count(sink, "job.poison")
        logger.error("poison job", extra={"message_id": message_id, "reason": str(exc)})
        raise
    return run(job, sink=sink)
