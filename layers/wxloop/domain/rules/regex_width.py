"""How much history an RE2 pattern can make the matcher remember: the bound on a hostile text's cost.

RE2 is linear in the text, but the work per character grows with the number of NFA states live at once,
and the set's DFA only stays fast while the states a text visits fit its cache. A run of broad atoms
(``.``, ``[ab]``, ``\\w``, ``\\pL``) with counted repeats (``a[ab]{180}c``, ``.{0,60}``) makes the live set
a window of the last N characters: on random text nearly every character is then a new DFA state, built
from every live NFA state. Instruction counts do not see this (``a[ab]{180}c`` is small), so the width of
that window is counted here, from the pattern's text, and bounded (written for wxloop: RE2 exposes no
measure of it).

``width`` = the sum over broad atoms of the most times each may repeat (``{n,m}`` → m, ``{n,}`` → n + 1,
``*``/``+``/``?`` → 1), a group's repeat multiplying the width inside it. Alternatives are added, not
maxed: an over-estimate is safe.
"""

from __future__ import annotations

import re

MAX_REPEAT = 16  # the largest count a counted repeat may name ({1,16}); use * or + for "any number"
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")
_BROAD_ESCAPES = set("dDwWsSpPCbB")  # \b, \B are zero-width: counted (cheaply) as broad to keep it simple


def _quantifier(source: str, i: int) -> tuple[int, int]:
    """(the most repeats the quantifier at ``source[i]`` allows, its length); (1, 0) when there is none."""
    if i >= len(source):
        return 1, 0
    ch = source[i]
    if ch in "*+?":
        n = 1 + (i + 1 < len(source) and source[i + 1] == "?")
        return 1, n
    if ch == "{":
        m = _REPEAT.match(source, i)
        if m:
            low, comma, high = int(m.group(1)), m.group(2), m.group(3)
            named = max(low, int(high) if high else 0)
            if named > MAX_REPEAT:
                raise ValueError(f"a counted repeat of {named} (at most {MAX_REPEAT}: each one multiplies what "
                                 "RE2 must track per character; use * or + for many)")
            most = low + 1 if comma and not high else int(high) if high else low
            end = m.end() + (m.end() < len(source) and source[m.end()] == "?")
            return most, end - i
    return 1, 0


def _atom_end(source: str, i: int) -> tuple[int, bool]:
    """(index after the atom starting at ``source[i]``, whether it is broad); groups are handled by the caller."""
    ch = source[i]
    if ch == "\\":
        nxt = source[i + 1] if i + 1 < len(source) else ""
        if nxt in "pP" and i + 2 < len(source) and source[i + 2] == "{":
            return source.index("}", i) + 1, True
        if nxt == "x" and i + 2 < len(source) and source[i + 2] == "{":
            return source.index("}", i) + 1, False
        if nxt == "Q":
            end = source.find("\\E", i)
            return (len(source) if end < 0 else end + 2), False
        return i + 2 + (nxt in "pP"), nxt in _BROAD_ESCAPES
    if ch == "[":
        j = i + 1 + (source[i + 1 : i + 2] == "^")
        j += source[j : j + 1] == "]"  # a leading ] is a literal
        while j < len(source) and source[j] != "]":
            j += 2 if source[j] == "\\" else (source.index(":]", j) + 2 if source.startswith("[:", j) else 1)
        return j + 1, True
    return i + 1, ch == "."


def regex_width(source: str) -> int:
    """The window width of ``source`` (RE2 syntax, already accepted by RE2); raises ValueError for a
    counted repeat over :data:`MAX_REPEAT`."""
    stack: list[int] = [0]
    i = 0
    while i < len(source):
        ch = source[i]
        if ch == "(":
            stack.append(0)
            i += 1
            if source.startswith("?", i):  # (?:, (?i), (?P<name>: flags and names are no atoms
                close = min((k for k in (source.find(":", i), source.find(")", i)) if k >= 0), default=i)
                i = close + (source[close] == ":")
            continue
        if ch == ")":
            inner = stack.pop() if len(stack) > 1 else 0
            most, length = _quantifier(source, i + 1)
            stack[-1] += inner * most
            i += 1 + length
            continue
        if ch in "|^$":
            i += 1
            continue
        end, broad = _atom_end(source, i)
        most, length = _quantifier(source, end)
        stack[-1] += most if broad else 0
        i = end + length
    return sum(stack)
