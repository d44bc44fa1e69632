"""The job kinds, one entry each, and the validation of a job against its kind's record.

Adding a kind: in a family module (``messages``, ``followers``, ``recording``, or a new one) write its
record (a ``records.Job`` or ``records.PersonJob`` subclass: the fields it needs, typed) and its function
``(record, JobContext) -> str`` (the outcome's detail; raise to fail), then add one ``JobKind`` to ``KINDS``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from wxloop.services.jobs import (
    campaigns,
    channels,
    followers,
    mass,
    messages,
    privacy,
    recording,
    rewards,
    settle,
)
from wxloop.services.jobs.context import JobContext
from wxloop.services.jobs.outcomes import Outcome, PoisonJob
from wxloop.services.jobs.records import Job

R = TypeVar("R", bound=Job)
POISON_DETAILS = 3  # validation errors named in a poison job's reason


@dataclass(frozen=True, slots=True)
class JobKind(Generic[R]):
    """One kind of job: its record, its function, and how the runner treats its WeChat errors.

    ``calls_wechat``: the kind calls one WeChat API, whose daily quota (45009) blocks the kind's jobs
    until it resets. ``channel``: what 45015/43101 closes for the person (default: the kind's name).
    ``on_outcome``: told the final outcome (``ok`` or settled, and a 45009 deferral) after the claim is
    marked; it must be idempotent: when it fails, the runner queues a ``job_settle`` job that tells it again
    (never a retry of the job, which would send twice).
    """

    name: str
    record: type[R]
    run: Callable[[R, JobContext], str]
    calls_wechat: bool = True
    channel: Callable[[R], str] | None = None
    on_outcome: Callable[[R, Outcome, int], None] | None = None

    def channel_of(self, job: R) -> str:
        return self.channel(job) if self.channel is not None else self.name


KINDS: dict[str, JobKind[Any]] = {kind.name: kind for kind in (
    JobKind("cs_send", messages.CsSend, messages.cs_send, channel=messages.cs_channel),
    JobKind("subscribe_send", messages.SubscribeSend, messages.subscribe_send, channel=messages.subscribe_channel),
    JobKind("user_info", followers.UserInfo, followers.user_info),
    JobKind("tag", followers.Tag, followers.tag),
    JobKind("tag_topics", followers.TagTopics, followers.tag_topics),
    JobKind("touch", recording.Touch, recording.touch, calls_wechat=False),
    JobKind("reward_notice", rewards.RewardNotice, rewards.reward_notice),
    JobKind("untag_all", privacy.UntagAll, privacy.untag_all),
    JobKind("consent_withdraw", privacy.ConsentWithdraw, privacy.consent_withdraw, calls_wechat=False),
    JobKind("channel_renew", channels.ChannelRenew, channels.channel_renew),
    JobKind("campaign_send", campaigns.CampaignSend, campaigns.campaign_send, channel=campaigns.campaign_channel,
            on_outcome=campaigns.campaign_settled),
    JobKind("campaign_mass", mass.CampaignMass, mass.campaign_mass, on_outcome=mass.mass_settled),
    JobKind(settle.KIND, settle.JobSettle, settle.job_settle, calls_wechat=False),
)}


def parse(body: str | bytes) -> dict:
    """A job from an SQS message body; raises ``PoisonJob`` when it can never run."""
    try:
        job = json.loads(body)
    except (TypeError, ValueError, RecursionError):
        raise PoisonJob("message body is not JSON") from None
    validate(job)
    return job


def validate(job: Any) -> tuple[JobKind[Any], Job]:
    """The job's kind and typed record; raises ``PoisonJob`` (naming fields, never values) when the job
    is not an object, its kind is unknown, or a field is missing or of the wrong shape."""
    if not isinstance(job, Mapping):
        raise PoisonJob("job is not a JSON object")
    name = job.get("kind")
    if not isinstance(name, str) or not name:
        raise PoisonJob("job has no kind")
    kind = KINDS.get(name)
    if kind is None:
        raise PoisonJob(f"unknown job kind {name[:40]!r}")
    try:
        return kind, kind.record.model_validate(job)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(part) for part in e['loc'])}: {e['type']}"
                    for e in exc.errors(include_url=False, include_input=False)[:POISON_DETAILS]]
        raise PoisonJob(f"{name} job invalid ({'; '.join(problems)})") from None
