"""Deciding: a compiled rule set answers a trigger in time that does not grow with the number of rules.

Precedence (explicit, never the order handlers were registered):
  1. the highest ``priority`` wins;
  2. on equal priority ``exact`` beats ``contains`` beats ``regex``;
  3. then the rule that comes first in the file.
A rule whose time window is closed, or that is scoped (``apps``) to other accounts, is skipped as if absent,
so the next rule in that order gets its chance.

When no rule matches:
  - ``text``: the default reply (``defaults.reply``) if any, else nothing;
  - ``subscribe``: a matching scene rule first, then the first-time welcome (``defaults.first_welcome``, only
    when the caller says ``first_time=True``: the engine keeps no state, the caller knows whether the person
    is new), then the default welcome (``defaults.welcome``), else nothing;
  - ``click``, ``scan`` and ``enter`` (a Mini Program customer-service session, by its SessionFrom): nothing.

Exact keywords are a dict lookup; all ``contains`` keywords of a trigger are one Aho-Corasick automaton
(``pyahocorasick``), found in one pass over the text whatever their number; all regexes of a trigger are one
RE2 set, decided in one pass over the first ``REGEX_TEXT_LIMIT`` characters.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from wxloop.domain.experiments import assign_variant
from wxloop.domain.replies import Reply
from wxloop.domain.rules.errors import RuleError
from wxloop.domain.rules.model import (
    DEFAULT_IDS,
    MAX_NESTED_NEEDLES,
    REGEX_TEXT_LIMIT,
    TRIGGERS,
    Decision,
    Rule,
    Trigger,
    normalize,
)
from wxloop.domain.rules.parse import parse_document
from wxloop.domain.rules.regexes import RegexSet, vet_regex
from wxloop.domain.rules.templates import reply_needs
from wxloop.domain.rules.windows import local_time

_RANK = itemgetter(0)
# An index entry: the rule's rank in precedence order, and the rule.
_Entry = tuple[int, Rule]


class _Index:
    """Everything one trigger kind can match, arranged so matching cost does not grow with the rule count.

    Exact keywords: a dict. ``contains`` keywords: an Aho-Corasick automaton, one pass over the text (its
    output per character is bounded by ``MAX_NESTED_NEEDLES``). Regexes: one RE2 set, decided in one pass.
    """

    __slots__ = ("exact", "needles", "needle_paths", "automaton", "regex_entries", "regex_keywords", "regexes")

    def __init__(self) -> None:
        self.exact: dict[str, list[_Entry]] = {}
        self.needles: dict[str, list[_Entry]] = {}  # needle -> entries
        self.needle_paths: dict[str, str] = {}  # needle -> where it is first written (for errors)
        self.automaton: Any = None
        self.regex_entries: list[_Entry] = []  # parallel to regex_keywords
        self.regex_keywords: list[str] = []
        self.regexes: RegexSet | None = None

    def add(self, rank: int, rule: Rule, keyword: str, where: str) -> None:
        entry = (rank, rule)
        if rule.match == "exact":
            self.exact.setdefault(keyword, []).append(entry)
        elif rule.match == "contains":
            self.needles.setdefault(keyword, []).append(entry)
            self.needle_paths.setdefault(keyword, where)
        else:
            self.regex_entries.append(entry)
            self.regex_keywords.append(keyword)

    def freeze(self) -> None:
        for entries in self.exact.values():
            entries.sort(key=_RANK)
        if self.needles:
            self.automaton = _automaton(self.needles, self.needle_paths)
        if self.regex_keywords:
            try:
                self.regexes = RegexSet(self.regex_keywords)
            except ValueError as exc:
                raise RuleError("rules", f"regexes refused: {exc}") from None

    def candidates(self, value: str) -> list[_Entry]:
        found = self.exact.get(value)
        cands = list(found) if found else []
        if self.automaton is not None:
            seen: set[str] = set()
            for _, (needle, entries) in self.automaton.iter(value):
                if needle not in seen:
                    seen.add(needle)
                    cands.extend(entries)
        if self.regexes is not None:
            entries = self.regex_entries
            cands.extend(entries[i] for i in self.regexes.matching(value[:REGEX_TEXT_LIMIT]))
        if len(cands) > 1:
            cands.sort(key=_RANK)
        return cands


def _automaton(needles: dict[str, list[_Entry]], paths: dict[str, str]) -> Any:
    """The Aho-Corasick automaton of ``needles``; raises RuleError when a needle ends with more than
    ``MAX_NESTED_NEEDLES`` needles (itself included): each would be reported at every place it ends."""
    import ahocorasick

    automaton = ahocorasick.Automaton()
    for needle, entries in needles.items():
        entries.sort(key=_RANK)
        automaton.add_word(needle, (needle, entries))
    automaton.make_automaton()
    for needle in needles:
        nested = sum(1 for end, _ in automaton.iter(needle) if end == len(needle) - 1)
        if nested > MAX_NESTED_NEEDLES:
            raise RuleError(paths[needle], f"{nested} contains keywords end with this one's end (at most "
                            f"{MAX_NESTED_NEEDLES}: a text would report each at every place it occurs)")
    return automaton


def _version_of(body: Mapping[str, Any], version: object) -> str:
    """The name of a compiled set: ``version`` as given, else a hash of its content (``RuleError`` when it is
    not a short string of letters, digits, _ . : -)."""
    if version is None:
        version = content_version(body)
    if not isinstance(version, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$", version):
        raise RuleError("version", 'must be a string of letters, digits, _ . : - (at most 64); in YAML quote '
                        'numbers: version: "2"')
    return version


class RuleSet:
    """A compiled rule set (immutable). Build with :meth:`compile`; ask with :meth:`decide`."""

    __slots__ = ("version", "app_id", "rules", "defaults", "placeholders_needed", "_index", "_doc", "_decisions",
                 "_variants")

    version: str
    app_id: str | None
    rules: tuple[Rule, ...]
    defaults: dict[str, Reply]
    placeholders_needed: frozenset[str]
    _index: dict[str, _Index]
    _doc: dict[str, Any]
    _decisions: dict[str, Decision]
    _variants: dict[str, tuple[tuple[str, float, Decision], ...]]

    def __init__(self) -> None:
        raise TypeError("use RuleSet.compile(doc, version=...)")

    # long: validate, version and index the rules in one pass; the steps share their locals
    @classmethod
    def compile(  # noqa: C901  # validate, version, index: one pass over the rules
        cls, doc: Mapping[str, Any], *, version: str | None = None, app_id: str | None = None
    ) -> RuleSet:
        """Validate and compile a rule-set document.

        ``version`` names this compiled set (the stored version); None takes the document's ``version``,
        else a hash of its content. ``app_id`` is the account it serves; it defaults to the document's
        ``app_id`` and must agree with it. Rules scoped with ``apps`` are only active for those accounts
        (with no account known they are inactive). Raises :class:`RuleError` naming the offending path.
        """
        parsed = parse_document(doc, app_id=app_id)
        doc_app, defaults, defaults_doc, rules = parsed.app_id, parsed.defaults, parsed.defaults_doc, parsed.rules
        effective_app = app_id or doc_app

        self = object.__new__(cls)
        self.app_id = effective_app
        self.rules = tuple(rules)
        self.defaults = defaults
        body: dict[str, Any] = {}
        if doc_app is not None:
            body["app_id"] = doc_app
        if defaults_doc:
            body["defaults"] = defaults_doc
        body["rules"] = [r.doc for r in rules]
        self.version = _version_of(body, version if version is not None else doc.get("version"))
        self._doc = {"version": self.version, **body}
        self._index_rules(rules, effective_app)
        needed: set[str] = set().union(*(r.needs for r in rules if not r.apps or effective_app in r.apps))
        for reply in defaults.values():
            needed |= reply_needs(reply)
        self.placeholders_needed = frozenset(needed)
        # Decisions are immutable: build each once, not per message.
        self._decisions = {r.id: Decision(r.id, r.reply, r.needs, r.action) for r in rules if not r.variants}
        for name, reply in defaults.items():
            self._decisions[DEFAULT_IDS[name]] = Decision(DEFAULT_IDS[name], reply, reply_needs(reply))
        self._variants = {r.id: tuple((v, w, Decision(r.id, reply, reply_needs(reply), r.action,
                                                      experiment_name(effective_app, r.id), v))
                                      for v, w, reply in r.variants) for r in rules if r.variants}
        return self

    def _index_rules(self, rules: Sequence[Rule], app_id: str | None) -> None:
        """One index per trigger of the keywords of every rule active for ``app_id``, in precedence order."""
        self._index = {kind: _Index() for kind in TRIGGERS}
        for rank, rule in enumerate(sorted(rules, key=lambda r: r.precedence)):
            if rule.apps and app_id not in rule.apps:
                continue
            for k, keyword in enumerate(rule.keywords):
                if rule.match != "regex":
                    keyword = normalize(keyword)
                for kind in rule.triggers:
                    self._index[kind].add(rank, rule, keyword, f"rules[{rule.position}].keywords[{k}]")
        for index in self._index.values():
            index.freeze()

    # -- asking

    def decide(self, trigger: Trigger, *, now: datetime, first_time: bool = False, person: str = "") -> Decision | None:
        """What to answer to ``trigger`` at ``now``, or None for nothing (see the module docstring). A rule with
        variants answers ``person`` (the sender's openid) with the variant that person always gets."""
        kind = trigger.kind
        index = self._index.get(kind)
        if index is None:
            return None
        value = normalize(trigger.value)
        rule = self._first_open(index, value, now) if value else None
        if rule is not None:
            return self._decisions[rule.id] if rule.id not in self._variants else self.variant_for(rule.id, person)
        if kind == "text":
            return self._default("reply")
        if kind == "subscribe":
            if first_time and "first_welcome" in self.defaults:
                return self._default("first_welcome")
            return self._default("welcome")
        return None

    def _first_open(self, index: _Index, value: str, now: datetime) -> Rule | None:
        cands = index.candidates(value)
        if not cands:
            return None
        local = None
        for _, rule in cands:
            if rule.window is not None:
                if local is None:
                    local = local_time(now)
                if not rule.window.is_open_local(local):
                    continue
            return rule
        return None

    def variant_for(self, rule_id: str, person: str) -> Decision:
        """The decision of the A/B rule ``rule_id`` for ``person``: sticky (a hash of ``rule:{id}`` and the
        person, ``experiments.assign_variant``), each variant with its weight's share."""
        variants = self._variants[rule_id]  # sorted by name (parse): the file and a stored copy agree
        name = assign_variant(person, f"rule:{rule_id}", [(v, w) for v, w, _ in variants])
        return next(d for v, _, d in variants if v == name)

    def _default(self, name: str) -> Decision | None:
        return self._decisions.get(DEFAULT_IDS[name])

    def explain(self, trigger: Trigger, *, now: datetime) -> list[tuple[str, str]]:
        """For operators (slow): every rule listening to this trigger whose keywords match, with why it did
        or did not answer, in precedence order."""
        value = normalize(trigger.value)
        out: list[tuple[str, str]] = []
        for rule in sorted(self.rules, key=lambda r: r.precedence):
            if trigger.kind not in rule.triggers or not value:
                continue
            if not any(_keyword_matches(rule, kw, value) for kw in rule.keywords):
                continue
            if rule.apps and self.app_id not in rule.apps:
                out.append((rule.id, f"scoped to {', '.join(sorted(rule.apps))}, not {self.app_id or 'no app'}"))
            elif rule.window is not None and not rule.window.is_open(now):
                out.append((rule.id, "keywords match but its time window is closed"))
            else:
                out.append((rule.id, "matches"))
        return out

    # -- introspection

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def to_doc(self) -> dict[str, Any]:
        """The canonical document (JSON-able): ``RuleSet.compile(rs.to_doc())`` gives the same rule set."""
        doc: dict[str, Any] = json.loads(json.dumps(self._doc))
        return doc

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"RuleSet(version={self.version!r}, app_id={self.app_id!r}, rules={len(self.rules)})"


def experiment_name(app_id: str | None, rule_id: str) -> str:
    """The A/B experiment a rule's variants are recorded under: ``rule:{app}:{id}`` (rule ids repeat across
    accounts). The assignment itself hashes ``rule:{id}`` only, so ``rules test`` without ``--app`` agrees."""
    return f"rule:{app_id}:{rule_id}" if app_id else f"rule:{rule_id}"


def _keyword_matches(rule: Rule, keyword: str, value: str) -> bool:
    if rule.match == "regex":
        return bool(vet_regex(keyword).search(value[:REGEX_TEXT_LIMIT]))
    keyword = normalize(keyword)
    return keyword == value if rule.match == "exact" else keyword in value


def content_version(body: Mapping[str, Any]) -> str:
    """A version derived from a document's content (stable across YAML formatting and key order)."""
    payload = {k: v for k, v in body.items() if k != "version"}
    raw = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:12]

