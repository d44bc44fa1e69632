"""Acquisition channels: a named OA parametric QR code, MP code, MP URL Link, encrypted or plain URL Scheme,
each carrying a short code (``CODE#{code}`` → the channel), created through WeChat's API (the plain scheme
needs none), renewed before expiry, and listed with the per-day counters the stream keeps.

URL Links and encrypted schemes expire within 30 days and temporary OA codes within 30 days: the channel
keeps ``expires_at`` and ``renew`` replaces those about to lapse with a new link for the same code.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from wxloop.adapters.dynamo import channels as store
from wxloop.adapters.dynamo import referrals
from wxloop.domain import invites

KINDS = ("oa-temp", "oa-perm", "mp-code", "mp-link", "mp-scheme", "mp-plain-scheme")
EXPIRING = ("oa-temp", "mp-link", "mp-scheme")
MAX_DAYS = 30  # WeChat: temporary QR codes, URL Links and encrypted schemes live at most 30 days
NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
PATH = re.compile(r"^[A-Za-z0-9_/-]{1,128}$")


class ChannelError(ValueError):
    """A channel that cannot be made as asked (bad name, kind, path or days; WeChat refused)."""


@dataclass(frozen=True, slots=True)
class Made:
    """What creating a channel gave: the link or QR content, an image (MP code) and the expiry (0: none)."""

    link: str
    image: bytes = b""
    expires_at: int = 0
    ticket: str = ""


def check(name: str, kind: str, path: str, days: int) -> None:
    """Refuse what WeChat would refuse, before any call."""
    if not NAME.match(name):
        raise ChannelError("a channel name is 1-64 of A-Z a-z 0-9 _ . : -")
    if kind not in KINDS:
        raise ChannelError(f"kind must be one of {', '.join(KINDS)}")
    if kind.startswith("mp-") and kind != "mp-code" and not PATH.match(path):
        raise ChannelError("--path must be an MP page path such as pages/index/index (no query)")
    if kind in EXPIRING and not 1 <= days <= MAX_DAYS:
        raise ChannelError(f"--expire-days must be 1-{MAX_DAYS} for {kind}")


def plain_scheme(mp_app: str, path: str, code: str) -> str:
    """``weixin://dl/business/?appid=…&path=…&query=…`` (no API call; the path must be declared in the MP
    console; the query is URL-encoded)."""
    return "weixin://dl/business/?" + urlencode({"appid": mp_app, "path": path, "query": f"code={code}"},
                                                quote_via=quote)


def make(client, kind: str, app_id: str, code: str, path: str, days: int, now: int) -> Made:
    """Create the code or link through ``client`` (a wechatpy client); raises ``ChannelError``."""
    expires = now + days * 86400 if kind in EXPIRING else 0
    try:
        if kind in ("oa-temp", "oa-perm"):
            body: dict[str, Any] = {"action_name": "QR_STR_SCENE" if kind == "oa-temp" else "QR_LIMIT_STR_SCENE",
                    "action_info": {"scene": {"scene_str": invites.oa_scene_str(code)}}}
            if kind == "oa-temp":
                body["expire_seconds"] = days * 86400
            out = client.qrcode.create(body)
            return Made(str(out["url"]), expires_at=expires, ticket=str(out.get("ticket", "")))
        if kind == "mp-code":
            res = client.wxa.get_wxa_code_unlimited(invites.mp_scene(code), page=path or None)
            image = getattr(res, "content", res)
            return Made("", image=image if isinstance(image, bytes) else b"")
        if kind == "mp-link":
            out = client.post("wxa/generate_urllink", api_base_url=client.base, data={
                "path": path, "query": f"code={code}", "expire_type": 1, "expire_interval": days})
            return Made(str(out["url_link"]), expires_at=expires)
        if kind == "mp-scheme":
            out = client.post("wxa/generatescheme", api_base_url=client.base, data={
                "jump_wxa": {"path": path, "query": f"code={code}"}, "is_expire": True, "expire_type": 1,
                "expire_interval": days})
            return Made(str(out["openlink"]), expires_at=expires)
        return Made(plain_scheme(app_id, path, code))
    except ChannelError:
        raise
    except Exception as exc:
        raise ChannelError(f"WeChat refused: {getattr(exc, 'errcode', '')} {exc}"[:200]) from exc


def create(name: str, kind: str, *, app_id: str, path: str = "", days: int = MAX_DAYS, cost: float | None = None,
           client=None, now: int | None = None) -> dict:
    """Create the channel ``name`` (a new short code stored as ``CODE#``), store it, return it with ``image``
    bytes for an MP code. Raises ``ChannelError``; an existing name is refused (use ``renew``)."""
    now = int(time.time()) if now is None else now
    check(name, kind, path, days)
    if store.get_channel(name):
        raise ChannelError(f"channel {name} exists")
    code = invites.new_code()
    if not referrals.put_code(code, {"kind": "channel", "channel": name, "app_id": app_id}, now=now):
        raise ChannelError("code collision: try again")
    made = make(client, kind, app_id, code, path, days, now) if kind != "mp-plain-scheme" \
        else Made(plain_scheme(app_id, path, code))
    item = {"kind": kind, "app_id": app_id, "code": code, "path": path, "days": days, "link": made.link,
            "ticket": made.ticket, "expires_at": made.expires_at, "created_at": now}
    if cost is not None:
        item["cost"] = str(cost)
    store.put_channel(name, item)
    return {**item, "name": name, "image": made.image}


RENEW_WITHIN_DAYS = 3  # the scheduled renewal runs daily: three tries before a link lapses


def due(*, within_days: int = RENEW_WITHIN_DAYS, now: int | None = None) -> list[dict]:
    """The expiring channels whose link lapses within ``within_days`` (one index query, no scan)."""
    now = int(time.time()) if now is None else now
    return [ch for ch in store.list_channels()
            if ch.get("kind") in EXPIRING and int(ch.get("expires_at") or 0) <= now + within_days * 86400]


def renewal_jobs(*, within_days: int = RENEW_WITHIN_DAYS, now: int | None = None) -> list[dict]:
    """One ``channel_renew`` job per channel due; its id names the channel's revision it replaces, so a
    repeated schedule, a retry or a CLI renewal meanwhile never renews one link twice."""
    return [{"id": f"channel_renew:{ch['name']}:{_rev(ch)}", "kind": "channel_renew", "app_id": ch["app_id"],
             "channel": ch["name"], "rev": _rev(ch)} for ch in due(within_days=within_days, now=now)]


def _rev(channel: Mapping[str, Any]) -> int:
    """How often the channel's link was renewed (its revision; 0 for a new channel)."""
    return int(channel.get("rev") or 0)


def queue_renewals(*, within_days: int = RENEW_WITHIN_DAYS, now: int | None = None) -> int:
    """Queue the ``renewal_jobs`` for the worker (the daily schedule); returns how many. Raises
    ``QueueError``: the schedule's retry, or tomorrow's run inside ``within_days``, queues them again."""
    from wxloop.adapters import queue

    jobs: list[Mapping[str, Any]] = list(renewal_jobs(within_days=within_days, now=now))
    queue.send_many(jobs)
    return len(jobs)


def renew_one(name: str, rev: int, client, *, now: int | None = None) -> str:
    """Replace channel ``name``'s link (same code, new expiry) if its revision is still ``rev``.

    Returns ``renewed``, ``gone`` (deleted or no longer expiring) or ``already`` (renewed meanwhile).
    Raises ``ChannelError`` when WeChat refuses; a WeChat error with an errcode passes through unchanged
    so the job runner can tell a quota (45009) from a retry.
    """
    now = int(time.time()) if now is None else now
    ch = store.get_channel(name)
    if ch is None or ch.get("kind") not in EXPIRING:
        return "gone"
    if _rev(ch) != rev:
        return "already"
    made = make(client, ch["kind"], ch["app_id"], ch["code"], ch.get("path", ""), int(ch.get("days") or MAX_DAYS),
                now)
    fields = {"link": made.link, "ticket": made.ticket, "expires_at": made.expires_at, "renewed_at": now}
    return "renewed" if store.replace_link(name, rev, fields) else "already"


def renew(*, within_days: int = RENEW_WITHIN_DAYS, client_for=None, now: int | None = None) -> list[str]:
    """Renew at once every channel due (the CLI); the schedule queues ``renewal_jobs`` instead."""
    now = int(time.time()) if now is None else now
    return [ch["name"] for ch in due(within_days=within_days, now=now)
            if renew_one(ch["name"], _rev(ch), client_for(ch["app_id"]), now=now) == "renewed"]


def listing(*, now: int | None = None, soon_days: int = 3) -> list[dict]:
    """Per channel: its counters summed, cost per new person (when a cost was given) and whether it lapses
    within ``soon_days``. One query per channel (the counters), none a scan."""
    now = int(time.time()) if now is None else now
    rows = []
    for ch in store.list_channels():
        t = store.totals(ch["name"])
        new = t["new_followers"] + t["new_mp_users"]
        cost = float(ch["cost"]) if ch.get("cost") else None
        expires = int(ch.get("expires_at") or 0)
        rows.append({"name": ch["name"], "kind": ch["kind"], **t,
                     "cost_per_new": round(cost / new, 2) if cost is not None and new else None,
                     "expires_at": expires, "lapsing": bool(expires and expires <= now + soon_days * 86400)})
    return rows
