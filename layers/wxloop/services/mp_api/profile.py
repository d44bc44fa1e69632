"""``POST phone``, ``POST share-info``, ``POST events``, ``PUT preferences``: what the person gives us.

Every call is counted against the person's rate limit first (one request that also reads the person), so a
caller over the limit costs WeChat nothing. The phone number never reaches a log line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from aws_lambda_powertools import Logger

from wxloop.adapters import mp_store, queue, repository
from wxloop.domain import consent
from wxloop.domain.phone import is_phone, mask, sealed_phone_aad
from wxloop.domain.session import SessionClaims
from wxloop.protocol import errcodes
from wxloop.services.mp_api import me
from wxloop.services.mp_api.context import linked_oa, mp_settings, signing_keys
from wxloop.services.mp_api.errors import ApiError
from wxloop.services.mp_api.idempotency import once
from wxloop.services.mp_api.login import session_key_aad
from wxloop.settings import settings

logger = Logger(child=True)


def _iso(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def phone_aad(uid: str) -> str:
    return sealed_phone_aad(uid)


def save_phone(claims: SessionClaims, code: str, *, now: int | None = None) -> dict:
    """``getuserphonenumber`` for a button code; the number is sealed on the person, shown masked. A retry of
    the same code gets the first answer (idempotent; WeChat would refuse the used code)."""
    now = int(time.time()) if now is None else now
    if not consent.allows(me.counted(claims.uid, now).item, "phone"):
        raise ApiError(403, "the person has not agreed to keep a phone number", "consent_required")
    return once("phone", {"uid": claims.uid, "code": code}, lambda: _fetch_phone(claims, code, now))


def _fetch_phone(claims: SessionClaims, code: str, now: int) -> dict:
    from wxloop.adapters import wechat

    try:
        info = wechat.get_user_phone_number(claims.app_id, code)
    except wechat.WeChatAPIError as exc:
        logger.warning("getuserphonenumber failed", extra={"app_id": claims.app_id, "errcode": exc.errcode})
        if exc.errcode == errcodes.INVALID_CODE:
            raise ApiError(400, "invalid phone code", "invalid_code") from None
        raise ApiError(503, "WeChat is unavailable", "unavailable") from None
    number = info.get("phoneNumber") if isinstance(info, Mapping) else None
    watermark = (info.get("watermark") or {}) if isinstance(info, Mapping) else {}
    if not is_phone(number) or watermark.get("appid") not in (None, claims.app_id):
        raise ApiError(503, "WeChat gave no phone number", "unavailable")
    masked = mask(number)
    sealed = mp_store.seal(number.encode("ascii"), phone_aad(claims.uid), signing_keys())
    use = me.counted(claims.uid, now, sets={"phone": sealed, "phone_masked": masked, "phone_at": now})
    _phone_bound(use.uid, now)
    return {"phone": masked}


def _phone_bound(uid: str, now: int) -> None:
    """A bound phone may reward the person's inviter (one call; the reward is idempotent). A failure is
    logged, never the caller's problem: the number is kept either way."""
    from wxloop.domain.rewards import InviteeEvent
    from wxloop.services import rewards

    try:
        outcome = rewards.qualify(InviteeEvent("phone_bound", uid, now))
    except Exception as exc:
        logger.error("reward on phone bound failed", extra={"error": repr(exc)[:200]})
        return
    if outcome in ("rewarded", "reversed"):
        logger.info("inviter rewarded", extra={"outcome": outcome})


def share_info(claims: SessionClaims, encrypted_data: str, iv: str, *, now: int | None = None) -> dict:
    """Decrypt a group share's ``encryptedData`` with the person's stored session_key (openGId) and keep it
    as a journey event. 409 ``session_stale`` when the key is missing or no longer opens the data (the
    person logged in elsewhere since): log in again."""
    now = int(time.time()) if now is None else now
    person = me.counted(claims.uid, now).item
    try:
        raw_iv = base64.b64decode(iv, validate=True)
        base64.b64decode(encrypted_data, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "encryptedData and iv must be base64") from None
    if len(raw_iv) != 16:
        raise ApiError(400, "iv must be 16 bytes")
    openid = (person.get("openids") or {}).get(claims.app_id)
    key = mp_store.unseal(person.get(f"mpsk_{claims.app_id}"), session_key_aad(claims.app_id, openid or ""),
                          signing_keys()) if openid else None
    if key is None:
        raise ApiError(409, "session expired, log in again", "session_stale")
    return once("share_info", {"uid": claims.uid, "data": hashlib.sha256(encrypted_data.encode()).hexdigest()},
                lambda: _open_share(claims, key, encrypted_data, iv, now))


def _open_share(claims: SessionClaims, key: bytes, encrypted_data: str, iv: str, now: int) -> dict:
    from wechatpy.crypto import WeChatWxaCrypto
    from wechatpy.exceptions import InvalidAppIdException

    try:
        doc = WeChatWxaCrypto(base64.b64encode(key), iv, claims.app_id).decrypt_message(encrypted_data)
    except InvalidAppIdException:
        raise ApiError(403, "data of another mini program") from None
    except Exception:  # wrong key: bad padding, not UTF-8, not JSON: the session_key went stale
        raise ApiError(409, "session expired, log in again", "session_stale") from None
    gid = doc.get("openGId") if isinstance(doc, Mapping) else None
    if not isinstance(gid, str) or not gid or len(gid) > 128:
        raise ApiError(409, "session expired, log in again", "session_stale")
    event_id = hashlib.blake2b(f"share|{claims.uid}|{gid}|{now // 86400}".encode(), digest_size=12).hexdigest()
    repository.put_journey_event(claims.uid, {
        "id": event_id, "at_iso": _iso(now), "type": "mp.share_open", "app": claims.app_id, "at": now,
        "uid": claims.uid, "detail": {"open_gid": gid}}, ttl=now + settings().journey_retention_days * 86400)
    return {"open_gid": gid}


def record_events(claims: SessionClaims, events: Sequence[Mapping], *, now: int | None = None) -> dict:
    """Client journey events (≤ 50, validated by the model). The server's time wins when the client's is
    further off than ``MP_EVENT_SKEW_SECONDS``; a retry of the same batch writes nothing new."""
    now = int(time.time()) if now is None else now
    if not events:
        return {"accepted": 0}
    kept = consent.keep_events(me.counted(claims.uid, now).item, [str(e["name"]) for e in events])
    events = [e for e, keep in zip(events, kept, strict=True) if keep]  # beyond strictly necessary: analytics
    if not events:
        return {"accepted": 0}
    digest = hashlib.sha256(json.dumps(list(events), sort_keys=True, default=str).encode()).hexdigest()
    return once("events", {"uid": claims.uid, "batch": digest}, lambda: _write_events(claims, events, now))


def _write_events(claims: SessionClaims, events: Sequence[Mapping], now: int) -> dict:
    skew = mp_settings().event_skew_seconds
    rows = []
    for i, e in enumerate(events):
        client_at = int(e["ts"]) // 1000
        at = client_at if abs(client_at - now) <= skew else now
        basis = f"{claims.uid}|{e.get('session_id', '')}|{e['ts']}|{e['name']}|{e.get('page', '')}|{i}"
        rows.append({"id": hashlib.blake2b(basis.encode(), digest_size=12).hexdigest(), "at_iso": _iso(at),
                     "type": f"mp.client.{e['name']}", "app": claims.app_id, "at": at, "uid": claims.uid,
                     "detail": {"page": e.get("page", ""), "session_id": e.get("session_id", ""),
                                "client_ts": int(e["ts"]), "props": dict(e.get("props") or {})}})
    mp_store.put_journey_events(claims.uid, rows, ttl=now + settings().journey_retention_days * 86400)
    return {"accepted": len(rows)}


def save_preferences(claims: SessionClaims, topics: list[str], *, now_ms: int | None = None,
                     person: Mapping | None = None) -> dict:
    """Store the person's topics and queue one tag-sync job for the linked OA (its tags follow the topics:
    every topic tagged, topics dropped since untagged). Idempotent by nature (a PUT). When the queue fails,
    503: the client retries and the job is queued then. ``person``: the item a caller read when it counted
    the call (then this neither counts nor reads it again)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    now = now_ms // 1000
    prefs = {"topics": list(topics), "v": now_ms, "at": now}
    if person is None:
        person = me.counted(claims.uid, now).item
    if not consent.allows(person, "personalisation"):
        raise ApiError(403, "the person has not agreed to personalisation", "consent_required")
    changes: dict = {"sets": {"prefs": prefs}, "return_old": True}
    if topics:
        changes["adds"] = {"topics_seen": set(topics)}
    use = me.counted(claims.uid, now, count=False, **changes)
    oa = linked_oa(claims.app_id)
    oa_openid = (use.item.get("openids") or {}).get(oa[0]) if oa else None
    if not oa or not oa_openid:
        return {"topics": list(topics), "synced": False}
    seen = set(use.item.get("topics_seen") or ()) | set(topics)
    job = {"id": f"prefs:{oa[0]}:{use.uid}:{now_ms}", "kind": "tag_topics", "app_id": oa[0], "openid": oa_openid,
           "uid": use.uid, "version": now_ms, "topics": list(topics), "remove": sorted(seen - set(topics))}
    try:
        queue.send(job)
    except queue.QueueError as exc:
        logger.error("tag sync not queued", extra={"error": str(exc)[:200]})
        raise ApiError(503, "try again", "unavailable") from None
    return {"topics": list(topics), "synced": True}
