"""Recording a push, shared by every webhook (``platform`` ``oa`` or ``mp``): the journey event left on the
identity, the follow-up jobs it carries, where a person was first met, and the worker's late recording of a
push the webhook queued (``record_later``). The identity store is a port (``IdentityStore``), so the logic
runs against an in-memory fake in unit tests.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from wxloop.adapters.dynamo import identities
from wxloop.domain.inbound import Inbound
from wxloop.domain.replies import Reply
from wxloop.protocol.outbound import cs_message
from wxloop.services.ports import IdentityStore

# The push fields a journey record keeps (where the push led); never what the person wrote.
JOURNEY_DETAIL = ("Url", "MenuId", "Ticket", "subscriptions")


def journey_event(app_id: str, inb: Inbound, *, now: int, rule_id: str = "", jobs: list | None = None,
                  platform: str = "oa", ab: tuple[str, str] | None = None) -> dict:
    """What the stream turns into a journey record: type and where it led, never message content; ``ab``: the
    (experiment, variant) of an A/B rule's answer (the KPI report's exposure)."""
    detail = {k: inb.detail[k] for k in JOURNEY_DETAIL if k in inb.detail}
    if inb.event_key:
        detail["event_key"] = inb.event_key
    if inb.scene:
        detail["scene"] = inb.scene
    if rule_id:
        detail["rule"] = rule_id
    event = {"id": inb.dedupe_key, "type": f"{platform}.{inb.kind}", "app": app_id, "at": inb.create_time or now,
             "detail": detail}
    if ab:
        event["experiment"], event["variant"] = ab
    if jobs:
        event["jobs"] = jobs  # queued by the stream, not kept on the journey record
    return event


def ab_of(decision: Any) -> tuple[str, str] | None:
    """The (experiment, variant) a rule engine decision names, if it answered with an A/B variant."""
    return (decision.experiment, decision.variant) if decision is not None and decision.variant else None


def first_touch(app_id: str, inb: Inbound, now: int, platform: str = "oa") -> dict:
    """Where a person was first met: kept on the person for attribution."""
    return {"channel": platform, "app_id": app_id, "kind": inb.kind, "scene": inb.scene, "at": now}


def follow_up_jobs(app_id: str, inb: Inbound, reply: Reply | None, *, first_contact: bool = False) -> list[dict]:
    """What needs WeChat's API after this push: the unionid of a (new or returning) follower or of a person
    met for the first time (someone who followed before wxloop ran arrives with a message or a click, not a
    subscribe), and a Mini Program card (which a passive reply cannot carry). Job ids derive from the push,
    so a repeat is a no-op."""
    jobs: list[dict[str, Any]] = []
    if first_contact or (inb.is_event and inb.event == "subscribe"):
        jobs.append({"id": f"{inb.dedupe_key}:user_info", "kind": "user_info", "app_id": app_id,
                     "openid": inb.openid})
    if reply is not None and not reply.is_passive:
        message = cs_message(reply)
        if message:
            jobs.append({"id": f"{inb.dedupe_key}:cs", "kind": "cs_send", "app_id": app_id,
                         "openid": inb.openid, "message": message})
    return jobs


def inbound_to_dict(inb: Inbound) -> dict:
    """What a queued push needs to be recorded later: no message content (it is never recorded)."""
    doc = asdict(inb)
    doc["content"] = ""
    doc["detail"] = {k: v for k, v in inb.detail.items() if k in JOURNEY_DETAIL}
    return doc


def inbound_from_dict(doc: Mapping) -> Inbound:
    return Inbound(**{k: doc[k] for k in Inbound.__dataclass_fields__ if k in doc})


def record_later(job: Mapping, store: IdentityStore | None = None) -> str:
    """Worker side of ``_record_later``: record a queued push (idempotent; no reply is sent). A newer push
    recorded meanwhile keeps its state; this one adds its key and event (and so its jobs)."""
    store = store if store is not None else identities  # the real store; unit tests pass a fake
    platform = str(job.get("platform") or "oa")
    app_id, inb = job["app_id"], inbound_from_dict(job["inbound"])
    now = int(job.get("at") or time.time())
    jobs = job.get("jobs")
    event = journey_event(app_id, inb, now=now, platform=platform, jobs=jobs if jobs is not None else follow_up_jobs(app_id, inb, None))
    touch = store.touch_identity(app_id, inb, now=now, event=event, reply=None, replay=True)
    if touch.status == "unknown":
        kinds = {j.get("kind") for j in event.get("jobs") or ()}
        if platform == "oa" and "user_info" not in kinds:  # a first contact: learn the unionid, as the webhook would have
            event = {**event, "jobs": [*(event.get("jobs") or ()),
                                       *follow_up_jobs(app_id, inb, None, first_contact=True)]}
        touch = store.create_identity(app_id, inb, now=now, event=event, reply=None,
                                           first_touch=first_touch(app_id, inb, now, platform))
    return touch.status
