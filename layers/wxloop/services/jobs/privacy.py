"""Privacy jobs: ``untag_all`` takes every OA tag off an erased person; ``consent_withdraw`` records an OA
opt-out keyword ("TD"/"退订") as a withdrawal of marketing consent."""

from __future__ import annotations

from pydantic import Field

from wxloop.services.jobs.context import JobContext
from wxloop.services.jobs.records import PersonJob


class UntagAll(PersonJob):
    pass


class ConsentWithdraw(PersonJob):
    at: int = Field(default=0, ge=0)


def untag_all(job: UntagAll, ctx: JobContext) -> str:
    """``tags/getidlist``, then one untag per tag."""
    client = ctx.wechat(job.app_id)
    for tag_id in client.tag.get_user_tag(job.openid) or ():
        client.tag.untag_user(int(tag_id), job.openid)
    return "untagged"


def consent_withdraw(job: ConsentWithdraw, ctx: JobContext) -> str:
    from wxloop.services.privacy import consent

    return consent.opt_out_by_openid(job.app_id, job.openid, at=job.at or ctx.now)
