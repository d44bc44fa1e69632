"""The campaign planner: a run fans out over DynamoDB parallel scan segments; each segment is a queued task
that plans one page of people at a time and checkpoints its LastEvaluatedKey on the run item, continuing
across invocations; planned sends wait in hour buckets until the release tick queues them for the worker.

Per page: scan (person items only decide membership) → batched read of the identities and credit of the
people in the segment → ``Planner.plan_member`` each → one bucket item per send hour → the checkpoint, which
adds the page's counts to the run item, conditional on the segment's page number (a duplicate task stops
there). A crash anywhere before the checkpoint redoes the page: its buckets are overwritten (same keys), and
the counts are added once. Nothing is written per person at planning: a send's job id is
``campaign:{campaign}#{run}#{uid}`` and the worker runs a job id once (its ``JOB#`` claim), so a replayed
page, a bucket released twice or a rerun of the run never sends twice; the worker writes the outcome as
``SEND#{run}#{uid}`` (one write a person, not two).

Why buckets and a tick rather than SQS delays or one-off schedules: SQS delays stop at 15 minutes, and a
schedule per hour per run would need the scheduler's API (and IAM PassRole) from the planner; a bucket is
one put per page and hour, and the tick that releases due buckets every few minutes is one recurring
schedule. A bucket released twice (a crash between queueing and deleting it) queues the same job ids
again: the worker runs each job id once (its ``JOB#`` claim), so nobody gets a second message.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from wxloop.adapters import queue
from wxloop.adapters.dynamo import campaigns as store
from wxloop.adapters.dynamo import jobs as job_store
from wxloop.adapters.dynamo import mass_sends
from wxloop.domain.campaign_content import Variant, experiment_of, variant_for
from wxloop.domain.campaigns import Campaign, Planner, SendPlan, parse_campaign, send_key
from wxloop.domain.channel_pick import Skip
from wxloop.services.campaign_view import REACH_ATTRIBUTES, Views, openid_of
from wxloop.services.jobs import mass

DEFAULT_SEGMENTS = 4
PAGE_LIMIT = 2000  # items read per scan page (≤ 1 MB anyway): ~600 planned sends, buckets far below 400 KB
JOB_KIND = "campaign_send"


def run_id(at: int) -> str:
    """A run id that sorts by time: ``20270110T020000Z``."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y%m%dT%H%M%SZ")


def load(campaign_id: str) -> tuple[Campaign, dict]:
    """The stored campaign and its document; raises ``LookupError`` when none is stored."""
    doc = store.get_campaign_doc(campaign_id)
    if doc is None:
        raise LookupError(f"no campaign {campaign_id!r} stored")
    return parse_campaign(doc, campaign_id), doc


def push(docs: Iterable[Mapping[str, Any]], now: int) -> list[str]:
    """Store campaign documents (each already validated); returns their ids."""
    out = []
    for doc in docs:
        body = json.dumps(doc, sort_keys=True, default=str).encode()
        store.put_campaign(str(doc["id"]), doc, hashlib.sha256(body).hexdigest(), now)
        out.append(str(doc["id"]))
    return out


# --- planning one page ---------------------------------------------------------------------------------


def plan_page(campaign: Campaign, persons: list[dict], now: int,
              read: Callable[[list[tuple[str, str]]], Mapping], *,
              compiled: tuple[Views, Planner] | None = None) -> tuple[list[tuple[SendPlan, str]], Counter]:
    """Plan the people of one page: (sends with the openid each goes to, counts). Counts: ``scanned``,
    ``planned``, ``ch_{channel}``, ``skip_{reason}``, ``h_{Shanghai hour}``. Pure but for ``read`` (the batched
    read of identities and credits, called once for the people in the segment). ``compiled``: the campaign's
    ``Views`` and ``Planner`` for ``now`` when the caller plans many pages."""
    views, planner = compiled or (Views(campaign), Planner(campaign, now))
    member, filter_view = planner.member, views.filter_view
    members = [(p, v) for p, v in ((p, filter_view(p)) for p in persons) if member(v)]
    items = read([k for p, _ in members for k in views.reach_keys(p)]) if members else {}
    out: list[tuple[SendPlan, str]] = []
    skipped: list = []
    labels: list[str | int] = []  # counted at the end: one C-level Counter pass, no f-string per person
    for person, view in members:
        plan = planner.plan_member(views.full_view(person, items, view))
        if isinstance(plan, Skip):
            skipped.append(plan.reason)
            continue
        openid = openid_of(person, plan.app_id)
        if not openid:
            labels.append("skip_no_openid")
            continue
        labels.append(plan.channel)
        labels.append(plan.send_hour)
        out.append((plan, openid))
    counts: Counter = Counter(scanned=len(persons), skip_not_in_segment=len(persons) - len(members), planned=len(out))
    for label, n in Counter(labels).items():
        counts[label if isinstance(label, str) and label.startswith("skip_") else
               f"h_{label}" if isinstance(label, int) else f"ch_{label}"] += n
    for reason, n in Counter(skipped).items():
        counts[f"skip_{reason.value}"] += n
    return out, +counts


def read_reach(keys: list[tuple[str, str]]) -> dict:
    """The identity and credit items of ``keys``, with the attributes the picker reads."""
    return store.get_items(keys, REACH_ATTRIBUTES)


def _hour_start(at: int) -> int:
    return at - at % 3600  # Shanghai is UTC+8 all year: a UTC hour boundary is a Shanghai one


def run_page(campaign: Campaign, run: str, segment: int, segments: int, page: int, start_key: Mapping | None,
             plan_at: int) -> tuple[bool, dict | None]:
    """Plan page ``page`` (1-based) of ``segment``, write its hour buckets, checkpoint. Returns
    (checkpointed, the next start key or None at the segment's end); False: another task owns this page."""
    views = Views(campaign)
    persons, last_key = store.scan_people(segment, segments, start_key, PAGE_LIMIT, views.person_attributes)
    plans, counts = plan_page(campaign, persons, plan_at, read_reach, compiled=(views, Planner(campaign, plan_at)))
    if plans:
        buckets: dict[int, list[list[str]]] = {}
        for plan, openid in plans:
            buckets.setdefault(_hour_start(plan.send_at), []).append([plan.uid, plan.channel, plan.app_id, openid])
        for hour_at, entries in sorted(buckets.items()):
            store.put_bucket(campaign.id, run, hour_at, segment, page, entries)
    ok = store.checkpoint(campaign.id, run, segment, page, last_key, counts)
    return ok, last_key


def run_segment(campaign_id: str, run: str, segment: int, *, time_left: Callable[[], float]) -> str:
    """Plan a segment from its checkpoint while ``time_left()`` (seconds) allows another page. Returns
    ``done`` (segment finished), ``more`` (re-queue the task) or ``stopped`` (cancelled, or a duplicate task
    got there first)."""
    item = store.get_run(campaign_id, run)
    if not item or item.get("state") == "cancelled":
        return "stopped"
    campaign, _ = load(campaign_id)
    state = item["sg"][f"s{segment}"]
    page, key = int(state["p"]), json.loads(state["k"]) if state["k"] else None
    if state["d"]:
        return "done"
    while time_left() > 20:
        ok, key = run_page(campaign, run, segment, int(item["segments"]), page + 1, key, int(item["plan_at"]))
        if not ok:
            return "stopped"
        page += 1
        if key is None:
            _finish_planning(campaign_id, run)
            return "done"
    return "more"


def _finish_planning(campaign_id: str, run: str) -> None:
    item = store.get_run(campaign_id, run) or {}
    if int(item.get("seg_done") or 0) >= int(item.get("segments") or 0):
        store.add_counts(campaign_id, run, {}, sets={"state": "planned"}, condition_state="planning")


def segment_task(campaign_id: str, run: str, segment: int) -> dict:
    return {"task": "segment", "campaign": campaign_id, "run": run, "segment": segment}


def start(campaign_id: str, *, now: int, segments: int = DEFAULT_SEGMENTS, run: str | None = None,
          enqueue: Callable[[list[dict]], None] | None = None) -> str:
    """Start a run of a stored campaign planning for ``now``: the run item, then one queued task per segment
    (``enqueue``, default the planning queue). Returns the run id. Raises ``LookupError`` (no such campaign),
    ``store.RunExists`` (that run id was used)."""
    load(campaign_id)
    run = run or run_id(now)
    store.start_run(campaign_id, run, segments=segments, now=int(time.time()), plan_at=now)
    tasks = [segment_task(campaign_id, run, s) for s in range(segments)]
    (enqueue or (lambda t: queue.send_many(t, url=queue.plan_queue_url())))(tasks)
    return run


def cancel(campaign_id: str, run: str) -> bool:
    """Cancel a run: planning stops at the next page, nothing more is released. False: no such run."""
    return store.add_counts(campaign_id, run, {}, sets={"state": "cancelled"})


# --- release ---------------------------------------------------------------------------------------------


def _cs_message(body: Mapping[str, Any], mp_app: str | None) -> dict:
    kind, value = next(iter(body.items()))
    if kind == "text":
        return {"msgtype": "text", "text": {"content": value}}
    if kind == "news":
        return {"msgtype": "news", "news": {"articles": [dict(value)]}}
    card = dict(value)
    if mp_app:
        card.setdefault("appid", mp_app)
    return {"msgtype": "miniprogrampage", "miniprogrampage": card}


def job_payload(campaign: Campaign, channel: str, variant: Variant | None = None) -> dict:
    """The channel-specific fields of a send job (the message or template of the campaign's content, or of
    the person's variant when it replaces that channel's)."""
    content = (variant.content.get(channel) if variant else None) or campaign.content[channel]
    if channel in ("oa_cs", "mp_cs"):
        return {"message": _cs_message(content, campaign.accounts.get("mp"))}
    out = {"template_id": content["template_id"], "data": {k: {"value": v} for k, v in content["data"].items()}}
    for optional in ("page", "url", "miniprogram"):
        if optional in content:
            out[optional] = content[optional]
    return out


def bucket_jobs(campaign: Campaign, run: str, entries: Iterable[list[str]]) -> list[dict]:
    """The send jobs of a bucket's entries (uid, channel, app id, openid); ids stable per person and run. With
    variants, each person's job carries the content of their variant (always the same one) and names it."""
    channels = [ch for ch in campaign.content if ch != "oa_mass"]
    payloads = {(v.name if v else None, ch): job_payload(campaign, ch, v)
                for v in (campaign.variants or (None,)) for ch in channels}
    jobs = []
    for uid, channel, app, openid in entries:
        if channel not in channels:
            continue
        variant = variant_for(campaign.id, campaign.variants, uid)
        job = {"id": f"campaign:{send_key(campaign.id, run, uid)}", "kind": JOB_KIND, "app_id": app, "openid": openid,
               "campaign": campaign.id, "run": run, "uid": uid, "channel": channel,
               **payloads[(variant.name if variant else None, channel)]}
        if variant is not None:
            job.update(experiment=experiment_of(campaign.id), variant=variant.name)
        jobs.append(job)
    return jobs


def mass_tag_jobs(campaign: Campaign, run: str, bucket_sk: str, entries: list[list[str]]) -> list[dict]:
    """The ``campaign_mass`` tag jobs of a bucket's ``oa_mass`` entries (≤ 50 openids each), recorded as queued
    on the run first; batch ids are stable per bucket, so a bucket released twice queues the same jobs."""
    members = [(e[0], e[3]) for e in entries if e[1] == "oa_mass"]
    if not members:
        return []
    # segment and page name a bucket of the mass hour (the only one); short: the ids are sets on the run item
    base = [str(int(p)) for p in bucket_sk.rsplit("#", 2)[-2:]]
    batches = {".".join([*base, str(i // mass.BATCH)]): members[i:i + mass.BATCH]
               for i in range(0, len(members), mass.BATCH)}
    mass_sends.add_batches(campaign.id, run, batches)
    app = campaign.accounts["oa"]
    return [mass.tag_job(campaign.id, run, app, batch, batch_members) for batch, batch_members in batches.items()]


def _mass_final(campaign: Campaign, run: str) -> None:
    """Planning is over and every due bucket is released. The mass entries are all due at the run's first
    send moment, the earliest of its buckets: once one batch is queued, every batch is. Mark that, and queue
    the send when the tagging is done (else the last tag job queues it)."""
    if "oa_mass" not in campaign.content:
        return
    state = mass_sends.state(campaign.id, run)
    if state["final"] or not state["batches"]:
        return
    mass_sends.mark_final(campaign.id, run)
    if mass.ready(campaign.id, run):
        queue.send_many([mass.send_job(campaign.id, run, campaign.accounts["oa"], dict(campaign.content["oa_mass"]),
                                       campaign.accounts["oa_type"])])


def _held(campaign: Campaign, run_item: Mapping, now: int) -> bool:
    """Whether a run's releases wait: paused (45009) or an account's send quota blocked."""
    if int(run_item.get("paused_until") or 0) > now:
        return True
    apps = [a for k, a in campaign.accounts.items() if k in ("oa", "mp")]
    return any(job_store.quota_blocked_until(app, JOB_KIND) > now for app in apps)


def release_run(campaign_id: str, run: str, now: int, *, time_left: Callable[[], float] = lambda: 1e9) -> int:
    """Queue the jobs of the run's due buckets (SendMessageBatch), deleting each bucket after; returns the
    jobs queued. A cancelled or finished run leaves the active list; a paused one waits."""
    item = store.get_run(campaign_id, run)
    if not item or item.get("state") in ("cancelled", "done"):
        store.drop_active(campaign_id, run)
        return 0
    campaign, _ = load(campaign_id)
    if _held(campaign, item, now):
        return 0
    queued = 0
    while time_left() > 10:
        buckets = store.due_buckets(campaign_id, run, now)
        for bucket in buckets:
            entries = bucket.get("entries") or []
            live = store.live_people({e[0] for e in entries})  # someone erased since planning gets nothing
            jobs = bucket_jobs(campaign, run, [e for e in entries if e[0] in live])
            jobs += mass_tag_jobs(campaign, run, bucket["sk"], [e for e in entries if e[0] in live])
            queue.send_many(jobs)
            store.drop_bucket(campaign_id, bucket["sk"])
            gone = sum(1 for e in entries if e[0] not in live)
            store.add_counts(campaign_id, run, +Counter(released=len(jobs), skip_erased=gone))
            queued += len(jobs)
        if not buckets:
            if item.get("state") == "planned":
                _mass_final(campaign, run)
            break
    if item.get("state") == "planned" and not store.has_buckets(campaign_id, run):
        store.add_counts(campaign_id, run, {}, sets={"state": "done"}, condition_state="planned")
        store.drop_active(campaign_id, run)
    return queued


def release_due(now: int, *, time_left: Callable[[], float] = lambda: 1e9) -> int:
    """The tick: release the due buckets of every active run; returns the jobs queued."""
    return sum(release_run(c, r, now, time_left=time_left) for c, r in store.active_runs())


def dry_run(campaign: Campaign, now: int, pages: Iterable[list[dict]],
            read: Callable[[list[tuple[str, str]]], Mapping]) -> Counter:
    """Counts of a run planned at ``now`` over ``pages`` of person items, writing nothing."""
    total: Counter = Counter()
    compiled = (Views(campaign), Planner(campaign, now))
    for persons in pages:
        total.update(plan_page(campaign, persons, now, read, compiled=compiled)[1])
    return total
