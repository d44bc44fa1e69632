"""``wxloop campaign …``: push campaigns, plan them dry, run them, follow and cancel their runs.

    wxloop campaign validate FILE
    wxloop campaign push FILE
    wxloop campaign pull [ID ...] [-o FILE]
    wxloop campaign plan ID [--at ISO] [--file FILE]       counts per channel, skip reason and hour; writes nothing
    wxloop campaign run ID [--at ISO] [--segments N] [--release-now]
    wxloop campaign status ID [--run RUN]
    wxloop campaign cancel ID [--run RUN]
    wxloop demo people N [--seed S]                          demo people on the local stack (dev only)

``run`` plans every segment in this process (deployed, the schedule starts runs and the planner's queue
carries the segments) and queues the sends whose hour has come; ``--release-now`` queues every planned send
at once (for trying a campaign on the local stack).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from typing import TextIO

from wxloop.cli import EXIT_NO_MATCH, EXIT_OK, CliError, _parse_at

CLI_READ_TIMEOUT = "30"  # seconds: an operator's scan page may take long (moto locally); no webhook clock here
PAGE = 250  # person items a dry run reads per scan page


def _operator_timeouts() -> None:
    import os

    os.environ.setdefault("WXLOOP_AWS_READ_TIMEOUT", CLI_READ_TIMEOUT)
    from wxloop.settings import settings

    settings.cache_clear()  # read again with the operator's timeout


def add_parsers(top) -> None:
    """Add ``campaign`` (and ``demo people``) to the CLI's top-level subparsers."""
    c = top.add_parser("campaign", help="scheduled pushes: validate, store, plan, run, follow")
    sub = c.add_subparsers(dest="command", required=True)
    sub.add_parser("validate", help="check a campaigns file").add_argument("file")
    sub.add_parser("push", help="store the campaigns of a file").add_argument("file")
    pull = sub.add_parser("pull", help="print stored campaigns as YAML")
    pull.add_argument("ids", nargs="*")
    pull.add_argument("-o", "--output")
    plan = sub.add_parser("plan", help="dry run: counts per channel, skip reason and send hour")
    run = sub.add_parser("run", help="start a run now: plan it and queue what is due")
    for p in (plan, run):
        p.add_argument("id")
        p.add_argument("--at", help="plan as of this time (ISO; default now)")
    plan.add_argument("--file", help="plan the campaign from this file instead of the stored one")
    plan.add_argument("--no-progress", action="store_true")
    run.add_argument("--segments", type=int, default=4)
    run.add_argument("--release-now", action="store_true", help="queue every planned send now, whatever its hour")
    for name in ("status", "cancel"):
        p = sub.add_parser(name, help=f"{name} a run (default: the newest)")
        p.add_argument("id")
        p.add_argument("--run")
    demo = next(a for a in top.choices["demo"]._actions if isinstance(a, argparse._SubParsersAction))
    people = demo.add_parser("people", help="seed demo people (identities, activity, windows) on the local stack")
    people.add_argument("count", type=int)
    people.add_argument("--seed", type=int, default=1)


def _load_file(path: str):
    from wxloop.campaignfiles import load_campaigns

    return load_campaigns(path)


def _validate(args, out: TextIO) -> int:
    campaigns, _ = _load_file(args.file)
    for c in campaigns:
        channels = ", ".join(sorted(c.content))
        variants = ", variants " + "/".join(f"{v.name}:{v.weight:g}" for v in c.variants) if c.variants else ""
        print(f"{c.id}: {c.purpose}, channels {channels}" + (f", recurring {c.recurring}" if c.recurring else "")
              + variants, file=out)
    print(f"{args.file}: ok, {len(campaigns)} campaigns", file=out)
    return EXIT_OK


def _push(args, out: TextIO) -> int:
    from wxloop.services import campaigns as service

    _, loaded = _load_file(args.file)
    ids = service.push(loaded.data["campaigns"], int(time.time()))
    print(f"pushed {', '.join(ids)}", file=out)
    return EXIT_OK


def _pull(args, out: TextIO) -> int:
    import yaml

    from wxloop.adapters.dynamo import campaigns as store

    ids = args.ids or store.campaign_ids()
    docs = [d for d in (store.get_campaign_doc(i) for i in ids) if d is not None]
    if len(docs) < len(ids):
        raise CliError("some campaigns are not stored", EXIT_NO_MATCH)
    text = yaml.safe_dump({"version": 1, "campaigns": docs}, allow_unicode=True, sort_keys=False, width=110)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        out.write(text)
    return EXIT_OK


def _progress_bar(enabled: bool, total: int):
    """``show(items_read)`` draws a bar over the table's approximate item count; None: the scan is done."""
    def show(done: int | None) -> None:
        if enabled and total:
            done = total if done is None else min(done, total)
            filled = 20 * done // total
            print(f"\r[{'#' * filled}{'.' * (20 - filled)}] {done}/~{total} items", end="", file=sys.stderr,
                  flush=True)
    return show


def _pages(show):
    """Every page of a one-segment scan of the people (read only)."""
    from wxloop.adapters.dynamo import campaigns as store

    key, pages = None, 0
    while True:
        persons, key = store.scan_people(0, 1, key, PAGE)
        pages += 1
        show(pages * PAGE if key else None)  # a page reads PAGE items of the table (people and the rest)
        yield persons
        if key is None:
            return


def print_counts(counts: Counter, out: TextIO) -> None:
    """Counts per channel, per skip reason and per send hour, in that order."""
    print(f"people scanned: {counts['scanned']}, planned: {counts['planned']}", file=out)
    for title, prefix in (("per channel", "ch_"), ("skipped, per reason", "skip_"), ("per send hour", "h_")):
        rows = sorted(((k.removeprefix(prefix), v) for k, v in counts.items() if k.startswith(prefix) and v),
                      key=lambda kv: (len(kv[0]), kv[0]) if prefix == "h_" else (-kv[1], kv[0]))
        print(f"{title}:", file=out)
        for name, n in rows:
            label = f"{int(name):02d}:00" if prefix == "h_" else name
            print(f"  {label:<22} {n:>9}", file=out)


def _plan(args, out: TextIO) -> int:
    from wxloop.adapters import aws
    from wxloop.adapters.dynamo.codec import table_name
    from wxloop.services import campaigns as service

    if args.file:
        found = [c for c in _load_file(args.file)[0] if c.id == args.id]
        if not found:
            raise CliError(f"{args.file}: no campaign {args.id!r}", EXIT_NO_MATCH)
        campaign = found[0]
    else:
        campaign = _stored(args.id)
    now = int(_parse_at(args.at).timestamp())
    total = int(aws.client("dynamodb").describe_table(TableName=table_name())["Table"].get("ItemCount") or 0)
    counts = service.dry_run(campaign, now, _pages(_progress_bar(not args.no_progress, total)), service.read_reach)
    if not args.no_progress:
        print(file=sys.stderr)
    print_counts(counts, out)
    return EXIT_OK


def _stored(campaign_id: str):
    from wxloop.services import campaigns as service

    try:
        return service.load(campaign_id)[0]
    except LookupError as exc:
        raise CliError(str(exc), EXIT_NO_MATCH) from None


def _run(args, out: TextIO) -> int:
    from wxloop.services import campaigns as service

    _stored(args.id)
    now = int(_parse_at(args.at).timestamp())
    tasks: list[dict] = []
    run = service.start(args.id, now=now, segments=max(1, min(args.segments, 64)), enqueue=tasks.extend)
    for task in tasks:
        while service.run_segment(args.id, run, task["segment"], time_left=lambda: 1e9) == "more":
            pass
    release_at = 2**31 if args.release_now else int(time.time())
    queued = service.release_run(args.id, run, release_at)
    print(f"run {run} of {args.id}: planned; {queued} sends queued now", file=out)
    return _status_of(args.id, run, out)


def _run_item(campaign_id: str, run: str | None) -> dict:
    from wxloop.adapters.dynamo import campaigns as store

    item = store.get_run(campaign_id, run) if run else store.latest_run(campaign_id)
    if not item:
        raise CliError(f"{campaign_id} has no run {run or ''}".rstrip(), EXIT_NO_MATCH)
    return item


def _status_of(campaign_id: str, run: str | None, out: TextIO) -> int:
    item = _run_item(campaign_id, run)
    paused = int(item.get("paused_until") or 0)
    print(f"run {item['run']}: {item['state']}, segments {item['seg_done']}/{item['segments']}"
          + (f", paused until {paused}" if paused > time.time() else ""), file=out)
    counts = Counter({k.removeprefix("n_"): int(v) for k, v in item.items() if k.startswith("n_")})
    print_counts(counts, out)
    print("sending: " + ", ".join(f"{k} {counts[k]}" for k in ("released", "sent", "closed", "failed")), file=out)
    return EXIT_OK


def _status(args, out: TextIO) -> int:
    return _status_of(args.id, args.run, out)


def _cancel(args, out: TextIO) -> int:
    from wxloop.services import campaigns as service

    item = _run_item(args.id, args.run)
    service.cancel(args.id, item["run"])
    print(f"run {item['run']} of {args.id} cancelled", file=out)
    return EXIT_OK


def _demo_people(args, out: TextIO) -> int:
    from wxloop import demo_people

    n = demo_people.seed(args.count, now=int(time.time()), seed=args.seed)
    print(f"seeded {n} demo people", file=out)
    return EXIT_OK


def _with_operator_timeouts(command):
    def run(args, out: TextIO) -> int:
        _operator_timeouts()
        return command(args, out)
    return run


COMMANDS = {key: _with_operator_timeouts(command) for key, command in {
    ("campaign", "validate"): _validate, ("campaign", "push"): _push, ("campaign", "pull"): _pull,
    ("campaign", "plan"): _plan, ("campaign", "run"): _run, ("campaign", "status"): _status,
    ("campaign", "cancel"): _cancel, ("demo", "people"): _demo_people}.items()}
