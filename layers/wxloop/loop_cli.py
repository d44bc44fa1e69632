"""``wxloop rewards validate|push|pull`` and ``wxloop channel create|renew|list`` (added to ``wxloop.cli``).

    wxloop rewards validate FILE
    wxloop rewards push FILE [--version V]
    wxloop rewards pull [-o FILE]
    wxloop channel create NAME --kind oa-temp|oa-perm|mp-code|mp-link|mp-scheme|mp-plain-scheme
                               [--app APPID] [--path P] [--expire-days N] [--cost C] [--out DIR]
    wxloop channel renew [--within-days N]
    wxloop channel list
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TextIO, cast

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parsers(top) -> None:
    rw = top.add_parser("rewards", help="reward campaigns for invitations")
    rsub = rw.add_subparsers(dest="command", required=True)
    rsub.add_parser("validate", help="check a rewards file").add_argument("file")
    pu = rsub.add_parser("push", help="store a rewards file and make it current")
    pu.add_argument("file")
    pu.add_argument("--version", help="version label (default: a hash of the content)")
    pl = rsub.add_parser("pull", help="print the current rewards document as YAML")
    pl.add_argument("-o", "--output")

    ch = top.add_parser("channel", help="acquisition channels: QR codes, MP codes and links")
    csub = ch.add_subparsers(dest="command", required=True)
    c = csub.add_parser("create", help="create a channel through WeChat's API")
    c.add_argument("name")
    c.add_argument("--kind", required=True, choices=["oa-temp", "oa-perm", "mp-code", "mp-link", "mp-scheme",
                                                     "mp-plain-scheme"])
    c.add_argument("--app", help="account (default: the first OA for oa-*, the first MP for mp-*)")
    c.add_argument("--path", default="", help="MP page path (mp-*)")
    c.add_argument("--expire-days", type=int, default=30)
    c.add_argument("--cost", type=float)
    c.add_argument("--out", default=".", help="folder for an MP code's PNG")
    r = csub.add_parser("renew", help="replace links and temporary codes about to lapse")
    r.add_argument("--within-days", type=int, default=3)
    csub.add_parser("list", help="per channel: scans/opens, new followers and MP users, rewards, cost")


def _rewards_validate(args, out: TextIO) -> int:
    from wxloop.campaignfiles import load_reward_campaigns
    from wxloop.domain.rewards import describe

    found, _ = load_reward_campaigns(args.file)
    for c in found:
        print(json.dumps(describe(c), ensure_ascii=False), file=out)
    print(f"{args.file}: {len(found)} reward campaigns OK", file=out)
    return EXIT_OK


def _rewards_push(args, out: TextIO) -> int:
    from wxloop.adapters.dynamo import rewards as store
    from wxloop.campaignfiles import load_reward_campaigns

    found, loaded = load_reward_campaigns(args.file)
    version = args.version or hashlib.sha256(json.dumps(loaded.data, sort_keys=True, default=str).encode()
                                             ).hexdigest()[:12]
    store.put_reward_config(cast(dict, loaded.data), version=version, now=int(time.time()))
    print(f"rewards version {version} is current ({len(found)} campaigns; live within 30 s)", file=out)
    return EXIT_OK


def _rewards_pull(args, out: TextIO) -> int:
    import yaml

    from wxloop.adapters.dynamo import rewards as store

    got = store.get_reward_config()
    if got is None:
        print("no rewards pushed yet", file=out)
        return EXIT_FAILED
    text = f"# version {got[1]}\n" + yaml.safe_dump(got[0], allow_unicode=True, sort_keys=False)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        out.write(text)
    return EXIT_OK


def _default_app(kind: str) -> str:
    from wxloop.config import load_config

    want = "oa" if kind.startswith("oa-") else "mp"
    for app_id, account in sorted(load_config().accounts.items()):
        if account.kind == want:
            return app_id
    raise ValueError(f"no {want} account in the config: pass --app")


def _channel_create(args, out: TextIO) -> int:
    from wxloop.adapters.wechat import api_client
    from wxloop.services import channels

    app = args.app or _default_app(args.kind)
    client = api_client(app) if args.kind != "mp-plain-scheme" else None
    try:
        made = channels.create(args.name, args.kind, app_id=app, path=args.path, days=args.expire_days,
                               cost=args.cost, client=client)
    except channels.ChannelError as exc:
        print(f"channel {args.name}: {exc}", file=out)
        return EXIT_USAGE if "WeChat" not in str(exc) else EXIT_FAILED
    if made["image"]:
        target = Path(args.out) / f"{args.name}.png"
        target.write_bytes(made["image"])
        print(f"channel {args.name} ({args.kind}): code {made['code']}, image {target}", file=out)
    else:
        print(f"channel {args.name} ({args.kind}): code {made['code']}, link {made['link']}", file=out)
    if made["expires_at"]:
        print(f"expires {time.strftime('%Y-%m-%d %H:%M', time.gmtime(made['expires_at']))} UTC: "
              "wxloop channel renew replaces it before then", file=out)
    return EXIT_OK


def _channel_renew(args, out: TextIO) -> int:
    from wxloop.adapters.wechat import api_client
    from wxloop.services import channels

    done = channels.renew(within_days=args.within_days, client_for=api_client)
    print(f"renewed {len(done)}: {', '.join(done) or '-'}", file=out)
    return EXIT_OK


def _channel_list(args, out: TextIO) -> int:
    from wxloop.services import channels

    rows = channels.listing()
    head = ("name", "kind", "scans", "opens", "new_followers", "new_mp_users", "rewarded", "cost_per_new")
    print("\t".join(head) + "\tlapsing", file=out)
    for r in rows:
        print("\t".join(str(r[k] if r[k] is not None else "-") for k in head) + ("\tLAPSING" if r["lapsing"] else ""),
              file=out)
    return EXIT_OK


COMMANDS = {
    ("rewards", "validate"): _rewards_validate,
    ("rewards", "push"): _rewards_push,
    ("rewards", "pull"): _rewards_pull,
    ("channel", "create"): _channel_create,
    ("channel", "renew"): _channel_renew,
    ("channel", "list"): _channel_list,
}
