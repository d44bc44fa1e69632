"""Job kinds that message a person: ``cs_send`` (customer-service message) and ``subscribe_send``
(Mini Program subscribe message). Each spends what WeChat would otherwise refuse (a window's message, a
template credit) before calling, and gives it back when the call failed in a way a retry may fix."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger
from pydantic import Field, field_validator

from wxloop.adapters import repository
from wxloop.domain import reach
from wxloop.protocol import errcodes
from wxloop.services.jobs.context import JobContext
from wxloop.services.jobs.outcomes import NoCredit, Unfollowed, WindowClosed
from wxloop.services.jobs.records import NonEmpty, PersonJob

logger = Logger(child=True)
CS_SPEND_TRIES = 3  # reads of the identity when a push reopens a window between the read and the spend


class CsSend(PersonJob):
    """``message``: a customer-service body without ``touser`` (``{"msgtype": "text", "text": {...}}``,
    ``image``, ``news``, ``miniprogrampage``)."""

    message: dict[str, Any]
    platform: Literal["oa", "mp"] = "oa"  # whose customer-service windows the send spends (MP: 5/48 h, 2/1 min)

    @field_validator("message")
    @classmethod
    def _has_msgtype(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value.get("msgtype"), str) or not value["msgtype"]:
            raise ValueError("cs_send message needs a msgtype")
        return value


class SubscribeSend(PersonJob):
    """An MP subscribe message: ``template_id``, ``data`` and the optional ``page``, ``miniprogram_state``,
    ``lang``."""

    template_id: NonEmpty
    data: Annotated[dict[str, Any], Field(min_length=1)]
    page: str | None = None
    miniprogram_state: str | None = None
    lang: str | None = None


def cs_send(job: CsSend, ctx: JobContext) -> str:
    """Spend a message of an open customer-service window (``wxloop.domain.reach``), then send.

    The spend is conditional on the open time of the window read from the identity. When it fails (the
    person wrote again in between and reopened the window, or a concurrent send took the last message), the
    identity is read again and the spend retried against the current windows: ``CS_SPEND_TRIES`` reads in
    all before concluding that none is open. A person whose identity says ``following`` is False gets
    nothing (``closed:unsubscribed``: WeChat not called, no window spent); absent means unknown: go on.
    """
    app_id, openid = job.app_id, job.openid
    for _ in range(CS_SPEND_TRIES):
        identity = repository.get_identity(app_id, openid)
        if identity is not None and identity.get("following") is False:
            raise Unfollowed("the person has unfollowed")
        windows = reach.open_cs_windows(identity, ctx.now, reach.MP_WINDOWS if job.platform == "mp" else reach.WINDOWS)
        if not windows:
            break
        for open_window in windows:
            window = open_window.window
            if repository.spend_cs_window(app_id, openid, window.name, open_window.opened_at, window.cap):
                try:
                    ctx.wechat(app_id).post("message/custom/send", data={**job.message, "touser": openid})
                except Exception as exc:
                    if getattr(exc, "errcode", None) == errcodes.OUT_OF_CS_WINDOW:  # WeChat knows no open window
                        repository.exhaust_cs_window(app_id, openid, window.name, open_window.opened_at, window.cap)
                    else:  # not sent (or not known to be): give the message back for the retry
                        repository.refund_cs_window(app_id, openid, window.name, open_window.opened_at)
                    raise
                return f"sent:{window.name}"
    raise WindowClosed("no customer-service window open")


def cs_channel(job: CsSend) -> str:
    return "cs"


def subscribe_send(job: SubscribeSend, ctx: JobContext) -> str:
    """Send a subscribe message, spending one credit of the person's ``SUB#{template_id}`` counter first.

    When the counter exists, one credit is taken with a conditional write BEFORE ``message/subscribe/send``
    (none left: ``closed:credit``, WeChat is not called); a failed send gives it back, except 43101 (WeChat
    has no credit either), which sets the counter to 0. When no counter exists (no popup event was ever
    recorded for this person and template), the message is sent uncounted as before and WeChat decides.
    """
    app_id, openid, template_id = job.app_id, job.openid, job.template_id
    body: dict[str, Any] = {"touser": openid, "template_id": template_id, "data": job.data}
    for optional in ("page", "miniprogram_state", "lang"):
        if getattr(job, optional):
            body[optional] = getattr(job, optional)
    state, gen = repository.spend_subscribe_credit(app_id, openid, template_id)
    if state == "none_left":
        raise NoCredit("no subscribe credit left")
    try:
        ctx.wechat(app_id).post("message/subscribe/send", data=body)
    except Exception as exc:
        if state == "spent":
            if getattr(exc, "errcode", None) == errcodes.NO_SUBSCRIBE_CREDIT:
                try:
                    repository.zero_subscribe_credit(app_id, openid, template_id, ctx.now)
                except Exception as err:  # the next send meets 43101 again and retries this
                    logger.warning("subscribe credit not reset", extra={"job_id": job.id,
                                                                        "error": type(err).__name__})
            else:  # not sent (or not known to be): give the credit back for the retry
                repository.refund_subscribe_credit(app_id, openid, template_id, gen)
        raise
    return "sent" if state == "spent" else "sent-uncounted"


def subscribe_channel(job: SubscribeSend) -> str:
    return f"subscribe:{job.template_id}"
