"""``campaign_mass``: a campaign run's one OA mass send to its followers, in two stages.

``tag``: put a batch of ≤ 50 planned followers (WeChat's limit per ``tags/members/batchtagging``) on the run's
own OA tag (created by the first batch, its id kept on the run item), then mark the batch tagged. ``send``:
queued once every batch is tagged; counts the send against the account's mass quota (subscription account:
1 a Shanghai day; service account: 4 a month), then ONE ``message/mass/sendall`` to the tag, then deletes
the tag. A quota used up skips the send (counted ``skip_mass_quota`` for the tagged members). Job ids are
stable per (campaign, run, batch) and (campaign, run): the worker runs each once.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from wxloop.adapters.dynamo import campaigns as store
from wxloop.adapters.dynamo import mass_sends, people
from wxloop.protocol import errcodes
from wxloop.services.jobs.context import JobContext
from wxloop.services.jobs.outcomes import Outcome
from wxloop.services.jobs.records import Job, NonEmpty, OpenId

BATCH = 50  # openids per tags/members/batchtagging (WeChat's limit)
QUOTA = {"subscription": ("%Y-%m-%d", 1), "service": ("%Y-%m", 4)}  # (period, sends per period)
SHANGHAI = timedelta(hours=8)


class CampaignMass(Job):
    """``app_id`` is the OA. ``tag`` stage: ``batch``, its ``openids`` and their persons' ``uids`` (same
    order); ``send`` stage: ``message``
    (``{"text": …}`` or ``{"media_id": …}``, the campaign's ``oa_mass`` content) and ``oa_type``."""

    campaign: NonEmpty
    run: NonEmpty
    stage: Literal["tag", "send"]
    batch: NonEmpty | None = None
    openids: Annotated[list[OpenId], Field(min_length=1, max_length=BATCH)] | None = None
    uids: Annotated[list[NonEmpty], Field(max_length=BATCH)] | None = None
    message: dict[Literal["text", "media_id"], NonEmpty] | None = None
    oa_type: Literal["subscription", "service"] = "subscription"

    @model_validator(mode="after")
    def _fields_fit_stage(self) -> CampaignMass:
        if self.stage == "tag" and not (self.batch and self.openids and len(self.uids or ()) == len(self.openids)):
            raise ValueError("a tag stage needs batch, openids and as many uids")
        if self.stage == "send" and (not self.message or len(self.message) != 1):
            raise ValueError("a send stage needs one message: text or media_id")
        return self


def tag_name(campaign_id: str, run: str) -> str:
    """The run's OA tag name: unique per (campaign, run), within WeChat's 30 characters."""
    return "wxloop-" + hashlib.sha256(f"{campaign_id}#{run}".encode()).hexdigest()[:20]


def tag_job(campaign_id: str, run: str, app_id: str, batch: str, members: list[tuple[str, str]]) -> dict:
    """The tag job of one batch of (uid, openid) ``members``."""
    return {"id": f"campaign_mass:{campaign_id}#{run}#tag#{batch}", "kind": "campaign_mass", "app_id": app_id,
            "campaign": campaign_id, "run": run, "stage": "tag", "batch": batch,
            "uids": [u for u, _ in members], "openids": [o for _, o in members]}


def send_job(campaign_id: str, run: str, app_id: str, message: dict, oa_type: str) -> dict:
    return {"id": f"campaign_mass:{campaign_id}#{run}#send", "kind": "campaign_mass", "app_id": app_id,
            "campaign": campaign_id, "run": run, "stage": "send", "message": dict(message), "oa_type": oa_type}


def ready(campaign_id: str, run: str) -> bool:
    """Whether the run's mass send is due: every batch queued and tagged."""
    state = mass_sends.state(campaign_id, run)
    return state["final"] and bool(state["batches"]) and state["batches"] <= state["tagged"]


def _run_tag(client: Any, job: CampaignMass) -> int:
    known = mass_sends.state(job.campaign, job.run)["tag"]
    if known is not None:
        return known
    from wxloop.adapters.wechat import WeChatAPIError

    name = tag_name(job.campaign, job.run)
    try:
        tag_id = int(client.tag.create(name)["id"])
    except WeChatAPIError as exc:
        if exc.errcode != errcodes.TAG_NAME_EXISTS:  # our own tag, created before a crash
            raise
        tag_id = next(int(t["id"]) for t in client.tag.get() if t.get("name") == name)
    return mass_sends.claim_tag(job.campaign, job.run, tag_id)


def _untag_erased_meanwhile(client: Any, tag_id: int, members: list[tuple[str, str]]) -> tuple[list, list]:
    """Check the tagged people again: one whose erasure began between the first check and the tagging would
    otherwise keep the tag (the erasure's ``untag_all`` may have run before it) and get the mass send. An
    erasure that begins after this check runs its ``untag_all`` after the tagging, which removes the tag."""
    live = store.live_people(u for u, _ in members)
    gone = [o for u, o in members if u not in live]
    if gone:
        try:
            client.tag.untag_user(tag_id, gone)
        except Exception as exc:  # never settle the batch (and so let the send go) with them still tagged
            raise RuntimeError("erased members not untagged: the batch is retried") from exc
    kept = [(u, o) for u, o in members if u in live]
    return kept, [o for _, o in kept]


def campaign_mass(job: CampaignMass, ctx: JobContext) -> str:
    """Run the job's stage; raises as WeChat or the table do (the runner retries or settles)."""
    client = ctx.wechat(job.app_id)
    if job.stage == "tag":
        live = store.live_people(job.uids or ())  # someone erased since the release is not tagged
        members = [(u, o) for u, o in zip(job.uids or (), job.openids or (), strict=True) if u in live]
        openids = [o for _, o in members]
        if openids:
            tag_id = _run_tag(client, job)
            client.tag.tag_user(tag_id, openids)
            members, openids = _untag_erased_meanwhile(client, tag_id, members)
        for uid, _ in members:  # the frequency caps count the mass send (even one the quota then refuses)
            people.record_push(uid, ctx.now)
        mass_sends.mark_tagged(job.campaign, job.run, job.batch or "", len(openids))
        if ready(job.campaign, job.run):  # the last batch queues the send (the release may have too: same id)
            _queue_send(job)
        return "tagged"
    return _send(client, job, ctx.now)


def mass_settled(job: CampaignMass, outcome: Outcome, now: int) -> None:
    """A tag batch refused for good (e.g. 45059: a member already has 20 tags) counts as done with nobody
    tagged (``n_skip_mass_tag_failed``), so the run's send is not held forever."""
    if job.stage != "tag" or outcome.status in ("ok", "duplicate", "deferred"):
        return
    mass_sends.mark_tagged(job.campaign, job.run, job.batch or "", 0, failed=len(job.openids or ()))
    if ready(job.campaign, job.run):
        _queue_send(job)


def _queue_send(job: CampaignMass) -> None:
    from wxloop.adapters import queue
    from wxloop.services import campaigns

    campaign, _ = campaigns.load(job.campaign)
    queue.send_many([send_job(job.campaign, job.run, job.app_id, dict(campaign.content["oa_mass"]),
                              campaign.accounts["oa_type"])])


def _send(client: Any, job: CampaignMass, now: int) -> str:
    state = mass_sends.state(job.campaign, job.run)
    if not (state["final"] and state["batches"] <= state["tagged"]) or state["tag"] is None:
        raise RuntimeError("mass send queued before its batches were tagged")  # retried by SQS
    fmt, limit = QUOTA[job.oa_type]
    period = (datetime.fromtimestamp(now, UTC) + SHANGHAI).strftime(fmt)
    if not mass_sends.spend_quota(job.app_id, period, limit, f"{job.campaign}#{job.run}", now):
        store.add_counts(job.campaign, job.run, {"skip_mass_quota": state["members"]})
        client.tag.delete(state["tag"])
        return "skipped:quota"
    if not mass_sends.begin_send(job.campaign, job.run, now):
        client.tag.delete(state["tag"])
        return "duplicate:mass"
    kind, value = next(iter((job.message or {}).items()))
    body: dict[str, Any] = {"filter": {"is_to_all": False, "tag_id": state["tag"]}, "send_ignore_reprint": 0}
    body.update({"msgtype": "text", "text": {"content": value}} if kind == "text" else
                {"msgtype": "mpnews", "mpnews": {"media_id": value}})
    # wechatpy's send_mass_* name the filter ``group_id`` (the API's old name): the body is built here
    client.post("message/mass/sendall", data=body)
    store.add_counts(job.campaign, job.run, {"mass_sent": state["members"]})
    client.tag.delete(state["tag"])
    return "sent:mass"
