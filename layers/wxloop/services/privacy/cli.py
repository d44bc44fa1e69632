"""``wxloop privacy consent|export|erase|purge|compact|resume``: the rights for requests that arrive by other
channels (mail, the service desk), and the scheduled tasks by hand. The person is named by ``--uid`` or by
``--app`` and ``--openid``."""

from __future__ import annotations

import json
import time
import uuid
from typing import TextIO

from wxloop.settings import settings

EXIT_OK, EXIT_USAGE = 0, 2


def add_parsers(top) -> None:
    p = top.add_parser("privacy", help="consent, export, erasure and retention of a person's data")
    sub = p.add_subparsers(dest="command", required=True)
    for name, text in (("consent", "show or change a person's consent (source: operator)"),
                       ("export", "write everything held about a person to one JSON document"),
                       ("erase", "erase everything held about a person")):
        c = sub.add_parser(name, help=text)
        c.add_argument("--uid")
        c.add_argument("--app", help="with --openid: the app the openid belongs to")
        c.add_argument("--openid")
        if name == "consent":
            c.add_argument("--grant", default="", help="purposes to grant, comma-separated")
            c.add_argument("--withdraw", default="", help="purposes to withdraw, comma-separated")
            c.add_argument("--policy", default="", help="the privacy policy version the person agreed to")
        if name == "erase":
            c.add_argument("--yes", action="store_true", help="really erase (there is no undo)")
    pu = sub.add_parser("purge", help="erase people inactive for RETENTION_INACTIVE_DAYS (or --days)")
    pu.add_argument("--days", type=int)
    pu.add_argument("--dry-run", action="store_true")
    sub.add_parser("compact", help="rewrite the lake's partitions without erased persons")
    sub.add_parser("resume", help="finish open erasures and run due sweeps")


def _uid(args) -> str:
    from wxloop.adapters.dynamo import identities

    if args.uid:
        return str(args.uid)
    if args.app and args.openid:
        found = identities.get_identity(args.app, args.openid)
        if found and found.get("uid"):
            return str(found["uid"])
        raise ValueError("no person has this openid in this app")
    raise ValueError("name the person: --uid, or --app and --openid")


def _consent(args, out: TextIO) -> int:
    from wxloop.services.privacy import consent

    uid = _uid(args)
    choices = {p: True for p in filter(None, args.grant.split(","))}
    choices |= {p: False for p in filter(None, args.withdraw.split(","))}
    ledger = consent.change(uid, choices, policy_version=args.policy, source="operator") if choices \
        else consent.current(uid)
    print(json.dumps(ledger, ensure_ascii=False, indent=2), file=out)
    return EXIT_OK


def _export(args, out: TextIO) -> int:
    from wxloop.services.privacy import export

    uid = _uid(args)
    if not _exists(uid):
        raise ValueError("no such person")
    key = export.build(uid, uuid.uuid4().hex)
    print(export.location(key)[0], file=out)
    return EXIT_OK


def _exists(uid: str) -> bool:
    from wxloop.adapters.dynamo import people

    return people.get_person(uid) is not None


def _erase(args, out: TextIO) -> int:
    from wxloop.services.privacy import erasure

    if not args.yes:
        raise ValueError("erasure cannot be undone: add --yes")
    result = erasure.erase(_uid(args), source="operator")
    print(json.dumps(result), file=out)
    return EXIT_OK


def _purge(args, out: TextIO) -> int:
    from wxloop.services.privacy import retention

    print(json.dumps(retention.purge(days=args.days, dry_run=args.dry_run)), file=out)
    return EXIT_OK


def _compact(args, out: TextIO) -> int:
    from wxloop.services.privacy import lake

    keep = settings().lake_erased_keep_seconds or 0
    print(json.dumps(lake.current().compact(now=int(time.time()), keep_seconds=keep)), file=out)
    return EXIT_OK


def _resume(args, out: TextIO) -> int:
    from wxloop.services.privacy import erasure

    print(json.dumps(erasure.resume()), file=out)
    return EXIT_OK


COMMANDS = {("privacy", "consent"): _consent, ("privacy", "export"): _export, ("privacy", "erase"): _erase,
            ("privacy", "purge"): _purge, ("privacy", "compact"): _compact, ("privacy", "resume"): _resume}
