"""Job kinds about what the Official Account knows of a follower: ``user_info`` (links the unionid),
``tag`` (tag ids on and off), ``tag_topics`` (the Mini Program's topics mirrored as tags)."""

from __future__ import annotations

from collections.abc import Mapping

from wxloop.adapters import repository
from wxloop.services.jobs.context import JobContext
from wxloop.services.jobs.records import NonEmpty, PersonJob, TagId


class UserInfo(PersonJob):
    """Fetch OA ``user/info`` and link the ``unionid`` when there is one."""


class Tag(PersonJob):
    """``add`` / ``remove``: lists of tag ids (ASCII digits)."""

    add: list[TagId] | None = None
    remove: list[TagId] | None = None


class TagTopics(PersonJob):
    """``uid``, ``version`` (the preferences' ``v``), ``topics`` / ``remove``: tag names
    (``wxloop.services.mp_api.tags``)."""

    uid: NonEmpty
    version: int | None = None
    topics: list[str] | None = None
    remove: list[str] | None = None


def user_info(job: UserInfo, ctx: JobContext) -> str:
    info = ctx.wechat(job.app_id).user.get(job.openid)
    unionid = info.get("unionid") if isinstance(info, Mapping) else None
    if not unionid:
        return "no-unionid"
    repository.link_unionid(job.app_id, job.openid, unionid, ctx.now)
    return "linked"  # kept on the job's claim item: no uid there


def tag(job: Tag, ctx: JobContext) -> str:
    client = ctx.wechat(job.app_id)
    for tag_id in job.add or ():
        client.tag.tag_user(tag_id, job.openid)
    for tag_id in job.remove or ():
        client.tag.untag_user(tag_id, job.openid)
    return "tagged"


def tag_topics(job: TagTopics, ctx: JobContext) -> str:
    from wxloop.services.mp_api.tags import run_tag_topics  # the MP API package: only for this kind

    return run_tag_topics(ctx.raw, ctx.wechat(job.app_id))
