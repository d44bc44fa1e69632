"""``python -m devstack.simulator``: post a push to a running wxloop and print the reply (OA pushes, or
``mp-*`` pushes to a Mini Program); act as a Mini Program client (``login``, ``me``, ``phone``, ``event``,
``prefs``); or show a person (``person``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

from devstack.simulator.pushes import MODES, MpSimulator, Push, Simulator

MP_COMMANDS = ("login", "me", "phone", "event", "prefs")


def _accounts() -> dict:
    from devstack.table import REPO_ROOT

    raw = os.environ.get("WECHAT_ACCOUNTS") or (REPO_ROOT / "config" / "demo-accounts.json").read_text(encoding="utf-8")
    return json.loads(raw).get("accounts", {})


def _first(accounts: dict, kind: str) -> str | None:
    return next((k for k, v in accounts.items() if v.get("kind") == kind), None)


def _mp_main(args: argparse.Namespace, accounts: dict) -> int:
    """The MP client commands: log in as (app, openid), then act with the kept session token."""
    from devstack import mp_client

    app_id = args.app or _first(accounts, "mp")
    if not app_id or accounts.get(app_id, {}).get("kind") != "mp":
        print("no such Mini Program in WECHAT_ACCOUNTS", file=sys.stderr)
        return 2
    openid = args.openid or mp_client.DEFAULT_MP_OPENID
    try:
        if args.what == "login":
            status, doc = mp_client.login(args.url.rstrip("/"), args.fake.rstrip("/"), app_id, openid,
                                          unionid=args.unionid, scene=args.scene, path=args.path)
        else:
            status, doc = mp_client.call(args.url.rstrip("/"), app_id, openid, args.what, args.value,
                                         args.fake.rstrip("/"))
    except urllib.error.URLError as err:
        print(f"cannot reach the local stack: {err.reason} (is `make run` running?)", file=sys.stderr)
        return 2
    if args.what == "login" and "token" in doc:
        doc = {**doc, "token": doc["token"][:12] + "…"}  # kept in the sessions file; no need to print it
    print(f"HTTP {status}")
    print(json.dumps(doc, ensure_ascii=False, indent=1))
    return 0 if status == 200 else 1


def _person_main(args: argparse.Namespace, accounts: dict) -> int:
    """Who (app, openid) is in the local table: the live person, its identities, first touch and merges."""
    import boto3

    app_id = args.app or _first(accounts, "oa")
    openid = args.openid or "oDemoUser000000000000000001"
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or f"http://127.0.0.1:{os.environ.get('WXLOOP_AWS_PORT', '3001')}"
    ddb = boto3.client("dynamodb", endpoint_url=endpoint,
                       region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")  # noqa: S106 - moto
    from wxloop.adapters.dynamo.codec import unmarshal

    table = os.environ.get("TABLE_NAME", "wxloop-local")
    identity = unmarshal(ddb.get_item(TableName=table, Key={"pk": {"S": f"ID#{app_id}#{openid}"},
                                                             "sk": {"S": "ID"}}).get("Item")) or {}
    if not identity:
        print(f"no identity for {openid} in {app_id}", file=sys.stderr)
        return 1
    items = [unmarshal(i) for i in ddb.query(TableName=table, KeyConditionExpression="pk = :pk",
                                             ExpressionAttributeValues={":pk": {"S": f"USER#{identity['uid']}"}})["Items"]]
    person: dict = next((i for i in items if i["sk"] == "PROFILE"), {})
    for merged in [i["merged"] for i in items if i["sk"].startswith("MERGE#")]:  # their journeys are this person's
        items += [unmarshal(i) for i in ddb.query(
            TableName=table, KeyConditionExpression="pk = :pk AND begins_with(sk, :ev)",
            ExpressionAttributeValues={":pk": {"S": f"USER#{merged}"}, ":ev": {"S": "EV#"}})["Items"]]
    print(json.dumps({"uid": identity["uid"], "unionid": person.get("unionid"), "openids": person.get("openids"),
                      "first_touch": person.get("first_touch"), "points": person.get("points", 0),
                      "merged": [{"uid": i["merged"], "at": i["at"], "moved": i.get("moved")}
                                 for i in items if i["sk"].startswith("MERGE#")],
                      "journey": [i["type"] for i in sorted(items, key=lambda i: i["sk"]) if i["sk"].startswith("EV#")]},
                     ensure_ascii=False, indent=1, default=str))
    return 0


MP_PUSHES = ("mp-text", "mp-image", "mp-card", "mp-enter", "mp-popup", "mp-change", "mp-sent", "mp-verify")


def _send(url: str, push: Push | None, query: dict | None = None, content_type: str = "text/xml") -> tuple[int, str] | None:
    """POST ``push`` (or GET with ``query``) to the local gateway: (status, body), or None when unreachable."""
    if push is None:
        req = urllib.request.Request(f"{url}?{urllib.parse.urlencode(query or {})}")  # noqa: S310 - local gateway
    else:
        req = urllib.request.Request(  # noqa: S310 - the local gateway, http only
            f"{url}?{urllib.parse.urlencode(push.query)}", data=push.body.encode(), method="POST",
            headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - local gateway
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except urllib.error.URLError as err:
        print(f"cannot reach {url}: {err.reason} (is `make run` running on that port?)", file=sys.stderr)
        return None


def _mp_body(sim: MpSimulator, what: str, openid: str, value: str) -> str:
    """The push an ``mp-*`` subcommand plays (``value``: text, media id, page, session-from or template id)."""
    template = value or "TPL_DEMO_1"
    return {
        "mp-text": lambda: sim.text(openid, value or "hello"),
        "mp-image": lambda: sim.image(openid, value or "MEDIA_ID_1"),
        "mp-card": lambda: sim.card(openid, value or "pages/index/index"),
        "mp-enter": lambda: sim.enter(openid, value),
        "mp-popup": lambda: sim.subscribe_msg(openid, "subscribe_msg_popup_event", [
            {"TemplateId": t, "SubscribeStatusString": "accept", "PopupScene": "0"} for t in template.split(",")]),
        "mp-change": lambda: sim.subscribe_msg(openid, "subscribe_msg_change_event", [
            {"TemplateId": t, "SubscribeStatusString": "reject"} for t in template.split(",")]),
        "mp-sent": lambda: sim.subscribe_msg(openid, "subscribe_msg_sent_event", [
            {"TemplateId": template, "MsgID": str(sim._next_id()), "ErrorCode": "0", "ErrorStatus": "success"}]),
    }[what]()


def _play_mp(args, accounts: dict) -> int:
    """``mp-*``: act as WeChat pushing to a Mini Program, in JSON or XML (``--format``), any mode."""
    app_id = args.app or next((k for k, v in accounts.items() if v.get("kind") == "mp"), None)
    if not app_id or accounts.get(app_id, {}).get("kind") != "mp":
        print("no such Mini Program in WECHAT_ACCOUNTS", file=sys.stderr)
        return 2
    acct = accounts[app_id]
    fmt = args.format or acct.get("push_format", "xml")
    sim = MpSimulator(app_id, acct["token"], acct.get("encoding_aes_key"), fmt=fmt)
    url = f"{args.url.rstrip('/')}/wechat/mp/{app_id}"
    push, mode = None, args.mode if sim.aes_key else "plain"
    if args.what == "mp-verify":
        got = _send(url, None, sim.verify_query())
    else:
        push = sim.push(_mp_body(sim, args.what, args.openid, args.value), mode, openid=args.openid)
        got = _send(url, push, content_type="application/json" if fmt == "json" else "text/xml")
    if got is None:
        return 2
    status, body = got
    print(f"HTTP {status} ({fmt}{'' if args.what == 'mp-verify' else f', {mode} mode'})")
    print(sim.open_reply(body, push) if status == 200 and push is not None else body)
    return 0 if status == 200 else 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wxloop-sim", description="Act as WeChat: sign, encrypt, post, open the reply.")
    p.add_argument("what", choices=["text", "subscribe", "scan", "click", "view", "unsubscribe", "verify",
                                    *MP_PUSHES, *MP_COMMANDS, "person"])
    p.add_argument("value", nargs="?", default="",
                   help="text content, QR scene, menu key or URL; phone number (phone), event name (event), "
                        "topics a,b (prefs); for mp-*: text, media id, page, session-from or template ids")
    p.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('WXLOOP_PORT', '3000')}", help="base URL of the local gateway")
    p.add_argument("--fake", default=f"http://127.0.0.1:{os.environ.get('WXLOOP_WECHAT_PORT', '3002')}",
                   help="base URL of the fake WeChat API (login codes, users, phone codes)")
    p.add_argument("--app", default=None, help="app id (default: the first OA; the first MP for MP commands and mp-*)")
    p.add_argument("--openid", default=None, help="default oDemoUser000000000000000001 (OA), "
                                                  "oDemoMpUser00000000000000001 (MP)")
    p.add_argument("--unionid", default=None, help="the human's unionid, as WeChat's user/info and "
                                                   "jscode2session will give it")
    p.add_argument("--scene", type=int, default=None, help="MP launch scene (login), e.g. 1082: an OA text link")
    p.add_argument("--path", default=None, help="MP page the client opened (login); its query is the launch query")
    p.add_argument("--mode", choices=MODES, default="safe")
    p.add_argument("--format", choices=["json", "xml"], default=None, help="mp-*: the body format (default: the account's)")
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m devstack.simulator``: post a push to a running wxloop and print the reply (OA pushes, or
    ``mp-*`` pushes to a Mini Program); act as a Mini Program client (``login``, ``me``, ``phone``, ``event``,
    ``prefs``); or show a person (``person``)."""
    args = _parser().parse_args(argv)
    accounts = _accounts()
    if args.what in MP_COMMANDS:
        return _mp_main(args, accounts)
    if args.what == "person":
        return _person_main(args, accounts)
    if args.what.startswith("mp-"):
        args.openid = args.openid or "oDemoMpUser00000000000000001"
        return _play_mp(args, accounts)
    args.openid = args.openid or "oDemoUser000000000000000001"
    return _play_oa(args, accounts)


def _play_oa(args: argparse.Namespace, accounts: dict) -> int:
    """Post one OA push (or the GET verification) as WeChat would and print the opened reply."""
    app_id = args.app or _first(accounts, "oa")
    if not app_id or app_id not in accounts:
        print("no such Official Account in WECHAT_ACCOUNTS", file=sys.stderr)
        return 2
    acct = accounts[app_id]
    sim = Simulator(app_id, acct["token"], acct.get("encoding_aes_key"))
    url = f"{args.url.rstrip('/')}/wechat/oa/{app_id}"
    if args.unionid:  # who this follower is to WeChat: user/info will give the worker this unionid
        from devstack import mp_client

        try:
            mp_client.register_user(args.fake.rstrip("/"), app_id, args.openid, args.unionid)
        except urllib.error.URLError as err:
            print(f"cannot reach the fake WeChat API {args.fake}: {err.reason}", file=sys.stderr)
            return 2
    if args.what == "verify":
        got = _send(url, None, sim.verify_query())
        if got is None:
            return 2
        print(*got)
        return 0
    xml = {
        "text": lambda: sim.text(args.openid, args.value or "hello"),
        "subscribe": lambda: sim.subscribe(args.openid, args.value or None),
        "scan": lambda: sim.event(args.openid, "SCAN", key=args.value or "demo"),
        "click": lambda: sim.event(args.openid, "CLICK", key=args.value or "ABOUT_US"),
        "view": lambda: sim.event(args.openid, "VIEW", key=args.value or "https://example.com/"),
        "unsubscribe": lambda: sim.event(args.openid, "unsubscribe", key=""),
    }[args.what]()
    mode = args.mode if sim.aes_key else "plain"
    push = sim.push(xml, mode, openid=args.openid)
    got = _send(url, push)
    if got is None:
        return 2
    status, body = got
    print(f"HTTP {status} ({mode} mode)")
    print(sim.open_reply(body, push) if status == 200 else body)
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
