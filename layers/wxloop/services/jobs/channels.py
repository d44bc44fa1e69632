"""``channel_renew``: replace one acquisition channel's link before it lapses (``wxloop.services.channels``).

The worker's daily schedule queues one job per channel due (``channels.renewal_jobs``); the job's id names
the channel's revision it replaces, so a repeated schedule or a retry never renews a link twice. WeChat's errors pass
through to the runner unchanged: 45009 blocks the kind until the quota resets, a transient one is retried.
"""

from __future__ import annotations

from pydantic import Field

from wxloop.services.jobs.context import JobContext
from wxloop.services.jobs.records import Job, NonEmpty


class ChannelRenew(Job):
    """``channel``: the channel's name; ``rev``: the revision of its link this renewal replaces."""

    channel: NonEmpty
    rev: int = Field(ge=0)


def channel_renew(job: ChannelRenew, ctx: JobContext) -> str:
    from wxloop.services import channels

    try:
        return channels.renew_one(job.channel, job.rev, ctx.wechat(job.app_id), now=ctx.now)
    except channels.ChannelError as exc:
        if exc.__cause__ is not None:  # WeChat's own error, with its errcode, decides the outcome
            raise exc.__cause__ from None
        raise
