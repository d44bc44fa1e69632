"""The ``campaign_send`` job: one person's message of a campaign run, through the channel the planner chose.

Fields: ``openid``, ``campaign``, ``run``, ``uid``, ``channel`` (``oa_cs``, ``mp_cs``, ``mp_subscribe``,
``oa_template``) and the channel's body (``message`` for customer service; ``template_id``, ``data``,
``page``/``url``/``miniprogram`` for templates). Customer service spends a message of an open window and
subscribe messages a credit (the same code as ``cs_send`` / ``subscribe_send``); success records the push on
the person (frequency caps) and ``sent`` on ``SEND#{run}#{uid}``. Failures are settled by the worker as for
every job: 45015/43101 close the channel for the person, 45009 blocks the account's campaign sends until the
quota resets, and ``settled`` below records that on the send and pauses the run.
"""

from __future__ import annotations

from collections.abc import Mapping

from wxloop.adapters.dynamo import campaigns as store
from wxloop.adapters.dynamo import people
from wxloop.domain import reach

CHANNELS = ("oa_cs", "mp_cs", "mp_subscribe", "oa_template")
FIELDS = ("openid", "campaign", "run", "uid", "channel")


def closed_channel(job: Mapping) -> str:
    """The identity's ``closed`` entry a 45015/43101 sets (the names ``cs_send``/``subscribe_send`` use)."""
    channel = job.get("channel")
    if channel in ("oa_cs", "mp_cs"):
        return "cs"
    return f"subscribe:{job.get('template_id')}" if channel == "mp_subscribe" else "template"


def invalid(job: Mapping) -> str | None:
    """Why the job can never run, or None."""
    channel = job.get("channel")
    if channel not in CHANNELS:
        return "campaign_send has no known channel"
    if channel in ("oa_cs", "mp_cs") and not (isinstance(job.get("message"), dict) and job["message"].get("msgtype")):
        return "campaign_send message needs a msgtype"
    if channel in ("mp_subscribe", "oa_template") and not (job.get("template_id") and isinstance(job.get("data"), dict)):
        return "campaign_send template needs template_id and data"
    return None


def run(job: Mapping, now: int, *, cs_send, subscribe_send, client) -> str:
    """Send through the job's channel (``cs_send``/``subscribe_send``: the worker's runners), then record it."""
    channel = job["channel"]
    if channel == "oa_cs":
        detail = cs_send(job, now)
    elif channel == "mp_cs":
        detail = cs_send(job, now, windows=reach.MP_WINDOWS)
    elif channel == "mp_subscribe":
        detail = subscribe_send(job, now)
    else:
        body = {"touser": job["openid"], "template_id": job["template_id"], "data": job["data"]}
        body.update({k: job[k] for k in ("url", "miniprogram") if job.get(k)})
        client(job["app_id"]).post("message/template/send", data=body)
        detail = "sent"
    people.record_push(job["uid"], now)
    store.record_send_result(job["campaign"], job["run"], job["uid"], "sent", now)
    return detail


def settled(job: Mapping, status: str, *, now: int, paused_until: int = 0) -> None:
    """Record a failed send's outcome (``closed:45015``, ``failed:…``) on its SEND item, or pause the run
    until the quota resets (``paused_until``: 45009; the job itself waits in the queue)."""
    if paused_until:
        store.pause_run(job["campaign"], job["run"], paused_until)
        return
    store.record_send_result(job["campaign"], job["run"], job["uid"], status, now)
