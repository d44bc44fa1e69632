"""Jobs: work that calls WeChat's API (or that the webhook could not record in time), run by the worker.

A job is JSON ``{"id", "kind", "app_id", ...}``; ``id`` is stable for the same piece of work. Each kind is
one entry of ``registry.KINDS``: a typed record (validated when the job is read: a job of the wrong shape
is poison) and one function. Kinds:

- ``cs_send`` (``messages``): ``openid``, ``message`` (customer-service body without ``touser``); sent
  only within an open customer-service window, one of whose messages it spends first (else
  ``closed:window``), and never to a person who has unfollowed (``closed:unsubscribed``).
- ``subscribe_send`` (``messages``): ``openid``, ``template_id``, ``data``, ``page``?; spends one credit of
  ``ID#{app_id}#{openid}``/``SUB#{template_id}`` before sending when that counter exists (none left:
  ``closed:credit``).
- ``user_info`` (``followers``): ``openid``; fetches OA ``user/info`` and links the ``unionid``.
- ``tag`` (``followers``): ``openid``, ``add``/``remove``: lists of tag ids (ASCII digits).
- ``tag_topics`` (``followers``): ``openid``, ``uid``, ``version``, ``topics``/``remove``: tag names; the
  MP's preferences mirrored on the OA (``wxloop.services.mp_api.tags``).
- ``touch`` (``recording``): ``inbound``, ``at``; records a push the webhook queued instead of writing.
- ``channel_renew`` (``channels``): ``channel``, ``expires_at``; replaces an acquisition channel's link
  before it lapses (queued daily by the worker's schedule).
- ``campaign_send`` (``campaigns``): ``openid``, ``campaign``, ``run``, ``uid``, ``channel`` and its body; one
  person's message of a campaign run, sent by ``cs_send``/``subscribe_send``'s code, its outcome recorded
  on the run's SEND item (45009 pauses the run).
- ``campaign_mass`` (``mass``): one stage of an OA mass send (tag a batch of followers, then one send).
- ``job_settle`` (``settle``): ``job``, ``status``, ``errcode``, ``detail``, ``at``; a final outcome told again
  to the kind's ``on_outcome`` when recording it right after the run failed (never a second send).

How a run ends, by WeChat errcode: ``runner``; the errcodes themselves: ``wxloop.protocol.errcodes``.
"""

from __future__ import annotations

from wxloop.adapters import queue
from wxloop.adapters.queue import queue_url_of
from wxloop.services.jobs import context
from wxloop.services.jobs.context import JobContext
from wxloop.services.jobs.messages import CS_SPEND_TRIES
from wxloop.services.jobs.outcomes import (
    JobBusy,
    NoCredit,
    NotSendable,
    Outcome,
    PoisonJob,
    Unfollowed,
    WindowClosed,
)
from wxloop.services.jobs.records import Job, PersonJob
from wxloop.services.jobs.registry import KINDS, JobKind, parse, validate
from wxloop.services.jobs.runner import delay_retry, error_fields, handle_message, metrics, run
from wxloop.services.jobs.timing import (
    MAX_DEFERRALS,
    backoff_seconds,
    lease_seconds,
    quota_reset_after,
    retry_delay_seconds,
)

__all__ = [
    "CS_SPEND_TRIES", "KINDS", "MAX_DEFERRALS", "Job", "JobBusy", "JobContext", "JobKind", "NoCredit",
    "NotSendable", "Outcome", "PersonJob", "PoisonJob", "Unfollowed", "WindowClosed", "backoff_seconds",
    "context", "delay_retry", "error_fields", "handle_message", "lease_seconds", "metrics", "parse", "queue",
    "queue_url_of", "quota_reset_after", "retry_delay_seconds", "run", "validate",
]
