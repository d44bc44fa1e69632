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

Regex guard: a user-supplied pattern must not be able to stall the webhook (WeChat gives it 5 s in all), and
no verdict depends on the machine or its load: nothing is timed. At compile time a pattern is refused when it
is longer than ``REGEX_MAX_LEN``, does not compile, uses back-references, nests a variable quantifier inside
a repeated group (``(a+)+``, ``(.*)*``, ``(\\w+\\s?)*``), matches empty text, or when its worst case is over
``REGEX_COST_LIMIT`` (4e6). The worst case is counted from the pattern alone (``_CostModel``), in matcher
steps of one search on ``REGEX_TEXT_LIMIT`` characters. Any unanchored pattern with a repeat is quadratic by
search alone and passes (``[a-z]+\\d+x`` 1.1e6, ``\\w+@\\w+\\.com`` 1.1e6); repeats that can take the same
characters one after another are cubic and do not (``\\d+\\s*\\d+x`` 2.7e8, ``a.*b.*c`` 4.1e8), nor do
alternatives in a repeat that can begin alike (``(a|aa)+``, exponential). Totals are bounded as well:
  - a set holds at most ``MAX_REGEXES`` (500) regexes: vetting one takes 0.1 to 0.6 ms, so a 5,000-rule set
    with 500 costly regexes compiles in 0.35 to 0.5 s;
  - regexes with no required literal are tried on every text, so their worst cases may add up to
    ``REGEX_SET_COST_LIMIT`` (4e6) per set; past that the set is refused, naming the regex that crosses it
    (about seven of the ``[a-z]+\\d{1,9}$`` kind, 5.4e5 each; anchored with ``^`` one costs about 1.6e3);
  - one message may spend ``REGEX_MESSAGE_COST_LIMIT`` (8e6) steps, each regex costed for the length of that
    text; a regex that no longer fits is skipped as if it did not match. Only a text holding the literals of
    many costly regexes gets there; ordinary messages are short and each regex then costs little.
One step took 1 to 25 ns in measurements (CPython 3.13), so regexes add at most about 0.2 s to one message;
a hostile 2,048-byte text against the worst accepted set decides in 50 to 100 ms. At match time regexes only
see the first ``REGEX_TEXT_LIMIT`` characters.

Matching cost does not grow with the number of rules: exact keywords are a dict lookup; ``contains`` keywords,
and a literal every match of a regex must contain, are grouped by first character and tested with ``in`` only
for the characters present in the text; only regexes without such a literal are tried on every text.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from operator import add, itemgetter
from typing import Any, NamedTuple
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
MAX_REGEXES = 500  # regex keywords in one set: vetting one takes 0.1 to 0.6 ms, so compiling stays < 1 s
# Regex work, in worst-case matcher steps of one search on a REGEX_TEXT_LIMIT-character text (``_CostModel``;
# measured, one step takes 1 to 25 ns on CPython 3.13). See "Regex guard" in the module docstring.
REGEX_COST_LIMIT = 4_000_000  # one regex (quadratic shapes pass, cubic and exponential ones do not)
REGEX_SET_COST_LIMIT = 4_000_000  # all regexes of a set with no required literal (tried on every text)
REGEX_MESSAGE_COST_LIMIT = 8_000_000  # regexes tried for one message, each costed for that text's length
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


# Worst-case cost model. A backtracking search is only slow when it has many ways to try. A repeat whose
# characters can also begin what follows it (``\w+a``, ``.*x``, ``\d+\s*\d+``) may give back any number of
# characters and retry the rest from each point; alternatives inside a repeat that can match the same text
# (``(a|aa)+``) multiply the ways at every repetition. ``_CostModel`` walks the parsed pattern and bounds the
# matcher steps of one search on a text of n characters:
#   - a character or an assertion: 1 step, then the rest;
#   - a repeat of up to m items: m steps to scan; then the rest once when its items cannot begin what follows
#     (every shorter try fails on its first character), else the rest once per count it may give back;
#   - alternatives: each one, each followed by the rest;
#   - a repeated group with alternatives that can begin alike: the ways it can match, to the power of its
#     repetitions (this is what makes (a|aa)+ exponential);
#   - a search: n + 1 start positions, or one when the pattern begins with ^ or \A.
# "Can begin alike" is decided exactly (on the Basic Multilingual Plane): two character sets share a
# character iff they share one at a point where one of them begins, and all such points are tried.
# The bound is deterministic: it depends on the pattern only, never on the machine or its load.

_COST_CAP = 1 << 62
_COST_SIZES = (16, 32, 64, 128, 256, REGEX_TEXT_LIMIT)  # text lengths a regex's cost is given for


def _cost_bucket(length: int) -> int:
    """The index in ``_COST_SIZES`` of the smallest size >= ``length`` (``length`` <= REGEX_TEXT_LIMIT)."""
    return max(0, (length - 1).bit_length() - 4)


class VettedRegex(NamedTuple):
    """A user pattern that passed the guard."""

    pattern: re.Pattern
    literal: str  # a literal every match contains (casefolded), or ""
    anchored: bool  # it can only match at the start of the text
    costs: tuple[int, ...]  # worst-case matcher steps of one search, texts of up to _COST_SIZES characters

    @property
    def cost(self) -> int:
        """Worst-case steps on a ``REGEX_TEXT_LIMIT``-character text."""
        return self.costs[-1]


@dataclass(frozen=True, slots=True)
class _Chars:
    """The set of characters a one-character item takes: code-point ranges and \\d \\s \\w classes (each
    possibly negated), the whole possibly negated. Matching is case-insensitive."""

    ranges: tuple[tuple[int, int], ...]
    classes: tuple[tuple[str, bool], ...] = ()  # ("d" | "s" | "w", negated)
    negate: bool = False

    def has(self, ch: str) -> bool:
        lower, upper = ch.lower(), ch.upper()
        for v in {ch, lower, upper, ch.casefold(), lower.upper(), upper.lower()}:
            if len(v) != 1:
                continue
            code = ord(v)
            hit = any(lo <= code <= hi for lo, hi in self.ranges) or any(
                _CLASS_TEST[name](v) != negated for name, negated in self.classes)
            if hit != self.negate:
                return True
        return False

    def points(self) -> list[int]:
        """Where the set (or its complement) may begin, besides where its classes begin and end."""
        out = [0]
        for lo, hi in self.ranges:
            out += (lo, hi + 1)
        return out


_ANY = _Chars((), (), True)
_CLASS_TEST = {"d": str.isdecimal, "s": str.isspace, "w": lambda ch: ch.isalnum() or ch == "_"}


def _chars(op, av, c) -> _Chars | None:
    """The character set of a one-character item (None for anything else)."""
    if op is c.LITERAL or op is c.NOT_LITERAL or op is c.IN:
        return _chars_of(op, tuple(av) if op is c.IN else av, c)
    return _ANY if op is c.ANY else None


@lru_cache(maxsize=8192)
def _chars_of(op, av, c) -> _Chars:
    if op is c.LITERAL:
        return _Chars(((av, av),))
    if op is c.NOT_LITERAL:
        return _Chars(((av, av),), (), True)
    named = {c.CATEGORY_DIGIT: ("d", False), c.CATEGORY_NOT_DIGIT: ("d", True), c.CATEGORY_SPACE: ("s", False),
             c.CATEGORY_NOT_SPACE: ("s", True), c.CATEGORY_WORD: ("w", False), c.CATEGORY_NOT_WORD: ("w", True)}
    ranges: list[tuple[int, int]] = []
    classes: list[tuple[str, bool]] = []
    negate = False
    for iop, iav in av:
        if iop is c.NEGATE:
            negate = True
        elif iop is c.LITERAL:
            ranges.append((iav, iav))
        elif iop is c.RANGE:
            ranges.append(iav)
        elif iop is c.CATEGORY and iav in named:
            classes.append(named[iav])
        else:
            return _ANY
    return _Chars(tuple(ranges), tuple(classes), negate)


@lru_cache(maxsize=4)
def _class_points(name: str) -> tuple[int, ...]:
    """Where the \\d, \\s or \\w set begins and ends on the Basic Multilingual Plane (computed once)."""
    bmp = "".join(map(chr, range(0x10000)))
    return tuple(p for m in re.finditer(f"\\{name}+", bmp) for p in m.span())


@lru_cache(maxsize=4096)
def _overlap(a: _Chars, b: _Chars) -> bool:
    """Whether a character is in both sets. Exact on the Basic Multilingual Plane: if the sets meet, their
    smallest common character is where one of them begins, and every such point (with its case variants)
    is tried."""
    if a is _ANY or b is _ANY:
        return True
    points = [*a.points(), *b.points()]
    bounded = [x for x in (a, b) if not x.negate and not x.classes]
    low, high = (min(lo for lo, _ in bounded[0].ranges), max(hi for _, hi in bounded[0].ranges)) if bounded \
        else (0, 0x10FFFF)
    for name in dict.fromkeys(name for name, _ in a.classes + b.classes):
        points += (p for p in _class_points(name) if low <= p <= high + 1)
    for p in dict.fromkeys(points):
        if 0 <= p <= 0x10FFFF:
            ch = chr(p)
            for v in {ch, ch.lower(), ch.upper()}:
                if len(v) == 1 and a.has(v) and b.has(v):
                    return True
    return False


def _clash(x: tuple, y: tuple) -> bool:
    """Whether two (first characters, may end) pairs can begin alike."""
    return (x[1] and y[1]) or any(_overlap(a, b) for a in x[0] for b in y[0])


def _then(first: tuple, nullable: bool, follow: tuple) -> tuple:
    return (first + follow[0], follow[1]) if nullable else (first, False)


class _Rest(NamedTuple):
    """What is left to match after some point: its worst-case cost, and its cost when the text ahead is made
    of one character set (``narrowed``; the rest then stops at the first item that cannot take those)."""

    cost: tuple[int, ...]
    narrowed: Callable[[_Chars], tuple[int, ...]]


def _vec(k: int) -> tuple[int, ...]:
    return (k,) * len(_COST_SIZES)


def _add(x: tuple, y: tuple) -> tuple:
    return tuple(map(add, x, y))  # sums of capped terms stay small enough; products are capped


def _mul(x: tuple, y: tuple) -> tuple:
    return tuple(min(_COST_CAP, a * b) for a, b in zip(x, y, strict=True))


_ONE = _vec(1)
_END_REST = _Rest(_ONE, lambda chars: _ONE)  # the end of the pattern: a match
_DONE = ((), True)  # what follows the whole pattern: nothing, the match may end


class _CostModel:
    """Bounds the steps of one search (see the comment above); costs are tuples, one per ``_COST_SIZES``."""

    def __init__(self, c) -> None:
        self.c = c
        self.repeats = (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT)
        self.exponential = False

    def search(self, tree, anchored: bool) -> tuple[int, ...]:
        once = self._seq(tree, _END_REST, _DONE).cost
        if anchored:
            return _add(once, _COST_SIZES)
        return _mul(once, tuple(n + 1 for n in _COST_SIZES))

    def _first(self, items) -> tuple[tuple, bool]:
        """The sets a match of ``items`` can begin with, and whether it can be empty."""
        out: tuple = ()
        for op, av in items:
            first, nullable = self._first_item(op, av)
            out += first
            if not nullable:
                return out, False
        return out, True

    def _first_item(self, op, av) -> tuple[tuple, bool]:
        c = self.c
        chars = _chars(op, av, c)
        if chars is not None:
            return (chars,), False
        if op is c.SUBPATTERN:
            return self._first(av[-1])
        if op is c.ATOMIC_GROUP:
            return self._first(av)
        if op is c.BRANCH:
            out: tuple = ()
            nullable = False
            for branch in av[1]:
                first, empty = self._first(branch)
                out += first
                nullable = nullable or empty
            return out, nullable
        if op in self.repeats:
            first, nullable = self._first(av[2])
            return first, nullable or av[0] == 0
        return (), True  # ^, $, \b, lookarounds: consume nothing

    def _seq(self, items, rest: _Rest, follow: tuple) -> _Rest:
        for op, av in reversed(getattr(items, "data", items)):
            rest = self._item(op, av, rest, follow)
            follow = _then(*self._first_item(op, av), follow)
        return rest

    def _item(self, op, av, rest: _Rest, follow: tuple) -> _Rest:
        c = self.c
        chars = _chars(op, av, c)
        if chars is not None:
            cost = _add(rest.cost, _ONE)
            return _Rest(cost, lambda ahead: cost if _overlap(chars, ahead) else _ONE)
        if op is c.AT:
            return _Rest(_add(rest.cost, _ONE), lambda ahead: _add(rest.narrowed(ahead), _ONE))
        if op in (c.ASSERT, c.ASSERT_NOT):
            inner = _add(self._seq(av[1], _END_REST, _DONE).cost, _ONE)
            return _Rest(_add(inner, rest.cost), lambda ahead: _add(inner, rest.narrowed(ahead)))
        if op is c.SUBPATTERN:
            return self._seq(av[-1], rest, follow)
        if op is c.ATOMIC_GROUP:
            cost = _add(self._seq(av, _END_REST, _DONE).cost, rest.cost)
            return _Rest(cost, lambda ahead: cost)
        if op is c.BRANCH:
            branches = [self._seq(branch, rest, follow) for branch in av[1]]
            cost = _vec(0)
            for b in branches:
                cost = _add(cost, _add(b.cost, _ONE))

            def narrowed(ahead: _Chars) -> tuple[int, ...]:
                total = _vec(0)
                for b in branches:
                    total = _add(total, _add(b.narrowed(ahead), _ONE))
                return total

            return _Rest(cost, narrowed)
        if op in self.repeats:
            return self._repeat(op, av, rest, follow)
        cost = _mul(rest.cost, tuple(n + 1 for n in _COST_SIZES))  # not expected after the guard: the worst
        return _Rest(cost, lambda ahead: cost)

    def _repeat(self, op, av, rest: _Rest, follow: tuple) -> _Rest:
        c = self.c
        lo, hi, sub = av
        chars = _chars(*sub[0], c) if len(sub) == 1 else None
        if chars is None and hi == 1:  # an optional group: the rest after it, then without it
            with_it = self._seq(sub, rest, follow)
            if lo:
                return with_it
            cost = _add(_add(with_it.cost, rest.cost), _ONE)
            return _Rest(cost, lambda ahead: _add(_add(with_it.narrowed(ahead), rest.narrowed(ahead)), _ONE))
        first, _ = self._first(sub)
        width = max(1, sub.getwidth()[0])
        once = _ONE if chars is not None else self._seq(sub, _END_REST, _DONE).cost
        most = tuple(min(hi, n // width) for n in _COST_SIZES)
        scan = _mul(most, once)
        choices = tuple(m - min(lo, m) + 1 for m in most)
        if op is c.POSSESSIVE_REPEAT:  # never gives back
            cost = _add(scan, rest.cost)
        elif chars is None and (ways := self._ways(sub, (first + follow[0], follow[1]))) > 1:
            # a tree of up to ways**m paths (at most twice as many attempts at the body), each then the rest
            self.exponential = True
            paths = tuple(min(_COST_CAP, ways ** min(m, 64)) for m in most)
            cost = _add(scan, _mul(paths, _add(_add(once, once), rest.cost)))
        elif not any(_overlap(a, b) for a in first for b in follow[0]):
            # every shorter try fails on the first character after it
            cost = _add(_add(scan, choices), rest.cost)
        elif chars is not None:
            # each count it gives back retries the rest on a text that begins with characters it took
            cost = _add(_add(scan, _mul(choices, rest.narrowed(chars))), rest.cost)
        else:
            cost = _add(scan, _mul(choices, rest.cost))
        if chars is None:
            return _Rest(cost, lambda ahead: cost)

        def narrowed(ahead: _Chars) -> tuple[int, ...]:
            if _overlap(chars, ahead):
                return cost
            return _add(rest.narrowed(ahead), _ONE) if lo == 0 else _ONE  # takes nothing here

        return _Rest(cost, narrowed)

    def _ways(self, items, follow: tuple) -> int:
        """How many ways ``items`` can match at one place (1 when the next character decides every choice)."""
        total = 1
        for i, (op, av) in enumerate(items):
            after = _then(*self._first(items[i + 1:]), follow)
            total = min(_COST_CAP, total * self._ways_item(op, av, after))
        return total

    def _ways_item(self, op, av, follow: tuple) -> int:
        c = self.c
        if op is c.SUBPATTERN:
            return self._ways(av[-1], follow)
        if op is c.BRANCH:
            branches = av[1]
            starts = [_then(*self._first(b), follow) for b in branches]
            counts = [self._ways(b, follow) for b in branches]
            alike = any(_clash(starts[i], starts[j]) for i in range(len(starts)) for j in range(i))
            return min(_COST_CAP, sum(counts)) if alike else max(counts)
        if op in (c.MAX_REPEAT, c.MIN_REPEAT):
            lo, hi, sub = av
            inner = self._ways(sub, _then(*self._first(sub), follow))
            if lo == hi:
                return min(_COST_CAP, inner ** min(lo, 64))
            return min(_COST_CAP, (min(hi, REGEX_TEXT_LIMIT) - lo + 1) * inner ** min(hi, 64))
        return 1


@lru_cache(maxsize=4096)
def vet_regex(pattern: str) -> VettedRegex:
    """Compile a user pattern after the guard checks (see the module docstring).

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
    anchored = bool(tree) and tree[0][0] is c.AT and tree[0][1] in (c.AT_BEGINNING, c.AT_BEGINNING_STRING)
    model = _CostModel(c)
    costs = model.search(tree, anchored)
    if costs[-1] > REGEX_COST_LIMIT:
        if model.exponential:
            raise ValueError("too slow: alternatives inside a repeat can begin alike, so the ways to try multiply "
                             "with every repetition (make them differ at the start, or use separate keywords)")
        raise ValueError(f"too slow in the worst case: about {costs[-1]:.1e} matching steps on a "
                         f"{REGEX_TEXT_LIMIT}-character text (limit {REGEX_COST_LIMIT:.0e}): neighbouring repeats "
                         "that can take the same characters retry each other (anchor it with ^, bound the counts, "
                         "or make neighbouring repeats take different characters)")
    return VettedRegex(rx, _required_literal(tree, c), anchored, costs)


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

    def add(self, rank: int, rule: Rule, keyword: str, vetted: VettedRegex | None) -> None:
        if vetted is None:
            entry = (rank, rule, None, None)
        else:
            entry = (rank, rule, vetted.pattern, vetted.costs)
        if rule.match == "exact":
            self.exact.setdefault(keyword, []).append(entry)
        elif rule.match == "contains":
            self.needles.setdefault(keyword, []).append(entry)
        elif vetted is not None and vetted.literal:
            self.needles.setdefault(vetted.literal, []).append(entry)
        else:
            self.always.append(entry)
            self._anchored.append(vetted is not None and vetted.anchored)

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
            self.anchored_union = _anchored_union([p for _, _, p, _ in self.always])
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
        regex_count = 0
        literal_free_cost = 0  # worst case of the regexes tried on every text
        for i, raw in enumerate(raw_rules):
            rule = _parse_rule(raw, i, regex_room=MAX_REGEXES - regex_count)
            if rule.id in seen_ids:
                raise RuleError(f"rules[{i}].id", f"duplicate id {rule.id!r} (also rules[{seen_ids[rule.id]}])")
            seen_ids[rule.id] = i
            rules.append(rule)
            if rule.match != "regex":
                continue
            regex_count += len(rule.keywords)
            for k, keyword in enumerate(rule.keywords):
                vetted = vet_regex(keyword)
                if vetted.literal:
                    continue
                literal_free_cost += vetted.cost
                if literal_free_cost > REGEX_SET_COST_LIMIT:
                    raise RuleError(
                        f"rules[{i}].keywords[{k}]",
                        f"regex refused: it contains no literal, so it is tried on every message, and with it such "
                        f"regexes would cost about {literal_free_cost:.1e} matching steps per message in the worst "
                        f"case (this one {vetted.cost:.1e}; limit {REGEX_SET_COST_LIMIT:.0e} for the set): anchor it "
                        "with ^, give it a word it must contain, or use fewer such regexes",
                    )

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
                vetted = None
                if rule.match == "regex":
                    vetted = vet_regex(keyword)  # cached: vetted when parsed
                else:
                    keyword = normalize(keyword)
                for kind in rule.triggers:
                    self._index[kind].add(rank, rule, keyword, vetted)
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
        budget = REGEX_MESSAGE_COST_LIMIT
        size = _cost_bucket(len(regex_text))
        for _, rule, pattern, costs in cands:
            if rule.window is not None:
                if local is None:
                    local = local_time(now)
                if not rule.window.is_open_local(local):
                    continue
            if pattern is not None:
                cost = costs[size]
                if cost > budget:  # this message's regex work is spent: counts as no match
                    continue
                budget -= cost
                if pattern.search(regex_text) is None:
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
        return vet_regex(keyword).pattern.search(value[:REGEX_TEXT_LIMIT]) is not None
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


def _parse_rule(raw: object, i: int, *, regex_room: int = MAX_REGEXES) -> Rule:
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
            if k >= regex_room:
                raise RuleError(path, f"regex refused: a set holds at most {MAX_REGEXES} regexes")
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
