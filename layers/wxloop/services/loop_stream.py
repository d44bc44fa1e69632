"""What the table's stream does for invites, rewards and channels (called from ``journey.record``).

- A follow through a parametric QR code (``qrscene_{code}``) attributes the follower to the invite or
  channel the code stands for; a scan counts as an open.
- An MP launch counts for its channel (``ch`` of the launch, or the code in its ``scene``).
- Any journey event of a person with a pending referral counts an active day (one conditional write).
- A referral moving pending → rewarded queues the ``reward_notice`` job (tell the inviter) and counts a
  rewarded referral for its channel. Counters are per channel per day (``CHANNEL#{name}``/``DAY#{date}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wxloop.adapters import queue
from wxloop.adapters.dynamo import channels, referrals
from wxloop.adapters.dynamo.codec import unmarshal
from wxloop.domain.invites import code_from_scene
from wxloop.domain.rewards import reward_day

ACTIVE_PREFIXES = ("mp.launch", "mp.first_launch", "mp.client.", "oa.text", "oa.event.click", "oa.event.view")


def on_journey_event(uid: str, event: Mapping) -> None:
    """Attribution, channel counters and active days for one new journey event of ``uid``."""
    kind, app, at = str(event.get("type") or ""), str(event.get("app") or ""), int(event.get("at") or 0)
    raw = event.get("detail")
    detail: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    if kind in ("oa.event.subscribe", "oa.event.scan"):
        _oa_code(uid, app, kind, str(detail.get("event_key") or ""), at)
    elif kind in ("mp.first_launch", "mp.launch"):
        name = _channel_of(detail)
        if name:
            channels.count(name, reward_day(at), "opens")
            if kind == "mp.first_launch":
                channels.count(name, reward_day(at), "new_mp_users")
    if kind.startswith(ACTIVE_PREFIXES):
        from wxloop.services import rewards

        rewards.active_day(uid, at)


def _channel_of(detail: Mapping) -> str:
    ch = str(detail.get("channel") or "")
    if ch:
        return ch if channels.get_channel(ch) else ""
    code = code_from_scene(detail.get("code") or "")
    held = referrals.get_code(code) if code else None
    return str(held.get("channel") or "") if held else ""


def _oa_code(uid: str, app: str, kind: str, event_key: str, at: int) -> None:
    code = code_from_scene(event_key)
    held = referrals.get_code(code) if code else None
    if not held:
        return
    name = str(held.get("channel") or "")
    if name:
        channels.count(name, reward_day(at), "scans")
    if kind == "oa.event.subscribe":
        if name:
            channels.count(name, reward_day(at), "new_followers")
        if held.get("kind") == "invite":
            from wxloop.services import rewards

            rewards.attribute(app, uid, code=code, now=at)


def on_record(stream_record: Mapping) -> int:
    """A referral rewarded: queue the notice to the inviter and count the channel. Returns jobs queued."""
    change = stream_record.get("dynamodb") or {}
    new, old = unmarshal(change.get("NewImage")) or {}, unmarshal(change.get("OldImage")) or {}
    if not str(new.get("pk", "")).startswith("REF#") or new.get("state") != "rewarded" \
            or old.get("state") == "rewarded":
        return 0
    at = int(new.get("rewarded_at") or 0)
    if new.get("channel") and new["channel"] != "invite":
        channels.count(str(new["channel"]), reward_day(at), "rewarded")
    invitee, inviter, campaign = str(new["pk"])[len("REF#"):], new.get("inviter"), new.get("campaign")
    if not inviter or not campaign:  # unlinked by an erasure, or not a campaign referral: nobody to tell
        return 0
    queue.send({"id": f"reward-notice:{invitee}:{campaign}", "kind": "reward_notice",
                "app_id": str(new.get("app_id") or ""), "uid": str(inviter),
                "campaign": str(campaign), "points": int(new.get("points") or 0)})
    return 1
