"""``campaign_send``: one person's message of a campaign run, through the channel the planner chose.

The channel's send is the registry's own: customer service spends a message of an open window
(``messages.cs_send``, the OA's or the MP's windows), a subscribe message spends a credit
(``messages.subscribe_send``); an OA template message (service notices on service accounts only) is one
``message/template/send``. What the send came to is recorded by ``campaign_settled``, which the runner calls
once the outcome is final: ``SEND#{run}#{uid}`` with ``sent`` (and the push time on the person, for frequency
caps) or the failure; 45015/43101 have already closed the channel for the person (the runner does that with
``campaign_channel``); 45009 pauses the run until the account's quota resets (the job itself waits in the
queue, as every job of a blocked API does).
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools import Logger
from pydantic import model_validator

from wxloop.adapters.dynamo import campaigns as store
from wxloop.adapters.dynamo import identities, people
from wxloop.protocol import errcodes
from wxloop.services.jobs import timing
from wxloop.services.jobs.context import JobContext
from wxloop.services.jobs.messages import CsSend, SubscribeSend, cs_send, subscribe_send
from wxloop.services.jobs.outcomes import NotSendable, Outcome
from wxloop.services.jobs.records import NonEmpty, PersonJob

logger = Logger(child=True)


class Erased(NotSendable):
    """The person was erased (or is being erased) after the run planned the send: nobody to send to."""

    reason = "erased"


CampaignChannel = Literal["oa_cs", "mp_cs", "mp_subscribe", "oa_template"]


class CampaignSend(PersonJob):
    """``campaign``, ``run``, ``uid`` name the SEND item; ``channel`` says how. Customer service carries
    ``message`` (a body without ``touser``); templates carry ``template_id``, ``data`` and the optional
    ``page`` (subscribe), ``url``/``miniprogram`` (OA template)."""

    campaign: NonEmpty
    run: NonEmpty
    uid: NonEmpty
    channel: CampaignChannel
    message: dict[str, Any] | None = None
    template_id: NonEmpty | None = None
    data: dict[str, Any] | None = None
    page: str | None = None
    url: str | None = None
    miniprogram: dict[str, Any] | None = None
    experiment: NonEmpty | None = None  # an A/B campaign: the person's variant, recorded in the journey
    variant: NonEmpty | None = None

    @model_validator(mode="after")
    def _body_fits_channel(self) -> CampaignSend:
        if self.channel in ("oa_cs", "mp_cs"):
            if not self.message or not isinstance(self.message.get("msgtype"), str) or not self.message["msgtype"]:
                raise ValueError("campaign_send message needs a msgtype")
        elif not self.template_id or not self.data:
            raise ValueError("campaign_send template needs template_id and data")
        return self


def campaign_send(job: CampaignSend, ctx: JobContext) -> str:
    """Send through the job's channel; raises as the underlying send does (the runner settles it), and
    ``Erased`` (nothing sent) when the person is gone or being erased."""
    person = people.get_person(job.uid)
    if person is None or person.get("erasing"):
        raise Erased
    if job.channel in ("oa_cs", "mp_cs"):
        return cs_send(CsSend(id=job.id, kind="cs_send", app_id=job.app_id, openid=job.openid,
                              message=job.message or {}, platform="oa" if job.channel == "oa_cs" else "mp"), ctx)
    if job.channel == "mp_subscribe":
        return subscribe_send(SubscribeSend(id=job.id, kind="subscribe_send", app_id=job.app_id, openid=job.openid,
                                            template_id=job.template_id or "", data=job.data or {}, page=job.page), ctx)
    body: dict[str, Any] = {"touser": job.openid, "template_id": job.template_id, "data": job.data}
    body.update({k: v for k, v in (("url", job.url), ("miniprogram", job.miniprogram)) if v})
    ctx.wechat(job.app_id).post("message/template/send", data=body)
    return "sent:template"


def campaign_channel(job: CampaignSend) -> str:
    """What a 45015/43101 closes for the person: the names ``cs_send``/``subscribe_send`` use."""
    if job.channel in ("oa_cs", "mp_cs"):
        return "cs"
    return f"subscribe:{job.template_id}" if job.channel == "mp_subscribe" else "template"


def campaign_settled(job: CampaignSend, outcome: Outcome, now: int) -> None:
    """Record a final outcome on the SEND item (``sent``, ``closed:45015``, ``closed:window``, ``failed:…``;
    a success also records the push on the person), once however often it is told (``record_send_result``
    is one conditional transaction); a 45009 pauses the run until the quota resets. Other
    deferrals (a per-person cap) change nothing: the job comes back."""
    if outcome.status == "deferred":
        if outcome.errcode == errcodes.DAILY_QUOTA:
            store.pause_run(job.campaign, job.run, timing.quota_reset_after(now))
        return
    if outcome.status == "ok":
        state = "sent"
    elif outcome.errcode is None and outcome.detail:
        state = f"{outcome.status}:{outcome.detail}"
    else:
        state = str(outcome)
    written = store.record_send_result(job.campaign, job.run, job.uid, state, job.channel, now,
                                       push_at=now if outcome.status == "ok" else None)
    if outcome.status == "ok" and (written or (store.get_send(job.campaign, job.run, job.uid) or {}).get("state")
                                   == "sent"):  # told again: the same event (same id and time) again
        identities.leave_outbox(job.app_id, job.openid, send_event(job, now), uid=job.uid)


SEND_TYPES = {"oa_cs": "oa.send.cs", "mp_cs": "mp.send.cs", "mp_subscribe": "mp.send.subscribe",
              "oa_template": "oa.send.template"}


def send_event(job: CampaignSend, at: int) -> dict[str, Any]:
    """The journey event of a campaign message WeChat accepted (not the person's action: ``by_user`` false), with
    the campaign and, in an A/B campaign, the experiment and the person's variant: the KPI report's exposure.
    Left on the identity item, whose stream turns it into the journey record, as every push's event."""
    event: dict[str, Any] = {"id": f"send:{job.campaign}#{job.run}#{job.uid}", "type": SEND_TYPES[job.channel],
                             "app": job.app_id, "at": at, "campaign": job.campaign, "detail": {"kind": job.channel}}
    if job.experiment and job.variant:
        event.update(experiment=job.experiment, variant=job.variant)
    return event
