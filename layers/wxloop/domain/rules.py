"""The keyword rule engine: what the Official Account answers to a text, a menu click or a QR scene.

Pure domain code: a rule-set document (a dict, usually loaded from YAML by ``wxloop.rulesfile``) is compiled
once per version with :meth:`RuleSet.compile`; the webhook then asks :meth:`RuleSet.decide` what to answer
and fills the reply's ``{placeholders}`` with :func:`render`.

Triggers (``Trigger.kind``) and what a rule's ``keywords`` are matched against:
  - ``text``      the text of a message or the speech recognised in a voice message;
  - ``click``     the ``EventKey`` of a menu CLICK;
  - ``subscribe`` the QR scene of a new follower (``qrscene_`` prefix removed);
  - ``scan``      the QR scene scanned by an existing follower.
A rule listens to ``triggers`` (default ``[text]``) and matches with ``match``: ``exact``, ``contains`` or
``regex``. Values and keywords are normalised the same way first (:func:`normalize`: NFKC, so full-width
becomes half-width, casefold, trim, collapse inner whitespace); regexes see the normalised text (cut to
``REGEX_TEXT_LIMIT`` characters) and are compiled case-insensitive.

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
  - ``click`` and ``scan``: nothing.

Time windows (``window``: ``dates`` from/to inclusive, daily ``hours`` like ``"09:00-18:00"``, ``weekdays``)
are read in Asia/Shanghai time (``hours`` end is exclusive, minute resolution). A span that crosses midnight
(``"22:00-02:00"``) belongs to the day it starts on: with ``weekdays: [fri]`` it is open from Friday 22:00
to Saturday 02:00, and ``dates`` apply to that starting day too.

Regex guard: a user-supplied pattern must not be able to stall the webhook. At compile time a pattern is
refused when it is longer than ``REGEX_MAX_LEN``, does not compile, uses back-references, nests a variable
quantifier inside a repeated group (``(a+)+``, ``(.*)*``, ``(\\w+\\s?)*``), matches empty text, or is slow on
a probe of adversarial strings up to ``REGEX_TEXT_LIMIT`` characters. At match time regexes only see the
first ``REGEX_TEXT_LIMIT`` characters.

Matching cost does not grow with the number of rules: exact keywords are a dict lookup; ``contains`` keywords,
and a literal every match of a regex must contain, are grouped by first character and tested with ``in`` only
for the characters present in the text; only regexes without such a literal are tried on every text.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from operator import itemgetter
from typing import Any
from urllib.parse import quote

from wxloop.domain.inbound import Inbound
from wxloop.domain.replies import TEXT_LIMIT_BYTES, Article, Reply, mp_link, truncate_utf8

TRIGGERS = ("text", "click", "subscribe", "scan")
MATCH_MODES = ("exact", "contains", "regex")  # also the tie-break order on equal priority
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
REGEX_MAX_LEN = 200
REGEX_TEXT_LIMIT = 512
KEYWORD_MAX_LEN = 256
MAX_RULES = 5000
# The probe refuses a pattern when one search of an adversarial string takes longer than this (quadratic
# patterns like [a-z]+\d+ take ~4 ms on 512 characters and pass; cubic ones take ~1 s and do not).
REGEX_PROBE_LIMIT_NS = 10_000_000
PLACEHOLDER_VALUE_MAX = 512
ELLIPSIS = "…"
DEFAULT_IDS = {"reply": "defaults.reply", "welcome": "defaults.welcome", "first_welcome": "defaults.first_welcome"}

_MODE_RANK = {mode: i for i, mode in enumerate(MATCH_MODES)}
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_HOURS_RE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
# A placeholder: {name} or {name|fallback}; {{ and }} are literal braces. Nothing else is ever interpreted:
# no attribute or index access, no conversion, no format spec.
_NAME = r"[A-Za-z][A-Za-z0-9_]{0,63}"
_PLACEHOLDER_RE = re.compile(r"\{\{|\}\}|\{(" + _NAME + r")(?:\|([^{}]{0,200}))?\}")
_BRACE_TOKEN_RE = re.compile(r"\{\{|\}\}|\{[^{}]*\}|[{}]")
_VALID_PLACEHOLDER_RE = re.compile(r"^\{" + _NAME + r"(?:\|[^{}]{0,200})?\}$")
_ANCHOR_OPEN_RE = re.compile(r"<a[\s>]", re.IGNORECASE)
# Substituted values cannot open or close markup in a text reply (an injected <a> would link anywhere).
_CONTENT_SAFE = str.maketrans({"<": "＜", ">": "＞", '"': "＂"})
_RANK = itemgetter(0)


class RuleError(ValueError):
    """A rule-set document is invalid. ``path`` locates the field (``rules[3].keywords[0]``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


# --------------------------------------------------------------------------------------------- time


def _shanghai_tz(key: str = "Asia/Shanghai") -> tzinfo:
    """Asia/Shanghai from the system tz database (no ``tzdata`` package needed on Linux), else UTC+8.

    China has observed no daylight saving time since 1991, so the fixed offset is exact for every date a
    rule can name.
    """
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(key)
    except Exception:  # ZoneInfoNotFoundError, or no tz database at all on a slim image
        return timezone(timedelta(hours=8), "CST")


SHANGHAI = _shanghai_tz()


def local_time(now: datetime) -> datetime:
    """``now`` in Asia/Shanghai; a naive ``now`` is taken as UTC (what Lambda clocks give)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(SHANGHAI)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """When a rule is open, in Asia/Shanghai. Empty parts do not restrict."""

    date_from: date | None = None
    date_to: date | None = None
    hours: tuple[tuple[int, int], ...] = ()  # (start minute, end minute), end exclusive; start > end crosses midnight
    weekdays: frozenset[int] = frozenset()  # ISO weekday numbers, Monday = 1

    def is_open(self, now: datetime) -> bool:
        return self.is_open_local(local_time(now))

    def is_open_local(self, local: datetime) -> bool:
        day = local.date()
        if not self.hours:
            return self._day_ok(day)
        minute = local.hour * 60 + local.minute
        for start, end in self.hours:
            if start < end:
                if start <= minute < end and self._day_ok(day):
                    return True
            else:  # crosses midnight: the part after midnight belongs to the previous day
                if minute >= start and self._day_ok(day):
                    return True
                if minute < end and self._day_ok(day - timedelta(days=1)):
                    return True
        return False

    def _day_ok(self, day: date) -> bool:
        if self.date_from is not None and day < self.date_from:
            return False
        if self.date_to is not None and day > self.date_to:
            return False
        return not self.weekdays or day.isoweekday() in self.weekdays

    def to_doc(self) -> dict:
        doc: dict[str, Any] = {}
        if self.date_from or self.date_to:
            dates = {}
            if self.date_from:
                dates["from"] = self.date_from.isoformat()
            if self.date_to:
                dates["to"] = self.date_to.isoformat()
            doc["dates"] = dates
        if self.hours:
            doc["hours"] = [f"{_hhmm(s)}-{_hhmm(e)}" for s, e in self.hours]
        if self.weekdays:
            doc["weekdays"] = [WEEKDAYS[d - 1] for d in sorted(self.weekdays)]
        return doc


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


# ---------------------------------------------------------------------------------------- triggers


@dataclass(frozen=True, slots=True)
class Trigger:
    kind: str  # "text" | "click" | "subscribe" | "scan"
    value: str  # text / click key / scene ("" when none)


def trigger_for(inbound: Inbound) -> Trigger | None:
    """What a push asks the rule engine: text and voice → ``text``; menu click → ``click`` (EventKey);
    follow → ``subscribe`` (scene); existing follower's scan → ``scan`` (scene); anything else → None."""
    if inbound.msg_type in ("text", "voice"):
        return Trigger("text", inbound.text_for_rules)
    if inbound.msg_type == "event":
        if inbound.event == "click":
            return Trigger("click", inbound.event_key)
        if inbound.event == "subscribe":
            return Trigger("subscribe", inbound.scene)
        if inbound.event == "scan":
            return Trigger("scan", inbound.scene)
    return None


def normalize(text: str) -> str:
    """NFKC (full-width → half-width), casefold, trim, collapse inner whitespace to one space."""
    if not text:
        return ""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.casefold().split())


# ------------------------------------------------------------------------------------ placeholders


def placeholders_in(template: str) -> frozenset[str]:
    """The placeholder names a template uses (``{name}`` or ``{name|fallback}``)."""
    if "{" not in template:
        return frozenset()
    return frozenset(m.group(1) for m in _PLACEHOLDER_RE.finditer(template) if m.group(1))


def check_template(template: str, path: str) -> None:
    """Refuse anything in braces but ``{name}``, ``{name|fallback}``, ``{{`` and ``}}``."""
    if "{" not in template and "}" not in template:
        return
    for m in _BRACE_TOKEN_RE.finditer(template):
        token = m.group(0)
        if token in ("{{", "}}") or _VALID_PLACEHOLDER_RE.match(token):
            continue
        raise RuleError(
            path,
            f"invalid placeholder {token!r}: use {{name}} or {{name|fallback}} (letters, digits, _), "
            "and {{ or }} for a literal brace",
        )


def _fill(template: str, values: Mapping[str, object], mode: str) -> str:
    if "{" not in template and "}" not in template:
        return template

    def sub(m: re.Match) -> str:
        whole = m.group(0)
        if whole == "{{":
            return "{"
        if whole == "}}":
            return "}"
        value = _lookup(values, m.group(1))
        if value == "":
            return m.group(2) or ""  # the fallback is operator-written: no escaping
        if mode == "url":
            return quote(value, safe="")
        if mode == "content":
            return value.translate(_CONTENT_SAFE)
        return value

    return _PLACEHOLDER_RE.sub(sub, template)


def _lookup(values: Mapping[str, object], name: str) -> str:
    try:
        value = values.get(name)
        if value is None or isinstance(value, bool):
            return "" if value is None else ("1" if value else "0")
        text = value if isinstance(value, str) else str(value)
    except Exception:  # a hostile mapping or __str__ must not break the reply
        return ""
    return text[:PLACEHOLDER_VALUE_MAX]


def cut_text(content: str, limit: int = TEXT_LIMIT_BYTES) -> str:
    """Cut text to ``limit`` UTF-8 bytes like ``truncate_utf8``, but never inside an ``<a …>…</a>`` link
    or any other tag: a link the cut would split is dropped whole."""
    if len(content) * 4 <= limit or len(content.encode("utf-8")) <= limit:
        return content
    body = truncate_utf8(content, limit, ELLIPSIS)[: -len(ELLIPSIS)]
    last_open = None
    for m in _ANCHOR_OPEN_RE.finditer(body):
        last_open = m.start()
    if last_open is not None and body.lower().find("</a>", last_open) == -1:
        body = body[:last_open]
    lt = body.rfind("<")
    if lt != -1 and body.find(">", lt) == -1:
        body = body[:lt]
    return body.rstrip() + ELLIPSIS


def render(reply: Reply, values: Mapping[str, object]) -> Reply:
    """``reply`` with its ``{placeholders}`` filled from ``values``; never raises.

    Only ``{name}`` and ``{name|fallback}`` are filled (a missing, None or empty value gives the fallback or
    ""); anything else in braces stays as written; nothing is looked up on objects. Values put into text are
    stripped of markup characters, values put into URLs and page paths are percent-encoded. Text is then cut
    to WeChat's limit without splitting a link.
    """
    try:
        changes: dict[str, Any] = {}
        for name, mode in (("content", "content"), ("title", "plain"), ("description", "plain"),
                           ("pagepath", "url"), ("music_url", "url"), ("hq_music_url", "url")):
            old = getattr(reply, name)
            new = _fill(old, values, mode)
            if name == "content":
                new = cut_text(new)
            if new != old:
                changes[name] = new
        if reply.articles:
            articles = tuple(
                Article(
                    title=_fill(a.title, values, "plain"),
                    description=_fill(a.description, values, "plain"),
                    url=_fill(a.url, values, "url"),
                    image=a.image,
                )
                for a in reply.articles
            )
            if articles != reply.articles:
                changes["articles"] = articles
        return replace(reply, **changes) if changes else reply
    except Exception:  # defensive: rendering is on the webhook's critical path
        return reply


def reply_needs(reply: Reply) -> frozenset[str]:
    names: set[str] = set()
    for template in (reply.content, reply.title, reply.description, reply.pagepath, reply.music_url,
                     reply.hq_music_url):
        names |= placeholders_in(template)
    for a in reply.articles:
        names |= placeholders_in(a.title) | placeholders_in(a.description) | placeholders_in(a.url)
    return frozenset(names)


# ------------------------------------------------------------------------------------ regex guard


def _sre():
    from re import _constants as sre_constants  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]

    return sre_parse, sre_constants


def _walk_guard(items, in_repeat: bool, c) -> None:
    for op, av in items:
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            lo, hi, sub = av
            if in_repeat and lo != hi:
                raise ValueError("nested quantifier (a repeat inside a repeated group) can backtrack for ever")
            _walk_guard(sub, in_repeat or hi > 1, c)
        elif op is c.SUBPATTERN:
            _walk_guard(av[-1], in_repeat, c)
        elif op is c.BRANCH:
            for branch in av[1]:
                _walk_guard(branch, in_repeat, c)
        elif op in (c.ASSERT, c.ASSERT_NOT):
            _walk_guard(av[1], in_repeat, c)
        elif op is c.ATOMIC_GROUP:
            _walk_guard(av, in_repeat, c)
        elif op in (c.GROUPREF, c.GROUPREF_EXISTS, c.GROUPREF_IGNORE, c.GROUPREF_LOC_IGNORE,
                    c.GROUPREF_UNI_IGNORE):
            raise ValueError("back-references are not allowed")


def _literal_ok(ch: str) -> bool:
    # Only characters whose case folding is simple, so "regex matches" implies "literal in folded text".
    folded = ch.casefold()
    return len(folded) == 1 and folded == ch.lower() and unicodedata.normalize("NFKC", ch) == ch


def _required_literal(items, c) -> str:
    """The longest literal every match must contain (casefolded), or "" if none is evident."""
    best = ""
    run: list[str] = []

    def flush() -> None:
        nonlocal best, run
        if len(run) > len(best):
            best = "".join(run)
        run = []

    for op, av in items:
        if op is c.LITERAL and _literal_ok(chr(av)):
            run.append(chr(av).casefold())
            continue
        flush()
        inner = ""
        if op is c.SUBPATTERN and not av[1] and not av[2]:
            inner = _required_literal(av[-1], c)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT) and av[0] >= 1:
            inner = _required_literal(av[2], c)
        elif op is c.ATOMIC_GROUP:
            inner = _required_literal(av, c)
        if len(inner) > len(best):
            best = inner
    flush()
    return best


def _backtracking_risk(items, c) -> str:
    """"alternatives" when a repeated group has alternatives (exponential blow-up possible), "repeats" when
    two or more long repeats could backtrack polynomially, "" otherwise: such patterns stay cheap on
    ``REGEX_TEXT_LIMIT`` characters, so the timing probe is spent only where it can find something."""
    long_repeats = 0
    alternatives = False

    def walk(node, in_repeat: bool) -> None:
        nonlocal long_repeats, alternatives
        for op, av in node:
            if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
                if av[1] > 32:
                    long_repeats += 1
                walk(av[2], in_repeat or av[1] > 1)
            elif op is c.BRANCH:
                alternatives = alternatives or in_repeat
                for branch in av[1]:
                    walk(branch, in_repeat)
            elif op is c.SUBPATTERN:
                walk(av[-1], in_repeat)
            elif op in (c.ASSERT, c.ASSERT_NOT):
                walk(av[1], in_repeat)
            elif op is c.ATOMIC_GROUP:
                walk(av, in_repeat)

    walk(items, False)
    if alternatives:
        return "alternatives"
    return "repeats" if long_repeats >= 2 else ""


def _probe_strings(items, c) -> list[str]:
    chars: list[str] = []

    def collect(node) -> None:
        for op, av in node:
            if op is c.LITERAL:
                ch = chr(av)
                if ch not in chars:
                    chars.append(ch)
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
                collect(av[2])
            elif op is c.SUBPATTERN:
                collect(av[-1])
            elif op is c.BRANCH:
                for b in av[1]:
                    collect(b)
            elif op in (c.ASSERT, c.ASSERT_NOT):
                collect(av[1])
            elif op is c.ATOMIC_GROUP:
                collect(av)

    collect(items)
    seeds = [ch for ch in chars[:6]] + ["a", "0", " ", "a0", "-_"]
    if len(chars) >= 2:
        seeds.append("".join(chars[:4]))
    return seeds


# Lengths the probe tries. Where alternatives repeat (exponential blow-up is possible) it climbs in small steps
# so it stops before a search takes seconds; elsewhere doubling finds polynomial blow-up within 2^degree.
_SMALL_STEPS = tuple(range(4, 34, 2)) + (40, 50, 62, 78, 97, 121, 151, 189, 236, 295, 369, 461, REGEX_TEXT_LIMIT)
_DOUBLING = (64, 128, 256, REGEX_TEXT_LIMIT)


def _probe(rx: re.Pattern, seeds: Iterable[str], lengths: Iterable[int]) -> None:
    lengths = tuple(lengths)
    for seed in seeds:
        for n in lengths:
            text = (seed * (n // len(seed) + 1))[:n] + "\x00"
            for attempt in range(2):  # a GC pause is not the pattern's fault: retry once before refusing
                t0 = time.perf_counter_ns()
                rx.search(text)
                if time.perf_counter_ns() - t0 <= REGEX_PROBE_LIMIT_NS:
                    break
                if attempt:
                    raise ValueError(f"too slow on a {n}-character probe text (catastrophic backtracking)")


@lru_cache(maxsize=4096)
def vet_regex(pattern: str) -> tuple[re.Pattern, str, bool]:
    """Compile a user pattern after the guard checks; returns (compiled, the literal every match contains
    or "", whether it can only match at the start of the text).

    Raises ValueError with the reason when the pattern is refused.
    """
    if not pattern or not pattern.strip():
        raise ValueError("empty pattern")
    if len(pattern) > REGEX_MAX_LEN:
        raise ValueError(f"pattern longer than {REGEX_MAX_LEN} characters")
    try:
        rx = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"does not compile: {exc}") from None
    sre_parse, c = _sre()
    tree = sre_parse.parse(pattern, re.IGNORECASE)
    _walk_guard(tree, False, c)
    if rx.search("") is not None:
        raise ValueError("matches empty text, so it would answer every message (use defaults.reply)")
    risk = _backtracking_risk(tree, c)
    if risk:
        _probe(rx, _probe_strings(tree, c), _SMALL_STEPS if risk == "alternatives" else _DOUBLING)
    anchored = bool(tree) and tree[0][0] is c.AT and tree[0][1] in (c.AT_BEGINNING, c.AT_BEGINNING_STRING)
    return rx, _required_literal(tree, c), anchored


# -------------------------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    match: str
    keywords: tuple[str, ...]
    priority: int
    triggers: tuple[str, ...]
    reply: Reply
    needs: frozenset[str]
    position: int  # index in the file's rule list
    window: TimeWindow | None = None
    apps: frozenset[str] = frozenset()
    note: str = ""
    doc: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def precedence(self) -> tuple[int, int, int]:
        """Sort key: smaller wins (higher priority, then exact < contains < regex, then file position)."""
        return (-self.priority, _MODE_RANK[self.match], self.position)


@dataclass(frozen=True, slots=True)
class Decision:
    rule_id: str
    reply: Reply
    needs: frozenset[str]  # placeholder names used by this reply


class _Index:
    """Everything one trigger kind can match, arranged so matching cost does not grow with the rule count.

    Exact keywords: a dict. Needles (``contains`` keywords and the literal each regex needs): keyed by their
    rarest character among all needles, so a text only tests the few needles keyed by characters it has.
    Regexes with no literal: tried on every text, behind one combined pre-check for the anchored ones.
    """

    __slots__ = ("exact", "needles", "by_char", "key_chars", "always", "anchored_union", "_anchored")

    def __init__(self) -> None:
        self.exact: dict[str, list] = {}
        self.needles: dict[str, list] = {}  # needle -> entries
        self.by_char: dict[str, tuple] = {}  # key char -> ((needle, entries), ...)
        self.key_chars: frozenset[str] = frozenset()
        self.always: list = []  # regex entries with no required literal
        self.anchored_union: re.Pattern | None = None
        self._anchored: list[bool] = []

    def add(self, rank: int, rule: Rule, keyword: str, pattern: re.Pattern | None, literal: str,
            anchored: bool) -> None:
        entry = (rank, rule, pattern)
        if rule.match == "exact":
            self.exact.setdefault(keyword, []).append(entry)
        elif rule.match == "contains" or literal:
            self.needles.setdefault(keyword if rule.match == "contains" else literal, []).append(entry)
        else:
            self.always.append(entry)
            self._anchored.append(anchored)

    def freeze(self) -> None:
        for entries in self.exact.values():
            entries.sort(key=_RANK)
        counts: dict[str, int] = {}
        for needle in self.needles:
            for ch in set(needle):
                counts[ch] = counts.get(ch, 0) + 1
        buckets: dict[str, list] = {}
        for needle, entries in self.needles.items():
            entries.sort(key=_RANK)
            key = min(needle, key=lambda ch: (counts[ch], ch == " ", ch))
            buckets.setdefault(key, []).append((needle, entries))
        self.by_char = {ch: tuple(b) for ch, b in buckets.items()}
        self.key_chars = frozenset(self.by_char)
        if self.always and all(self._anchored):
            self.anchored_union = _anchored_union([p for _, _, p in self.always])
        self.always.sort(key=_RANK)

    def candidates(self, value: str) -> list:
        found = self.exact.get(value)
        cands = list(found) if found else []
        if self.key_chars:
            for ch in self.key_chars.intersection(value):
                for needle, entries in self.by_char[ch]:
                    if needle in value:
                        cands.extend(entries)
        if self.always and (self.anchored_union is None or self.anchored_union.match(value[:REGEX_TEXT_LIMIT])):
            cands.extend(self.always)
        if len(cands) > 1:
            cands.sort(key=_RANK)
        return cands


def _anchored_union(patterns: list[re.Pattern]) -> re.Pattern | None:
    """For patterns that can only match at the start of the text (``^…`` with no top-level ``|``): one
    pattern whose failed ``match`` rules them all out in one call."""
    if len(patterns) < 2:
        return None
    try:  # vetted patterns have no back-references, so group numbering in the union does not matter
        return re.compile("|".join(f"(?:{p.pattern})" for p in patterns), re.IGNORECASE)
    except re.error:  # e.g. two patterns defining the same group name
        return None


class RuleSet:
    """A compiled rule set (immutable). Build with :meth:`compile`; ask with :meth:`decide`."""

    __slots__ = ("version", "app_id", "rules", "defaults", "placeholders_needed", "_index", "_doc", "_decisions")

    version: str
    app_id: str | None
    rules: tuple[Rule, ...]
    defaults: dict[str, Reply]
    placeholders_needed: frozenset[str]

    def __init__(self) -> None:
        raise TypeError("use RuleSet.compile(doc, version=...)")

    @classmethod
    def compile(cls, doc: Mapping, *, version: str | None = None, app_id: str | None = None) -> RuleSet:
        """Validate and compile a rule-set document.

        ``version`` names this compiled set (the stored version); None takes the document's ``version``,
        else a hash of its content. ``app_id`` is the account it serves; it defaults to the document's
        ``app_id`` and must agree with it. Rules scoped with ``apps`` are only active for those accounts
        (with no account known they are inactive). Raises :class:`RuleError` naming the offending path.
        """
        if not isinstance(doc, Mapping):
            raise RuleError("", "a rule set is a mapping with version, app_id, defaults and rules")
        _no_unknown(doc, {"version", "app_id", "defaults", "rules"}, "")
        doc_app = doc.get("app_id")
        if doc_app is not None:
            doc_app = _app_id(doc_app, "app_id")
        if app_id is not None and doc_app is not None and app_id != doc_app:
            raise RuleError("app_id", f"this rule set is for {doc_app}, not {app_id}")
        effective_app = app_id or doc_app

        defaults: dict[str, Reply] = {}
        defaults_doc: dict[str, Any] = {}
        raw_defaults = doc.get("defaults") or {}
        if not isinstance(raw_defaults, Mapping):
            raise RuleError("defaults", "must be a mapping with reply, welcome, first_welcome")
        _no_unknown(raw_defaults, set(DEFAULT_IDS), "defaults")
        for name in DEFAULT_IDS:
            if raw_defaults.get(name) is not None:
                defaults[name], defaults_doc[name] = _parse_reply(raw_defaults[name], f"defaults.{name}")

        raw_rules = doc.get("rules") or []
        if not isinstance(raw_rules, list):
            raise RuleError("rules", "must be a list")
        if len(raw_rules) > MAX_RULES:
            raise RuleError("rules", f"at most {MAX_RULES} rules")
        rules: list[Rule] = []
        seen_ids: dict[str, int] = {}
        for i, raw in enumerate(raw_rules):
            rule = _parse_rule(raw, i)
            if rule.id in seen_ids:
                raise RuleError(f"rules[{i}].id", f"duplicate id {rule.id!r} (also rules[{seen_ids[rule.id]}])")
            seen_ids[rule.id] = i
            rules.append(rule)

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
        if version is None:
            version = doc.get("version")
        if version is None:
            version = content_version(body)
        if not isinstance(version, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$", version):
            raise RuleError("version", 'must be a string of letters, digits, _ . : - (at most 64); in YAML quote '
                            'numbers: version: "2"')
        self.version = version
        self._doc = {"version": version, **body}

        self._index = {kind: _Index() for kind in TRIGGERS}
        ordered = sorted(rules, key=lambda r: r.precedence)
        needed: set[str] = set()
        for rank, rule in enumerate(ordered):
            if rule.apps and effective_app not in rule.apps:
                continue
            needed |= rule.needs
            for keyword in rule.keywords:
                pattern, literal, anchored = None, "", False
                if rule.match == "regex":
                    pattern, literal, anchored = vet_regex(keyword)  # cached: vetted when parsed
                else:
                    keyword = normalize(keyword)
                for kind in rule.triggers:
                    self._index[kind].add(rank, rule, keyword, pattern, literal, anchored)
        for index in self._index.values():
            index.freeze()
        for reply in defaults.values():
            needed |= reply_needs(reply)
        self.placeholders_needed = frozenset(needed)
        # Decisions are immutable: build each once, not per message.
        self._decisions = {r.id: Decision(r.id, r.reply, r.needs) for r in rules}
        for name, reply in defaults.items():
            self._decisions[DEFAULT_IDS[name]] = Decision(DEFAULT_IDS[name], reply, reply_needs(reply))
        return self

    # -- asking

    def decide(self, trigger: Trigger, *, now: datetime, first_time: bool = False) -> Decision | None:
        """What to answer to ``trigger`` at ``now``, or None for nothing (see the module docstring)."""
        kind = trigger.kind
        index = self._index.get(kind)
        if index is None:
            return None
        value = normalize(trigger.value)
        rule = self._first_open(index, value, now) if value else None
        if rule is not None:
            return self._decisions[rule.id]
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
        regex_text = value[:REGEX_TEXT_LIMIT]
        for _, rule, pattern in cands:
            if rule.window is not None:
                if local is None:
                    local = local_time(now)
                if not rule.window.is_open_local(local):
                    continue
            if pattern is not None and pattern.search(regex_text) is None:
                continue
            return rule
        return None

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

    def to_doc(self) -> dict:
        """The canonical document (JSON-able): ``RuleSet.compile(rs.to_doc())`` gives the same rule set."""
        return json.loads(json.dumps(self._doc))

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"RuleSet(version={self.version!r}, app_id={self.app_id!r}, rules={len(self.rules)})"


def _keyword_matches(rule: Rule, keyword: str, value: str) -> bool:
    if rule.match == "regex":
        return vet_regex(keyword)[0].search(value[:REGEX_TEXT_LIMIT]) is not None
    keyword = normalize(keyword)
    return keyword == value if rule.match == "exact" else keyword in value


def content_version(body: Mapping) -> str:
    """A version derived from a document's content (stable across YAML formatting and key order)."""
    payload = {k: v for k, v in body.items() if k != "version"}
    raw = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:12]


# ------------------------------------------------------------------------------------------ parsing

_RULE_FIELDS = {"id", "match", "keywords", "priority", "triggers", "reply", "window", "apps", "note"}


def _no_unknown(raw: Mapping, allowed: set[str], path: str) -> None:
    for key in raw:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise RuleError(where, f"unknown field {key!r} (allowed: {', '.join(sorted(allowed))})")


def _str(raw: object, path: str, *, required: bool = True, max_len: int = 4096) -> str:
    if raw is None:
        if required:
            raise RuleError(path, "is required")
        return ""
    if not isinstance(raw, str):
        raise RuleError(path, f"must be a string, not {type(raw).__name__}")
    if required and not raw.strip():
        raise RuleError(path, "must not be empty")
    if len(raw) > max_len:
        raise RuleError(path, f"longer than {max_len} characters")
    return raw


def _app_id(raw: object, path: str) -> str:
    value = _str(raw, path, max_len=64)
    if not re.match(r"^[A-Za-z0-9_-]+$", value):
        raise RuleError(path, f"{value!r} is not an app id")
    return value


def _parse_rule(raw: object, i: int) -> Rule:
    base = f"rules[{i}]"
    if not isinstance(raw, Mapping):
        raise RuleError(base, "a rule is a mapping with id, match, keywords, priority, reply")
    _no_unknown(raw, _RULE_FIELDS, base)
    rule_id = _str(raw.get("id"), f"{base}.id", max_len=64)
    if not _ID_RE.match(rule_id):
        raise RuleError(f"{base}.id", "use letters, digits, _ . : - (at most 64, starting with a letter/digit)")

    match = raw.get("match", "exact")
    if match not in MATCH_MODES:
        raise RuleError(f"{base}.match", f"must be one of {', '.join(MATCH_MODES)}, not {match!r}")

    raw_keywords = raw.get("keywords")
    if isinstance(raw_keywords, str):
        raw_keywords = [raw_keywords]
    if not isinstance(raw_keywords, list) or not raw_keywords:
        raise RuleError(f"{base}.keywords", "one or more keywords are required")
    keywords: list[str] = []
    for k, kw in enumerate(raw_keywords):
        path = f"{base}.keywords[{k}]"
        if isinstance(kw, (int, float)) and not isinstance(kw, bool) and match != "regex":
            kw = str(kw)  # a scene id or click key written without quotes
        kw = _str(kw, path, max_len=REGEX_MAX_LEN if match == "regex" else KEYWORD_MAX_LEN)
        if match == "regex":
            try:
                vet_regex(kw)
            except ValueError as exc:
                raise RuleError(path, f"regex refused: {exc}") from None
        elif not normalize(kw):
            raise RuleError(path, "is empty after normalisation")
        keywords.append(kw)

    priority = raw.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool) or not -1_000_000 <= priority <= 1_000_000:
        raise RuleError(f"{base}.priority", "must be an integer between -1000000 and 1000000")

    raw_triggers = raw.get("triggers", ["text"])
    if isinstance(raw_triggers, str):
        raw_triggers = [raw_triggers]
    if not isinstance(raw_triggers, list) or not raw_triggers:
        raise RuleError(f"{base}.triggers", f"a non-empty list of {', '.join(TRIGGERS)}")
    for t, trig in enumerate(raw_triggers):
        if trig not in TRIGGERS:
            raise RuleError(f"{base}.triggers[{t}]", f"must be one of {', '.join(TRIGGERS)}, not {trig!r}")
    triggers = tuple(dict.fromkeys(raw_triggers))

    window = _parse_window(raw["window"], f"{base}.window") if raw.get("window") is not None else None

    apps: frozenset[str] = frozenset()
    if raw.get("apps") is not None:
        raw_apps = raw["apps"]
        if isinstance(raw_apps, str):
            raw_apps = [raw_apps]
        if not isinstance(raw_apps, list) or not raw_apps:
            raise RuleError(f"{base}.apps", "a non-empty list of app ids")
        apps = frozenset(_app_id(a, f"{base}.apps[{n}]") for n, a in enumerate(raw_apps))

    note = _str(raw.get("note"), f"{base}.note", required=False, max_len=1000)
    if "reply" not in raw:
        raise RuleError(f"{base}.reply", "is required")
    reply, reply_doc = _parse_reply(raw["reply"], f"{base}.reply")

    doc: dict[str, Any] = {"id": rule_id, "match": match, "keywords": keywords, "priority": priority,
                           "triggers": list(triggers)}
    if window is not None:
        doc["window"] = window.to_doc()
    if apps:
        doc["apps"] = sorted(apps)
    if note:
        doc["note"] = note
    doc["reply"] = reply_doc
    return Rule(id=rule_id, match=match, keywords=tuple(keywords), priority=priority, triggers=triggers,
                reply=reply, needs=reply_needs(reply), position=i, window=window, apps=apps, note=note, doc=doc)


def _parse_date(raw: object, path: str) -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            pass
    raise RuleError(path, f"must be a date like 2025-01-31, not {raw!r}")


def _parse_hours(raw: object, path: str) -> tuple[tuple[int, int], ...]:
    spans = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(spans, list) or not spans:
        raise RuleError(path, 'must be like "09:00-18:00" (or a list of such spans)')
    out = []
    for n, span in enumerate(spans):
        where = path if isinstance(raw, str) else f"{path}[{n}]"
        m = _HOURS_RE.match(span.strip()) if isinstance(span, str) else None
        if not m:
            raise RuleError(where, f'must be like "09:00-18:00", not {span!r}')
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
            raise RuleError(where, f"{span!r} is not a time of day")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if start == end:
            raise RuleError(where, f"{span!r} is empty; use 00:00-24:00 for the whole day")
        out.append((start, end))
    return tuple(out)


def _parse_window(raw: object, path: str) -> TimeWindow:
    if not isinstance(raw, Mapping):
        raise RuleError(path, "a mapping with dates, hours and/or weekdays")
    _no_unknown(raw, {"dates", "hours", "weekdays"}, path)
    date_from = date_to = None
    if raw.get("dates") is not None:
        dates = raw["dates"]
        if not isinstance(dates, Mapping) or not dates:
            raise RuleError(f"{path}.dates", "a mapping with from and/or to")
        _no_unknown(dates, {"from", "to"}, f"{path}.dates")
        if dates.get("from") is not None:
            date_from = _parse_date(dates["from"], f"{path}.dates.from")
        if dates.get("to") is not None:
            date_to = _parse_date(dates["to"], f"{path}.dates.to")
        if date_from and date_to and date_from > date_to:
            raise RuleError(f"{path}.dates", "from is after to")
    hours = _parse_hours(raw["hours"], f"{path}.hours") if raw.get("hours") is not None else ()
    weekdays: set[int] = set()
    if raw.get("weekdays") is not None:
        days = raw["weekdays"]
        if not isinstance(days, list) or not days:
            raise RuleError(f"{path}.weekdays", "a non-empty list like [mon, tue]")
        for n, day in enumerate(days):
            if isinstance(day, str) and day.strip().lower()[:3] in WEEKDAYS:
                weekdays.add(WEEKDAYS.index(day.strip().lower()[:3]) + 1)
            elif isinstance(day, int) and not isinstance(day, bool) and 1 <= day <= 7:
                weekdays.add(day)
            else:
                raise RuleError(f"{path}.weekdays[{n}]", f"must be mon..sun (or ISO 1..7), not {day!r}")
    if date_from is None and date_to is None and not hours and not weekdays:
        raise RuleError(path, "is empty")
    return TimeWindow(date_from, date_to, hours, frozenset(weekdays))


_REPLY_KINDS = ("text", "image", "voice", "video", "music", "news", "mp_card", "mp_link")


def _fields(raw: object, path: str, required: Iterable[str], optional: Iterable[str]) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise RuleError(path, f"a mapping with {', '.join(required)}")
    required, optional = list(required), list(optional)
    _no_unknown(raw, set(required) | set(optional), path)
    out = {}
    for name in required:
        out[name] = _str(raw.get(name), f"{path}.{name}")
    for name in optional:
        if raw.get(name) is not None:
            out[name] = _str(raw.get(name), f"{path}.{name}", required=False)
    for name, value in out.items():
        check_template(value, f"{path}.{name}")
    return out


def _check_url(value: str, path: str) -> None:
    if value and not value.startswith("{") and not re.match(r"^https?://", value):
        raise RuleError(path, "must start with http:// or https://")


def _check_text_size(content: str, path: str) -> None:
    static = _PLACEHOLDER_RE.sub("", content)
    size = len(static.encode("utf-8"))
    if size > TEXT_LIMIT_BYTES:
        raise RuleError(path, f"text is {size} bytes; WeChat's limit is about {TEXT_LIMIT_BYTES}")


def _parse_reply(raw: object, path: str) -> tuple[Reply, dict]:
    """A reply spec from YAML → (``Reply``, canonical spec)."""
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise RuleError(path, f"a mapping with exactly one of: {', '.join(_REPLY_KINDS)}")
    ((kind, body),) = raw.items()
    where = f"{path}.{kind}"
    if kind == "text":
        content = _str(body, where, max_len=8192)
        check_template(content, where)
        _check_text_size(content, where)
        return Reply(kind="text", content=content), {"text": content}
    if kind in ("image", "voice"):
        media_id = _str(body, where, max_len=256)
        return Reply(kind=kind, media_id=media_id), {kind: media_id}
    if kind == "video":
        f = _fields(body, where, ["media_id"], ["title", "description"])
        return Reply(kind="video", media_id=f["media_id"], title=f.get("title", ""),
                     description=f.get("description", "")), {"video": f}
    if kind == "music":
        f = _fields(body, where, ["thumb_media_id"], ["title", "description", "music_url", "hq_music_url"])
        for name in ("music_url", "hq_music_url"):
            _check_url(f.get(name, ""), f"{where}.{name}")
        return Reply(kind="music", thumb_media_id=f["thumb_media_id"], title=f.get("title", ""),
                     description=f.get("description", ""), music_url=f.get("music_url", ""),
                     hq_music_url=f.get("hq_music_url", "")), {"music": f}
    if kind == "news":
        if isinstance(body, list):
            if len(body) != 1:
                raise RuleError(where, "exactly one article per reply (WeChat refuses more)")
            body = body[0]
        f = _fields(body, where, ["title", "url"], ["description", "image"])
        _check_url(f["url"], f"{where}.url")
        _check_url(f.get("image", ""), f"{where}.image")
        article = Article(title=f["title"], description=f.get("description", ""), url=f["url"],
                          image=f.get("image", ""))
        return Reply(kind="news", articles=(article,)), {"news": f}
    if kind == "mp_card":
        f = _fields(body, where, ["title", "appid", "pagepath", "thumb_media_id"], ["text"])
        _app_id(f["appid"], f"{where}.appid")
        if "text" in f:
            _check_text_size(f["text"], f"{where}.text")
        return Reply(kind="mp_card", title=f["title"], appid=f["appid"], pagepath=f["pagepath"],
                     thumb_media_id=f["thumb_media_id"], content=f.get("text", "")), {"mp_card": f}
    if kind == "mp_link":
        if not isinstance(body, Mapping):
            raise RuleError(where, "a mapping with appid, path, label and optional text")
        _no_unknown(body, {"appid", "path", "label", "text"}, where)
        appid = _app_id(body.get("appid"), f"{where}.appid")
        page = _str(body.get("path"), f"{where}.path", max_len=1024)
        label = _str(body.get("label"), f"{where}.label", max_len=256)
        template = _str(body.get("text", "{link}"), f"{where}.text", max_len=8192)
        if "{link}" not in template:
            raise RuleError(f"{where}.text", "must contain {link} where the link goes")
        check_template(page, f"{where}.path")
        check_template(label, f"{where}.label")
        content = template.replace("{link}", mp_link(appid, page, label))
        check_template(content, f"{where}.text")
        _check_text_size(content, f"{where}.text")
        spec = {"appid": appid, "path": page, "label": label}
        if "text" in body:
            spec["text"] = template
        return Reply(kind="text", content=content), {"mp_link": spec}
    raise RuleError(path, f"unknown reply kind {kind!r} (one of: {', '.join(_REPLY_KINDS)})")


__all__ = [
    "Decision",
    "Rule",
    "RuleError",
    "RuleSet",
    "TimeWindow",
    "Trigger",
    "content_version",
    "cut_text",
    "local_time",
    "normalize",
    "render",
    "trigger_for",
    "vet_regex",
]
