"""A rule-set document (a dict, usually loaded from YAML) → validated rules and default replies.

Every error is a :class:`RuleError` naming the offending path (``rules[3].keywords[0]``); nothing here
compiles an index or matches anything (that is ``engine``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wxloop.domain.replies import Reply
from wxloop.domain.rules.errors import RuleError
from wxloop.domain.rules.fields import app_id as _app_id
from wxloop.domain.rules.fields import no_unknown as _no_unknown
from wxloop.domain.rules.fields import string as _str
from wxloop.domain.rules.model import (
    ACTIONS,
    DEFAULT_IDS,
    KEYWORD_MAX_LEN,
    MATCH_MODES,
    MAX_KEYWORDS,
    MAX_NEEDLE_CHARS,
    MAX_REGEXES,
    MAX_RULES,
    REGEX_MAX_LEN,
    TRIGGERS,
    Rule,
    normalize,
)
from wxloop.domain.rules.regexes import REGEX_SET_PROGRAM_LIMIT, REGEX_SET_WIDTH_LIMIT, vet_regex
from wxloop.domain.rules.reply_specs import parse_reply as _parse_reply
from wxloop.domain.rules.templates import reply_needs
from wxloop.domain.rules.windows import parse_window as _parse_window

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_RULE_FIELDS = {"id", "match", "keywords", "priority", "triggers", "reply", "variants", "window", "apps", "note",
                "action"}
_VARIANT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,23}$")
MAX_VARIANTS = 10


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """A validated document: its own ``app_id`` (if any), default replies and rules, and their canonical forms."""

    app_id: str | None
    defaults: dict[str, Reply]
    defaults_doc: dict[str, Any]
    rules: tuple[Rule, ...]


def parse_document(doc: object, *, app_id: str | None) -> ParsedDocument:
    """Validate a rule-set document for account ``app_id`` (None: the document's own); raises RuleError."""
    if not isinstance(doc, Mapping):
        raise RuleError("", "a rule set is a mapping with version, app_id, defaults and rules")
    _no_unknown(doc, {"version", "app_id", "defaults", "rules"}, "")
    doc_app = doc.get("app_id")
    if doc_app is not None:
        doc_app = _app_id(doc_app, "app_id")
    if app_id is not None and doc_app is not None and app_id != doc_app:
        raise RuleError("app_id", f"this rule set is for {doc_app}, not {app_id}")
    defaults, defaults_doc = _parse_defaults(doc.get("defaults") or {})
    return ParsedDocument(doc_app, defaults, defaults_doc, _parse_rules(doc.get("rules") or []))


def _parse_defaults(raw: object) -> tuple[dict[str, Reply], dict[str, Any]]:
    if not isinstance(raw, Mapping):
        raise RuleError("defaults", "must be a mapping with reply, welcome, first_welcome")
    _no_unknown(raw, set(DEFAULT_IDS), "defaults")
    defaults: dict[str, Reply] = {}
    docs: dict[str, Any] = {}
    for name in DEFAULT_IDS:
        if raw.get(name) is not None:
            defaults[name], docs[name] = _parse_reply(raw[name], f"defaults.{name}")
    return defaults, docs


def _parse_rules(raw_rules: object) -> tuple[Rule, ...]:  # noqa: C901  # a flat list of checks, each with its error
    if not isinstance(raw_rules, list):
        raise RuleError("rules", "must be a list")
    if len(raw_rules) > MAX_RULES:
        raise RuleError("rules", f"at most {MAX_RULES} rules")
    rules: list[Rule] = []
    seen_ids: dict[str, int] = {}
    regex_count = keyword_count = needle_chars = 0
    program = width = 0  # RE2 instructions and tracked history of all regexes so far
    for i, raw in enumerate(raw_rules):
        rule = _parse_rule(raw, i, regex_room=MAX_REGEXES - regex_count)
        if rule.id in seen_ids:
            raise RuleError(f"rules[{i}].id", f"duplicate id {rule.id!r} (also rules[{seen_ids[rule.id]}])")
        seen_ids[rule.id] = i
        rules.append(rule)
        keyword_count += len(rule.keywords)
        if keyword_count > MAX_KEYWORDS:
            k = len(rule.keywords) - (keyword_count - MAX_KEYWORDS)
            raise RuleError(f"rules[{i}].keywords[{k}]", f"a set holds at most {MAX_KEYWORDS} keywords")
        if rule.match == "contains":
            for k, keyword in enumerate(rule.keywords):
                needle_chars += len(keyword)
                if needle_chars > MAX_NEEDLE_CHARS:
                    raise RuleError(f"rules[{i}].keywords[{k}]", f"the set's contains keywords together are "
                                    f"over {MAX_NEEDLE_CHARS} characters")
        if rule.match != "regex":
            continue
        regex_count += len(rule.keywords)
        for k, keyword in enumerate(rule.keywords):
            vetted = vet_regex(keyword)
            program += vetted.size
            width += vetted.width
            if width > REGEX_SET_WIDTH_LIMIT:
                raise RuleError(f"rules[{i}].keywords[{k}]",
                                f"regex refused: with it the set's regexes track {width} characters of history "
                                f"(limit {REGEX_SET_WIDTH_LIMIT}); use fewer ., classes and counted repeats")
            if program > REGEX_SET_PROGRAM_LIMIT:
                raise RuleError(f"rules[{i}].keywords[{k}]",
                                f"regex refused: with it the set's regexes compile to {program} RE2 instructions "
                                f"(limit {REGEX_SET_PROGRAM_LIMIT}); use smaller counts or fewer regexes")
    return tuple(rules)


def _parse_rule(raw: object, i: int, *, regex_room: int = MAX_REGEXES) -> Rule:
    base = f"rules[{i}]"
    if not isinstance(raw, Mapping):
        raise RuleError(base, "a rule is a mapping with id, match, keywords, priority, reply")
    _no_unknown(raw, _RULE_FIELDS, base)
    rule_id = _str(raw.get("id"), f"{base}.id", max_len=64)
    if not _ID_RE.match(rule_id):
        raise RuleError(f"{base}.id", "use letters, digits, _ . : - (at most 64, starting with a letter/digit)")
    if rule_id in DEFAULT_IDS.values():
        raise RuleError(f"{base}.id", f"{rule_id!r} names a default reply")
    match = raw.get("match", "exact")
    if match not in MATCH_MODES:
        raise RuleError(f"{base}.match", f"must be one of {', '.join(MATCH_MODES)}, not {match!r}")
    keywords = _parse_keywords(raw.get("keywords"), f"{base}.keywords", match, regex_room)
    priority = raw.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool) or not -1_000_000 <= priority <= 1_000_000:
        raise RuleError(f"{base}.priority", "must be an integer between -1000000 and 1000000")
    triggers = _parse_triggers(raw.get("triggers", ["text"]), f"{base}.triggers")
    window = _parse_window(raw["window"], f"{base}.window") if raw.get("window") is not None else None
    apps = _parse_apps(raw["apps"], f"{base}.apps") if raw.get("apps") is not None else frozenset()
    note = _str(raw.get("note"), f"{base}.note", required=False, max_len=1000)
    reply, reply_doc, variants = _parse_reply_or_variants(raw, base)
    action = raw.get("action") or ""
    if action and action not in ACTIONS:
        raise RuleError(f"{base}.action", f"must be one of {', '.join(ACTIONS)}, not {action!r}")

    doc: dict[str, Any] = {"id": rule_id, "match": match, "keywords": keywords, "priority": priority,
                           "triggers": list(triggers)}
    if window is not None:
        doc["window"] = window.to_doc()
    if apps:
        doc["apps"] = sorted(apps)
    if note:
        doc["note"] = note
    doc["variants" if variants else "reply"] = reply_doc
    if action:
        doc["action"] = action
    needs = frozenset().union(*(reply_needs(r) for _, _, r in variants)) if variants else reply_needs(reply)
    return Rule(id=rule_id, match=match, keywords=tuple(keywords), priority=priority, triggers=triggers,
                reply=reply, needs=needs, position=i, window=window, apps=apps, note=note, doc=doc,
                action=action, variants=variants)


def _parse_reply_or_variants(raw: Mapping[str, Any], base: str) -> tuple[Reply, Any, tuple[tuple[str, float, Reply], ...]]:
    """A rule's ``reply``, or its ``variants`` (A/B: ``{name: {weight, reply}}``, 2 to 10, weights > 0): the
    reply (the first variant's), its canonical document, and the variants."""
    if "reply" not in raw and "variants" not in raw:
        raise RuleError(f"{base}.reply", "is required")
    if "reply" in raw and "variants" in raw:
        raise RuleError(f"{base}.variants", "a rule has a reply or variants, not both")
    if "reply" in raw:
        reply, reply_doc = _parse_reply(raw["reply"], f"{base}.reply")
        return reply, reply_doc, ()
    path = f"{base}.variants"
    given = raw["variants"]
    if not isinstance(given, Mapping) or not 2 <= len(given) <= MAX_VARIANTS:
        raise RuleError(path, f"a mapping of 2 to {MAX_VARIANTS} variants: name: {{weight, reply}}")
    variants, docs = [], {}
    for name, spec in given.items():
        where = f"{path}.{name}"
        if not isinstance(name, str) or not _VARIANT_RE.match(name):
            raise RuleError(where, "a variant name is lower-case letters, digits, _ or - (at most 24)")
        if not isinstance(spec, Mapping):
            raise RuleError(where, "a variant is a mapping with weight and reply")
        _no_unknown(spec, {"weight", "reply"}, where)
        weight = spec.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0.001 <= weight <= 1000:
            raise RuleError(f"{where}.weight", "a number from 0.001 to 1000")
        if "reply" not in spec:
            raise RuleError(f"{where}.reply", "is required")
        reply, reply_doc = _parse_reply(spec["reply"], f"{where}.reply")
        variants.append((name, float(weight), reply))
        docs[name] = {"weight": float(weight), "reply": reply_doc}
    variants.sort()  # by name: the file's order and a stored copy's (keys sorted) give the same rule
    return variants[0][2], dict(sorted(docs.items())), tuple(variants)


def _parse_keywords(raw: object, path: str, match: str, regex_room: int) -> list[str]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise RuleError(path, "one or more keywords are required")
    if len(raw) > MAX_KEYWORDS:  # refused before any is read: a set holds no more than this
        raise RuleError(f"{path}[{MAX_KEYWORDS}]", f"a set holds at most {MAX_KEYWORDS} keywords")
    keywords: list[str] = []
    for k, kw in enumerate(raw):
        where = f"{path}[{k}]"
        if isinstance(kw, (int, float)) and not isinstance(kw, bool) and match != "regex":
            kw = str(kw)  # a scene id or click key written without quotes
        kw = _str(kw, where, max_len=REGEX_MAX_LEN if match == "regex" else KEYWORD_MAX_LEN)
        if match == "regex":
            if k >= regex_room:
                raise RuleError(where, f"regex refused: a set holds at most {MAX_REGEXES} regexes")
            try:
                vet_regex(kw)
            except ValueError as exc:
                raise RuleError(where, f"regex refused: {exc}") from None
        elif not normalize(kw):
            raise RuleError(where, "is empty after normalisation")
        keywords.append(kw)
    return keywords


def _parse_triggers(raw: object, path: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise RuleError(path, f"a non-empty list of {', '.join(TRIGGERS)}")
    for t, trig in enumerate(raw):
        if trig not in TRIGGERS:
            raise RuleError(f"{path}[{t}]", f"must be one of {', '.join(TRIGGERS)}, not {trig!r}")
    return tuple(dict.fromkeys(raw))


def _parse_apps(raw: object, path: str) -> frozenset[str]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise RuleError(path, "a non-empty list of app ids")
    return frozenset(_app_id(a, f"{path}[{n}]") for n, a in enumerate(raw))
