"""In-memory fakes of the service ports (``wxloop.services.ports``): fast unit tests of service logic."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wxloop.domain.inbound import Inbound


@dataclass
class FakeTouch:
    status: str
    uid: str = ""
    stored_reply: str | None = None


@dataclass
class FakeIdentityStore:
    """Identities in a dict: dedupes on the push's key, keeps the last event and reply, creates people."""

    identities: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    people: dict[str, dict[str, Any]] = field(default_factory=dict)

    def touch_identity(self, app_id: str, inb: Inbound, *, now: int, event: Mapping, reply: str | None,
                       replay: bool = False, want_uid: bool = False) -> FakeTouch:
        item = self.identities.get((app_id, inb.openid))
        if item is None:
            return FakeTouch("unknown")
        if inb.dedupe_key in item["seen"]:
            last = item.get("last_reply") or {}
            return FakeTouch("duplicate", item["uid"], last.get("body") if last.get("k") == inb.dedupe_key else None)
        item["seen"].add(inb.dedupe_key)
        item["ev"] = dict(event)
        if not (replay and item.get("last_at", 0) > now):
            item["last_at"] = now
        if reply is not None:
            item["last_reply"] = {"k": inb.dedupe_key, "body": reply}
        return FakeTouch("recorded", item["uid"])

    def create_identity(self, app_id: str, inb: Inbound, *, now: int, event: Mapping, reply: str | None,
                        first_touch: Mapping) -> FakeTouch:
        if (app_id, inb.openid) in self.identities:
            return self.touch_identity(app_id, inb, now=now, event=event, reply=reply)
        uid = f"u{len(self.people) + 1}"
        self.people[uid] = {"uid": uid, "first_touch": dict(first_touch)}
        self.identities[(app_id, inb.openid)] = {"uid": uid, "seen": {inb.dedupe_key}, "ev": dict(event),
                                                 "last_at": now}
        return FakeTouch("recorded", uid)

    def store_reply(self, app_id: str, openid: str, dedupe_key: str, reply: str | None, *,
                    outbox: Mapping | None = None) -> bool:
        item = self.identities.get((app_id, openid))
        if item is None or (item.get("last_reply") or {}).get("k", dedupe_key) != dedupe_key:
            return False
        if reply is not None:
            item["last_reply"] = {"k": dedupe_key, "body": reply}
        if outbox is not None:
            item["ev"] = dict(outbox)
        return True

    def leave_outbox(self, app_id: str, openid: str, outbox: Mapping) -> bool:
        item = self.identities.get((app_id, openid))
        if item is None:
            return False
        item["ev"] = dict(outbox)
        return True


@dataclass
class FakeQueue:
    sent: list[dict] = field(default_factory=list)
    down: bool = False

    def send(self, job: Mapping) -> None:
        self.send_many([job])

    def send_many(self, jobs: list) -> None:
        if self.down:
            from wxloop.adapters.queue import QueueError

            raise QueueError("queue down")
        self.sent.extend(dict(j) for j in jobs)
