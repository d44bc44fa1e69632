"""``GET me`` and ``POST me/prompt``, and the person summary every answer about the caller shows."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping

from wxloop.adapters import mp_store
from wxloop.domain import follow_prompt
from wxloop.domain.session import SessionClaims
from wxloop.services.mp_api.context import linked_oa, mp_settings
from wxloop.services.mp_api.errors import ApiError


def invite_code(uid: str) -> str:
    """A short stable code for the person's invitations (8 base32 characters of a hash of the uid)."""
    return base64.b32encode(hashlib.sha256(b"invite|" + uid.encode()).digest()).decode()[:8]


def follow_state(person: Mapping, oa_app_id: str | None) -> bool | None:
    """The person's follow state of the OA as mirrored on the person (None: unknown)."""
    mirrored = person.get(f"fol_{oa_app_id}") if oa_app_id else None
    return bool(mirrored.get("f")) if isinstance(mirrored, Mapping) else None


def prompt_for(person: Mapping, app_id: str, scene: int | None, now: int) -> follow_prompt.PromptDecision:
    """The follow-prompt decision for the person in the MP ``app_id`` launched (cold) from ``scene``."""
    oa = linked_oa(app_id)
    oa_id = oa[0] if oa else None
    dismissed = person.get(f"fpd_{oa_id}") if oa_id else None
    return follow_prompt.decide(linked_oa=oa is not None, following=follow_state(person, oa_id), scene=scene,
                                dismissed_at=dismissed if isinstance(dismissed, int) else None, now=now,
                                cooldown_days=mp_settings().prompt_cooldown_days)


def summary(person: Mapping, app_id: str, uid: str, decision: follow_prompt.PromptDecision) -> dict:
    """What the client may see of the person: never openids, unionid, session keys or the full phone."""
    oa = linked_oa(app_id)
    prefs = raw if isinstance(raw := person.get("prefs"), Mapping) else {}
    return {
        "points": int(person.get("points") or 0),
        "invite_code": invite_code(uid),
        "phone": person.get("phone_masked") or None,
        "topics": list(prefs.get("topics") or []),
        "follow": {"oa_app_id": oa[0] if oa else None, "following": follow_state(person, oa[0] if oa else None)},
        "prompt": {"mode": decision.mode, "reason": decision.reason},
    }


def counted(uid: str, now: int, *, count: bool = True, **changes) -> mp_store.PersonUse:
    """Count the call against the person's rate limit (and apply ``changes``) in one request: 429 when over
    the limit, 401 when the person no longer exists. ``count=False``: a further step of a call counted
    already (one call counts once, however many steps it takes)."""
    use = mp_store.use_person(uid, now=now, limit=mp_settings().rate_limit_per_minute, count=count, **changes)
    if use.status == "limited":
        raise ApiError(429, "too many requests, slow down")
    if use.status == "missing":
        raise ApiError(401, "log in again")
    return use


def get_me(claims: SessionClaims, *, scene: int | None = None, hot: bool = True, now: int | None = None) -> dict:
    """``GET me``: ONE DynamoDB request (the counted read of the person). ``scene``/``hot``: the current
    launch; by default the session's cold-start scene decides (hot starts keep the cold-start state)."""
    now = int(time.time()) if now is None else now
    use = counted(claims.uid, now)
    effective = follow_prompt.effective_scene(claims.scene or None, scene, hot=hot or scene is None)
    return summary(use.item, claims.app_id, use.uid, prompt_for(use.item, claims.app_id, effective, now))


def record_prompt(claims: SessionClaims, action: str, *, now: int | None = None) -> dict:
    """``POST me/prompt {action}``: the client showed or dismissed the follow prompt; a dismissal keeps it
    away for the cool-down. One request. 404 when the MP links no OA."""
    now = int(time.time()) if now is None else now
    oa = linked_oa(claims.app_id)
    if oa is None:
        raise ApiError(404, "this mini program links no official account")
    attr = f"fpd_{oa[0]}" if action == "dismissed" else f"fps_{oa[0]}"
    use = counted(claims.uid, now, sets={attr: now})
    decision = prompt_for(use.item, claims.app_id, claims.scene or None, now)
    return summary(use.item, claims.app_id, use.uid, decision)
