"""``wxloop``: the operator's command line for keyword rules and the custom menu.

    wxloop rules validate FILE
    wxloop rules test FILE VALUE [--trigger text|click|subscribe|scan] [--first-time] [--at ISO]
                                 [--app APPID] [--set NAME=VALUE ...] [--person OPENID]
    wxloop rules push FILE [--app APPID]
    wxloop rules pull [--app APPID] [--version V] [-o FILE]
    wxloop menu validate FILE [--rules FILE]
    wxloop menu push FILE --app APPID
    wxloop kpi ... / wxloop demo traffic ...   (see wxloop.analytics.cli)
    wxloop rewards ... / wxloop channel ...    (see wxloop.loop_cli)
    wxloop campaign ... / wxloop demo people N  (see wxloop.campaign_cli)

Exit codes: 0 done (``rules test``: a rule or default answered), 1 nothing answered or a remote call failed,
2 the input is wrong (printed as ``file:line: message``). ``push``/``pull`` use the table in ``TABLE_NAME``
(``AWS_ENDPOINT_URL`` points them at a local stack).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import TextIO

EXIT_OK, EXIT_NO_MATCH, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wxloop", description="Operate wxloop: keyword rules and the OA menu.")
    top = p.add_subparsers(dest="area", required=True)

    rules = top.add_parser("rules", help="keyword rules, menu-click replies and scene welcomes")
    rsub = rules.add_subparsers(dest="command", required=True)
    v = rsub.add_parser("validate", help="check a rule file")
    v.add_argument("file")
    t = rsub.add_parser("test", help="show what a rule file answers to a text, click key or scene")
    t.add_argument("file")
    t.add_argument("value", help="the text, the menu click key, or the QR scene")
    t.add_argument("--trigger", choices=["text", "click", "subscribe", "scan"], default="text")
    t.add_argument("--first-time", action="store_true", help="the person is new (first-time welcome)")
    t.add_argument("--at", help="ISO time to test at (without offset: Asia/Shanghai time); default now")
    t.add_argument("--app", help="account the set serves (for rules scoped with apps)")
    t.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a placeholder value")
    t.add_argument("--person", default="", metavar="OPENID", help="the sender (an A/B rule answers each person "
                   "with the variant they always get)")
    pu = rsub.add_parser("push", help="store a rule file as a new version and make it current")
    pu.add_argument("file")
    pu.add_argument("--app", help="account (default: the file's app_id)")
    pl = rsub.add_parser("pull", help="print a stored rule set as YAML")
    pl.add_argument("--app", help="account (default: the only OA in WECHAT_ACCOUNTS)")
    pl.add_argument("--version", help="a stored version (default: the current one)")
    pl.add_argument("-o", "--output", help="write to this file instead of standard output")

    menu = top.add_parser("menu", help="the Official Account's custom menu")
    msub = menu.add_subparsers(dest="command", required=True)
    mv = msub.add_parser("validate", help="check a menu file")
    mv.add_argument("file")
    mv.add_argument("--rules", help="also check that every click key has a click rule in this rule file")
    mp = msub.add_parser("push", help="publish a menu file (menu/create)")
    mp.add_argument("file")
    mp.add_argument("--app", required=True)

    from wxloop.analytics import cli as analytics_cli

    analytics_cli.add_parsers(top)
    from wxloop import loop_cli

    loop_cli.add_parsers(top)
    from wxloop.services.privacy import cli as privacy_cli

    privacy_cli.add_parsers(top)
    from wxloop import campaign_cli

    campaign_cli.add_parsers(top)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from wxloop import campaign_cli, loop_cli
    from wxloop.analytics import cli as analytics_cli
    from wxloop.services.privacy import cli as privacy_cli

    handler = {**_COMMANDS, **analytics_cli.COMMANDS, **loop_cli.COMMANDS, **privacy_cli.COMMANDS,
               **campaign_cli.COMMANDS}[(args.area, args.command)]
    try:
        return handler(args, sys.stdout)
    except CliError as exc:
        print(str(exc), file=sys.stderr)
        return exc.code
    except ValueError as exc:  # FileError (file:line: message) and other input problems
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE


# ------------------------------------------------------------------------------------------ rules


def _rules_validate(args, out: TextIO) -> int:
    from wxloop.rulesfile import load_rule_set

    rules, _ = load_rule_set(args.file)
    counts: dict[str, int] = {}
    for rule in rules.rules:
        for trig in rule.triggers:
            counts[trig] = counts.get(trig, 0) + 1
    by_trigger = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no rules"
    defaults = ", ".join(sorted(rules.defaults)) or "none"
    print(f"{args.file}: ok, version {rules.version}: {len(rules)} rules ({by_trigger}); defaults: {defaults}",
          file=out)
    if rules.placeholders_needed:
        print(f"placeholders: {', '.join(sorted(rules.placeholders_needed))}", file=out)
    return EXIT_OK


def _parse_at(raw: str | None) -> datetime:
    from wxloop.domain.rules import SHANGHAI

    if not raw:
        return datetime.now(SHANGHAI)
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise CliError(f"--at: {raw!r} is not an ISO time like 2025-01-31T09:30") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=SHANGHAI)


def _rules_test(args, out: TextIO) -> int:
    from wxloop.domain.rules import Trigger, render
    from wxloop.rulesfile import load_rule_set

    rules, _ = load_rule_set(args.file, app_id=args.app)
    values: dict[str, str] = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CliError(f"--set: expected NAME=VALUE, got {item!r}")
        values[name] = value
    now = _parse_at(args.at)
    trigger = Trigger(args.trigger, args.value)
    decision = rules.decide(trigger, now=now, first_time=args.first_time, person=args.person)
    explained = rules.explain(trigger, now=now)
    if decision is None:
        print(f"no reply: {_why_nothing(rules, trigger, args.first_time)}", file=out)
        for rule_id, why in explained:
            print(f"  {rule_id}: {why}", file=out)
        return EXIT_NO_MATCH
    rule = rules.rule(decision.rule_id)
    how = f" (priority {rule.priority}, {rule.match})" if rule else ""
    print(f"rule: {decision.rule_id}{how}", file=out)
    if decision.variant:
        weights = {v: w for v, w, _ in rule.variants} if rule else {}
        share = weights.get(decision.variant, 0) / (sum(weights.values()) or 1)
        print(f"variant: {decision.variant} of {', '.join(weights)} (experiment {decision.experiment}, "
              f"{share:.0%} of people, for {args.person or 'an unnamed person'} always)", file=out)
    for rule_id, why in explained:
        if rule_id != decision.rule_id:
            print(f"  also: {rule_id}: {why}", file=out)
    if decision.needs:
        missing = sorted(decision.needs - set(values))
        note = f" (not given: {', '.join(missing)})" if missing else ""
        print(f"placeholders: {', '.join(sorted(decision.needs))}{note}", file=out)
    _print_reply(render(decision.reply, values), out)
    return EXIT_OK


def _why_nothing(rules, trigger, first_time: bool) -> str:
    if trigger.kind == "text":
        return "no rule matched and the set has no defaults.reply"
    if trigger.kind == "subscribe":
        return "no scene rule matched and the set has no welcome" + (
            "" if first_time else " (first_welcome needs --first-time)")
    return f"no {trigger.kind} rule matched {trigger.value!r}"


def _print_reply(reply, out: TextIO) -> None:
    print(f"reply: {reply.kind}{'' if reply.is_passive else ' (sent as a customer-service message)'}", file=out)
    for name in ("content", "media_id", "title", "description", "music_url", "hq_music_url", "thumb_media_id",
                 "appid", "pagepath"):
        value = getattr(reply, name)
        if value:
            print(f"  {name}: {value}", file=out)
    for a in reply.articles:
        print(f"  article: {a.title} -> {a.url}" + (f" ({a.description})" if a.description else ""), file=out)


def _default_app() -> str | None:
    """The only Official Account of the accounts config (inline or secret), if there is exactly one."""
    from wxloop.config import ConfigError, load_config

    try:
        accounts = load_config().accounts
    except ConfigError:
        return None
    oas = [app for app, acc in accounts.items() if acc.kind == "oa"]
    return oas[0] if len(oas) == 1 else None


def _rules_push(args, out: TextIO) -> int:
    from wxloop.rulesfile import load_rule_set

    rules, loaded = load_rule_set(args.file, app_id=args.app)
    app_id = rules.app_id
    if not app_id:
        raise CliError(f"{args.file}:1: no app_id in the file: pass --app APPID")
    from wxloop.adapters import repository
    from wxloop.services import rules_cache

    try:
        repository.put_rule_set(app_id, rules.to_doc(), rules.version)
    except repository.RuleVersionConflict as exc:
        raise CliError(f"{args.file}:{loaded.line_of('version')}: {exc}; change version (or remove it to "
                       "version by content)") from None
    except Exception as exc:
        raise CliError(f"push failed: {exc}", EXIT_NO_MATCH) from None
    print(f"pushed {args.file} as version {rules.version} of {app_id} ({len(rules)} rules); serving picks it "
          f"up within {rules_cache.refresh_seconds():g} s (RULES_REFRESH_SECONDS)", file=out)
    return EXIT_OK


def _rules_pull(args, out: TextIO) -> int:
    import yaml

    from wxloop.adapters import repository

    app_id = args.app or _default_app()
    if not app_id:
        raise CliError("pass --app APPID")
    try:
        found = repository.get_rule_set(app_id, args.version)
    except Exception as exc:
        raise CliError(f"pull failed: {exc}", EXIT_NO_MATCH) from None
    if found is None:
        what = f"rule set version {args.version}" if args.version else "current rule set"
        raise CliError(f"{app_id} has no {what}", EXIT_NO_MATCH)
    version, doc = found
    doc = {"version": version, **{k: v for k, v in doc.items() if k != "version"}}
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=110)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(f"wrote version {version} of {app_id} to {args.output}", file=out)
    else:
        out.write(text)
    return EXIT_OK


# ------------------------------------------------------------------------------------------- menu


def _menu_validate(args, out: TextIO) -> int:
    from wxloop.rulesfile import load_menu_model, load_rule_set

    menu, _ = load_menu_model(args.file)
    leaves = sum(len(b.sub_buttons) or 1 for b in menu.buttons)
    print(f"{args.file}: ok, {len(menu.buttons)} top-level buttons, {leaves} actions", file=out)
    if args.rules:
        from wxloop.domain.rules import Trigger

        rules, _ = load_rule_set(args.rules)
        now = datetime.now().astimezone()
        # explain() lists the click rules whose keywords match, open or not: none means no answer ever.
        unanswered = [k for k in menu.click_keys() if not rules.explain(Trigger("click", k), now=now)]
        for key in unanswered:
            print(f"warning: click key {key!r} has no click rule in {args.rules}", file=out)
    return EXIT_OK


def _menu_push(args, out: TextIO) -> int:
    from wxloop.adapters.wechat import api_client
    from wxloop.rulesfile import load_menu_model

    menu, _ = load_menu_model(args.file)
    try:
        api_client(args.app).menu.create(menu.to_wechat_json())
    except Exception as exc:
        raise CliError(f"menu/create failed: {exc}", EXIT_NO_MATCH) from None
    print(f"menu of {args.app} published ({len(menu.buttons)} top-level buttons); "
          "clients may take a while to show it", file=out)
    return EXIT_OK


_COMMANDS = {
    ("rules", "validate"): _rules_validate,
    ("rules", "test"): _rules_test,
    ("rules", "push"): _rules_push,
    ("rules", "pull"): _rules_pull,
    ("menu", "validate"): _menu_validate,
    ("menu", "push"): _menu_push,
}

if __name__ == "__main__":
    sys.exit(main())
