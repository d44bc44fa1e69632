"""``POST session``: a ``wx.login`` code becomes a signed session token for one person.

A returning person costs two DynamoDB requests: the launch left on the MP identity (its journey record,
via the stream) and the counted update of the person that keeps the sealed ``session_key``. A first
contact creates the person and identity in one transaction, with the first-touch attribution; a unionid
WeChat reveals is linked (merging into the person who already owns it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Mapping

from aws_lambda_powertools import Logger

from wxloop.adapters import mp_store, queue, repository
from wxloop.domain import session
from wxloop.protocol import errcodes
from wxloop.services.mp_api import me
from wxloop.services.mp_api.context import linked_oa, mp_account, mp_settings, signing_keys
from wxloop.services.mp_api.errors import ApiError

logger = Logger(child=True)
REFERRER_SCENES = frozenset({1037, 1038})  # opened by another MP: referrerInfo.appId is meaningful
_CHANNEL = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# jscode2session errcodes → the client's answer
_CODE_ERRORS = {errcodes.INVALID_CODE: (400, "invalid_code"), errcodes.CODE_USED: (400, "invalid_code"),
                errcodes.MINUTE_QUOTA: (429, "rate_limited"), errcodes.RISKY_USER: (403, "blocked")}


def session_key_aad(app_id: str, openid: str) -> str:
    """Associated data of a sealed session_key: it opens only for this MP user."""
    return f"mpsk|{app_id}|{openid}"


def first_touch(app_id: str, body: Mapping, now: int) -> dict:
    """Where an MP user was first met: scene, channel (``ch``/``channel`` of the launch query), referrer MP."""
    query = body.get("query") or {}
    channel = str(query.get("ch") or query.get("channel") or "")
    touch = {"channel": channel if _CHANNEL.match(channel) else "mp", "app_id": app_id, "kind": "mp_launch",
             "scene": str(body.get("scene") or ""), "at": now}
    if body.get("scene") in REFERRER_SCENES and body.get("referrer_app"):
        touch["ref"] = body["referrer_app"]
    return touch


def _code_to_session(app_id: str, code: str) -> tuple[str, str, str | None]:
    from wxloop.adapters import wechat

    try:
        doc = wechat.code_to_session(app_id, code)
    except wechat.WeChatAPIError as exc:
        status, name = _CODE_ERRORS.get(exc.errcode or 0, (503, "unavailable"))
        logger.warning("jscode2session failed", extra={"app_id": app_id, "errcode": exc.errcode})
        raise ApiError(status, "log in again" if status != 503 else "WeChat is unavailable", name) from None
    openid, key = doc.get("openid"), doc.get("session_key")
    if not isinstance(openid, str) or not openid or not isinstance(key, str) or not key:
        raise ApiError(503, "WeChat gave no session", "unavailable")
    unionid = doc.get("unionid")
    return openid, key, unionid if isinstance(unionid, str) and unionid else None


def login(app_id: str, body: Mapping, *, now: int | None = None) -> dict:
    """Exchange ``body["code"]`` for a session; returns ``{token, expires_at, person}``. The session_key is
    sealed on the person and never returned. Errors: 400 (bad code), 403 (blocked user), 404 (not an MP),
    429 (WeChat's or our rate limit), 503 (WeChat or storage unavailable)."""
    now = int(time.time()) if now is None else now
    mp_account(app_id)
    keys = signing_keys()
    openid, session_key, unionid = _code_to_session(app_id, body["code"])
    scene = body.get("scene")
    launch_id = hashlib.blake2b(f"{app_id}|{body['code']}".encode(), digest_size=12).hexdigest()
    event = {"id": launch_id, "type": "mp.launch", "app": app_id, "at": now,
             "detail": {k: v for k, v in (("scene", scene), ("hot", bool(body.get("hot"))),
                                          *_launch_channel(body.get("query") or {})) if v}}
    identity = mp_store.touch_mp_identity(app_id, openid, now=now, event=event)
    if identity is None:
        uid = mp_store.create_mp_identity(app_id, openid, now=now, event={**event, "type": "mp.first_launch"},
                                          first_touch=first_touch(app_id, body, now))
    else:
        uid = identity["uid"]
    if unionid and (identity or {}).get("unionid") != unionid:
        uid = repository.link_unionid(app_id, openid, unionid, now)
    if identity is None:
        _attribute(app_id, uid, body.get("query") or {}, now)
    sets: dict = {f"mpsk_{app_id}": mp_store.seal(_raw_key(session_key), session_key_aad(app_id, openid), keys)}
    if scene and not body.get("hot"):
        sets[f"mpscene_{app_id}"] = scene
    use = me.counted(uid, now, sets=sets)
    cold_scene = use.item.get(f"mpscene_{app_id}") if body.get("hot") else scene
    cold_scene = cold_scene if isinstance(cold_scene, int) else 0
    decision = me.prompt_for(use.item, app_id, cold_scene or None, now)
    if decision.mode == "cs_message":
        _queue_follow_card(app_id, openid, use.uid, now)
    expires_at = now + mp_settings().session_ttl_seconds
    token = session.issue(session.SessionClaims(app_id, use.uid, cold_scene, now, expires_at), keys)
    return {"token": token, "expires_at": expires_at, "person": me.summary(use.item, app_id, use.uid, decision)}


def _launch_channel(query: Mapping) -> tuple[tuple[str, str], ...]:
    """The channel name (``ch``) and short code (``code`` or an MP code's ``scene``) a launch carries, for
    the stream's per-channel counters; only well-formed values."""
    from wxloop.domain.invites import is_code

    ch = str(query.get("ch") or query.get("channel") or "")
    code = str(query.get("code") or query.get("scene") or "")
    return (("channel", ch if _CHANNEL.match(ch) else ""), ("code", code if is_code(code) else ""))


def _attribute(app_id: str, uid: str, query: Mapping, now: int) -> None:
    """A first contact through an invite: ``ref`` (signed reference of a share path), or a short code in
    ``code`` or ``scene`` (an MP code's scene). An attribution failure never fails the login: logged."""
    ref, code = query.get("ref"), query.get("code") or query.get("scene")
    if not ref and not code:
        return
    from wxloop.services import rewards

    try:
        rewards.attribute(app_id, uid, ref=ref or None, code=None if ref else code, now=now)
    except Exception as exc:
        logger.warning("attribution failed", extra={"app_id": app_id, "error": repr(exc)[:200]})


def _raw_key(session_key: str) -> bytes:
    try:
        return base64.b64decode(session_key, validate=True)
    except (binascii.Error, ValueError):
        return session_key.encode("utf-8")


def _queue_follow_card(app_id: str, openid: str, uid: str, now: int) -> None:
    """The fallback prompt: a customer-service message naming the OA, at most once per cool-down (one
    conditional write); the worker sends it only inside an open MP customer-service window."""
    oa = linked_oa(app_id)
    if oa is None:
        return
    cooldown = max(1, mp_settings().prompt_cooldown_days) * 86400
    try:
        if not mp_store.set_once_per(uid, f"fpc_{oa[0]}", now=now, every_seconds=cooldown):
            return
        queue.send({"id": f"follow-card:{app_id}:{uid}:{now}", "kind": "cs_send", "app_id": app_id,
                    "openid": openid, "message": {"msgtype": "text", "text": {
                        "content": f"关注公众号「{oa[1] or oa[0]}」，第一时间收到活动和服务通知。"}}})
    except Exception as exc:  # the card is an invitation, not something the person gave us: log and go on
        logger.warning("follow card not queued", extra={"app_id": app_id, "error": repr(exc)[:200]})


