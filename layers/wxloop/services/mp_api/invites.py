"""``GET invite``, ``GET referrals``, ``GET points``: the person's invitations and what they earned.

Listings are one query each (the inviter's referrals on the index, the ledger under the person), paginated
with an opaque cursor that only reaches the caller's own items; invitees are never shown.
"""

from __future__ import annotations

import time

from wxloop.adapters.dynamo import referrals
from wxloop.adapters.dynamo import rewards as store
from wxloop.domain.session import SessionClaims
from wxloop.services import rewards
from wxloop.services.mp_api import me
from wxloop.services.mp_api.errors import ApiError


def get_invite(claims: SessionClaims, campaign: str | None = None, *, now: int | None = None) -> dict:
    """The caller's share path and short code; 404 when no reward campaign is configured."""
    now = int(time.time()) if now is None else now
    use = me.counted(claims.uid, now)
    try:
        return rewards.invite_for(claims.app_id, use.uid, campaign=campaign, now=now)
    except LookupError:
        raise ApiError(404, "no invitation campaign") from None
    except ValueError:  # no session key long enough to sign with
        raise ApiError(503, "invitations are not configured") from None


def list_referrals(claims: SessionClaims, *, limit: int, cursor: str | None, now: int | None = None) -> dict:
    """A page of the caller's invitations (newest first) with per-state totals of the page."""
    use = me.counted(claims.uid, int(time.time()) if now is None else now)
    try:
        items, nxt = referrals.list_referrals(use.uid, limit=limit, cursor=cursor)
    except referrals.BadCursor:
        raise ApiError(400, "bad cursor") from None
    out = [{"state": i.get("state", "pending"), "campaign": i.get("campaign", ""), "channel": i.get("channel", ""),
            "created_at": int(i.get("created_at", 0)), "points": int(i.get("points", 0)),
            "reason": i.get("reason", "") if i.get("state") == "voided" else ""} for i in items]
    totals = {s: sum(1 for r in out if r["state"] == s) for s in ("pending", "rewarded", "voided", "reversed")}
    return {"referrals": out, "totals": totals, "next": nxt}


def list_points(claims: SessionClaims, *, limit: int, cursor: str | None, now: int | None = None) -> dict:
    """The caller's balance and a page of their ledger."""
    use = me.counted(claims.uid, int(time.time()) if now is None else now)
    try:
        items, nxt = store.list_ledger(use.uid, limit=limit, cursor=cursor)
    except referrals.BadCursor:
        raise ApiError(400, "bad cursor") from None
    entries = [{"points": int(i["points"]), "reason": i.get("reason", ""), "campaign": i.get("campaign", ""),
                "at": int(i.get("at", 0)), "kind": i.get("kind", "")} for i in items]
    return {"balance": int(use.item.get("points") or 0), "entries": entries, "next": nxt}
