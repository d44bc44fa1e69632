"""``reward_notice``: tell an inviter of a reward by what WeChat allows right now (wechat-rules.md): a
customer-service text inside an open window of any of the person's apps; else the campaign's MP subscribe
template while a one-time credit is there; else nothing, recorded as the outcome."""

from __future__ import annotations

from typing import Literal

from wxloop.adapters import repository
from wxloop.config import load_config
from wxloop.services.jobs.context import JobContext
from wxloop.services.jobs.messages import CsSend, SubscribeSend, cs_send, subscribe_send
from wxloop.services.jobs.outcomes import NoCredit, Unfollowed, WindowClosed
from wxloop.services.jobs.records import Job, NonEmpty


class RewardNotice(Job):
    """``uid``: the inviter; ``campaign``: the reward campaign whose ``notify`` says what to send;
    ``app_id``: the MP whose subscribe template the campaign names."""

    uid: NonEmpty
    campaign: NonEmpty


def reward_notice(job: RewardNotice, ctx: JobContext) -> str:
    from wxloop.services import rewards

    campaign = rewards.campaigns().get(job.campaign)
    person = repository.get_person(job.uid) or {}
    if campaign is None or campaign.notify is None or not person:
        return "untold:no-notice"
    notify, openids = campaign.notify, dict(person.get("openids") or {})
    config = load_config()
    for app_id, openid in sorted(openids.items()):
        account = config.account(app_id)
        platform: Literal["oa", "mp"] = "mp" if account is not None and account.kind == "mp" else "oa"
        try:
            return "told:" + cs_send(CsSend(id=job.id, kind="cs_send", app_id=app_id, openid=openid, platform=platform,
                                            message={"msgtype": "text", "text": {"content": notify.text}}), ctx)
        except (WindowClosed, Unfollowed):
            continue
    if notify.template_id and job.app_id in openids:
        try:
            return "told:subscribe:" + subscribe_send(SubscribeSend(
                id=job.id, kind="subscribe_send", app_id=job.app_id, openid=openids[job.app_id],
                template_id=notify.template_id, data={k: {"value": v} for k, v in (notify.data or {}).items()},
                page=notify.page), ctx)
        except NoCredit:
            pass
    return "untold:no-channel"
