"""``python -m devstack.fake_wechat --port 8089``: the fake WeChat API on its own (accounts from
``WECHAT_ACCOUNTS`` or ``--accounts FILE``)."""

from __future__ import annotations

import argparse
import os
import time

from devstack.fake_wechat.server import FakeWeChat, accounts_from_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.fake_wechat", description="A fake of WeChat's server API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--accounts", help="accounts config JSON file (default: the WECHAT_ACCOUNTS variable)")
    args = parser.parse_args(argv)
    if args.accounts:
        with open(args.accounts, encoding="utf-8") as fh:
            accounts = accounts_from_config(fh.read())
    else:
        accounts = accounts_from_config(os.environ.get("WECHAT_ACCOUNTS") or "{}")
    fake = FakeWeChat(accounts, host=args.host, port=args.port)
    print(f"fake WeChat API on {fake.start()} for {len(accounts)} account(s); Ctrl-C stops", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
    return 0


raise SystemExit(main())
