"""Operator regexes, matched in linear time by RE2 (``google-re2``), all of a set in one pass.

Python's ``re`` backtracks: a pattern can take seconds on one message, and no model of its worst case is
ever complete. RE2 decides in time linear in the text for any pattern it accepts, so nothing is estimated:
a pattern is refused only when RE2 cannot express it (back-references, lookahead/lookbehind, possessive
repeats, atomic groups, ``\\C``), when it is longer than ``REGEX_MAX_LEN``, when it matches empty text or any
letter, digit or Han character mixed (``.``, ``\\b``, ``\\w``), when its compiled program is too large (``REGEX_PROGRAM_LIMIT`` for one,
``REGEX_SET_PROGRAM_LIMIT`` for all of a set), when a counted repeat names more than ``MAX_REPEAT``, or
when it makes the matcher track too much history (``regex_width``: ``REGEX_WIDTH_LIMIT`` for one,
``REGEX_SET_WIDTH_LIMIT`` for a set). Linear time alone is not enough: the work per character grows with
the live states, which the width bounds, so a hostile text's time stays within budget.

Semantics differ from Python's ``re`` in ways an operator may notice (the text is normalised first, see
``model.normalize``): matching is case-insensitive (Unicode simple case folding); ``\\d``, ``\\w``, ``\\s``
and ``\\b`` are ASCII only (full-width digits and letters are already half-width after NFKC), so use
``\\p{Han}``, ``\\pL`` or ``\\pN`` for other scripts; ``\\uXXXX`` is accepted and read as RE2's ``\\x{XXXX}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from wxloop.domain.rules.model import REGEX_MAX_LEN
from wxloop.domain.rules.regex_width import regex_width

REGEX_PROGRAM_LIMIT = 2_000  # RE2 instructions of one regex (a 200-character pattern is ~10 to 900)
REGEX_SET_PROGRAM_LIMIT = 20_000  # all regexes of a set together: the one-pass match stays within 5 ms
REGEX_WIDTH_LIMIT = 32  # characters of history one regex may make RE2 track (``regex_width``)
REGEX_SET_WIDTH_LIMIT = 384  # ... and all regexes of a set together: a hostile text stays within 5 ms
_SET_MAX_MEM = 64 << 20  # RE2's memory budget for the set's program and DFA cache
# Python-style escapes written in YAML (\u4e00) read as RE2's \x{4e00}; an escaped backslash stays as is.
_PY_ESCAPE_RE = re.compile(r"\\(\\|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8}))")
# RE2's parse errors for what Python has and RE2 does not, with what to tell the operator.
_UNSUPPORTED = (
    ("(?=", "lookahead (?=…) is not supported (RE2 matches in linear time)"),
    ("(?!", "negative lookahead (?!…) is not supported (RE2 matches in linear time)"),
    ("(?<=", "lookbehind (?<=…) is not supported (RE2 matches in linear time)"),
    ("(?<!", "negative lookbehind (?<!…) is not supported (RE2 matches in linear time)"),
    ("(?>", "atomic groups (?>…) are not supported (RE2 never backtracks, so they are not needed)"),
    ("bad repetition operator", "possessive or doubled repeats (a++, a*+) are not supported; use a+"),
)
# Short texts mixing a letter, a digit and a Han character: a regex matching all of them (., \b, \w, \pL)
# answers nearly every message; an anchored one (^\w+$) does not.
_ANY_TEXT_PROBES = ("a 5", "好 a", "5 好")
_BACKREF_RE = re.compile(r"(?<!\\)(?:\\\\)*\\(?:[1-9]|g<|k<)|\(\?P=")


@lru_cache(maxsize=1)
def _re2() -> Any:
    """The RE2 module, imported on first use: a rule set without regexes never pays its import at start."""
    import re2

    return re2


def _options(max_mem: int | None = None) -> Any:
    options = _re2().Options()
    options.case_sensitive = False
    options.never_capture = True
    options.log_errors = False
    if max_mem is not None:
        options.max_mem = max_mem
    return options


@lru_cache(maxsize=1)
def _default_options() -> Any:
    return _options()


class VettedRegex(NamedTuple):
    """A user pattern RE2 accepted: ``source`` as RE2 reads it, ``regex`` compiled, ``size`` its program,
    ``width`` the history it makes the matcher track (``regex_width``)."""

    source: str
    regex: Any  # re2._Regexp
    size: int
    width: int = 0

    def search(self, text: str) -> bool:
        return self.regex.search(text) is not None


def to_re2_syntax(pattern: str) -> str:
    """``pattern`` with Python's ``\\uXXXX``/``\\UXXXXXXXX`` escapes written as RE2's ``\\x{…}``."""

    def sub(m: re.Match[str]) -> str:
        if m.group(1) == "\\":
            return "\\\\"
        return "\\x{" + str(m.group(2) or m.group(3)) + "}"

    return _PY_ESCAPE_RE.sub(sub, pattern) if "\\" in pattern else pattern


@lru_cache(maxsize=4096)
def vet_regex(pattern: str) -> VettedRegex:
    """Compile an operator's pattern with RE2, or raise ValueError saying why it is refused."""
    if not pattern or not pattern.strip():
        raise ValueError("empty pattern")
    if len(pattern) > REGEX_MAX_LEN:
        raise ValueError(f"pattern longer than {REGEX_MAX_LEN} characters")
    source = to_re2_syntax(pattern)
    if _BACKREF_RE.search(source):
        raise ValueError("back-references (\\1, (?P=name)) are not supported (RE2 matches in linear time)")
    if re.search(r"(?<!\\)(?:\\\\)*\\C", source):
        raise ValueError("\\C (any byte) is not allowed: it can split a character")
    try:
        regex = _re2().compile(source, _default_options())
    except _re2().error as exc:
        raise ValueError(_explain(exc)) from None
    if regex.programsize > REGEX_PROGRAM_LIMIT:
        raise ValueError(f"too large: {regex.programsize} RE2 instructions (limit {REGEX_PROGRAM_LIMIT}); "
                         "use smaller counts ({1,20} rather than {1,500}) or fewer \\pL-style classes")
    if regex.search("") is not None:
        raise ValueError("matches empty text, so it would answer every message (use defaults.reply)")
    if all(regex.search(probe) is not None for probe in _ANY_TEXT_PROBES):
        raise ValueError("matches any one character (like ., \\b or \\w), so it answers nearly every message "
                         "(use defaults.reply)")
    try:
        width = regex_width(source)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    if width > REGEX_WIDTH_LIMIT:
        raise ValueError(f"tracks {width} characters of history (limit {REGEX_WIDTH_LIMIT}): a run of "
                         "., classes or counted repeats that long makes each character cost more; shorten "
                         "it or use .* / + instead of counts")
    return VettedRegex(source, regex, regex.programsize, width)


def _explain(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else exc
    message = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    for needle, why in _UNSUPPORTED:
        if needle in message:
            return why
    if "pattern too large" in message:
        return "too large for RE2 (use smaller counts)"
    return f"does not compile: {message}"


class RegexSet:
    """Several vetted regexes decided in one pass over a text (an RE2 set); identical patterns share a slot."""

    __slots__ = ("_set", "_members", "_match_bytes")

    def __init__(self, patterns: Sequence[str]) -> None:
        """Raises ValueError when RE2 cannot build the set within its memory budget."""
        slot_of: dict[str, int] = {}
        self._members: list[list[int]] = []  # slot -> indices in ``patterns``
        rset = _re2().Set.SearchSet(_options(_SET_MAX_MEM))
        for i, pattern in enumerate(patterns):
            source = vet_regex(pattern).source
            if source not in slot_of:
                slot_of[source] = rset.Add(source)
                self._members.append([])
            self._members[slot_of[source]].append(i)
        try:
            rset.Compile()
        except _re2().error:
            raise ValueError("the regexes together are too large for one pass (RE2's memory budget)") from None
        self._set = rset
        # The wrapper's Match only encodes str to UTF-8 first; calling the extension directly saves ~2 µs a message.
        self._match_bytes = getattr(getattr(rset, "_set", None), "Match", None)

    def matching(self, text: str) -> list[int]:
        """Indices (in the patterns given) of the regexes that match somewhere in ``text``."""
        raw = text.encode("utf-8", "replace")  # a lone surrogate becomes "?" rather than an exception
        found = self._match_bytes(raw) if self._match_bytes else self._set.Match(raw.decode())
        if not found:
            return []
        return [i for slot in found for i in self._members[slot]]
