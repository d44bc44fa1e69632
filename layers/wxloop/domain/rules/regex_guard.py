"""Regex guard: a user-supplied pattern must not be able to stall the webhook (see the README).

A pattern is refused when it is longer than ``REGEX_MAX_LEN``, does not compile, uses back-references, nests
a variable quantifier inside a repeated group, matches empty text, or when its worst case is over
``REGEX_COST_LIMIT``, counted from the pattern alone (``_CostModel``) in matcher steps of one search on
``REGEX_TEXT_LIMIT`` characters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from operator import add
from typing import NamedTuple

from wxloop.domain.rules.model import REGEX_MAX_LEN, REGEX_TEXT_LIMIT

# Regex work, in worst-case matcher steps of one search on a REGEX_TEXT_LIMIT-character text (``_CostModel``;
# measured, one step takes 1 to 25 ns on CPython 3.13).
REGEX_COST_LIMIT = 4_000_000  # one regex (quadratic shapes pass, cubic and exponential ones do not)
REGEX_SET_COST_LIMIT = 4_000_000  # all regexes of a set with no required literal (tried on every text)
REGEX_MESSAGE_COST_LIMIT = 8_000_000  # regexes tried for one message, each costed for that text's length

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

