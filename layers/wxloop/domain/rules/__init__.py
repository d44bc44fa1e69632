"""The keyword rule engine: what the Official Account answers to a text, a menu click or a QR scene.

Pure domain code: a rule-set document (a dict, usually loaded from YAML by ``wxloop.rulesfile``) is compiled
once per version with :meth:`RuleSet.compile`; the webhook then asks :meth:`RuleSet.decide` what to answer
and fills the reply's ``{placeholders}`` with :func:`render`.

A rule listens to ``triggers`` (default ``[text]``) and matches with ``match``: ``exact``, ``contains`` or
``regex``. Values and keywords are normalised the same way first (:func:`normalize`: NFKC, so full-width
becomes half-width, casefold, trim, collapse inner whitespace).

Modules, one concept each:
  - ``model``        triggers, normalisation, ``Rule``, ``Decision`` and the limits;
  - ``parse``        a document → validated rules and defaults (``fields`` and ``reply_specs`` help it);
  - ``engine``       ``RuleSet``: compiling the index, precedence, deciding, explaining;
  - ``templates``    placeholders: checking and rendering;
  - ``windows``      time windows in Asia/Shanghai;
  - ``regexes``      operator regexes, matched by RE2 (linear time), one set per trigger;
  - ``regex_width``  the history a regex makes RE2 track (bounded, so a hostile text stays fast);
  - ``errors``       ``RuleError``.
"""

from wxloop.domain.rules.engine import RuleSet, content_version
from wxloop.domain.rules.errors import RuleError
from wxloop.domain.rules.model import (
    DEFAULT_IDS,
    KEYWORD_MAX_LEN,
    MATCH_MODES,
    MAX_REGEXES,
    MAX_RULES,
    REGEX_MAX_LEN,
    REGEX_TEXT_LIMIT,
    TRIGGERS,
    Decision,
    Rule,
    Trigger,
    normalize,
    trigger_for,
)
from wxloop.domain.rules.regexes import (
    REGEX_PROGRAM_LIMIT,
    REGEX_SET_PROGRAM_LIMIT,
    REGEX_SET_WIDTH_LIMIT,
    REGEX_WIDTH_LIMIT,
    RegexSet,
    vet_regex,
)
from wxloop.domain.rules.templates import cut_text, placeholders_in, render, reply_needs
from wxloop.domain.rules.windows import SHANGHAI, WEEKDAYS, TimeWindow, _shanghai_tz, local_time

__all__ = [
    "DEFAULT_IDS",
    "KEYWORD_MAX_LEN",
    "MATCH_MODES",
    "MAX_REGEXES",
    "MAX_RULES",
    "REGEX_MAX_LEN",
    "REGEX_PROGRAM_LIMIT",
    "REGEX_SET_PROGRAM_LIMIT",
    "REGEX_SET_WIDTH_LIMIT",
    "REGEX_TEXT_LIMIT",
    "REGEX_WIDTH_LIMIT",
    "SHANGHAI",
    "TRIGGERS",
    "WEEKDAYS",
    "Decision",
    "RegexSet",
    "Rule",
    "RuleError",
    "RuleSet",
    "TimeWindow",
    "Trigger",
    "_shanghai_tz",
    "content_version",
    "cut_text",
    "local_time",
    "normalize",
    "placeholders_in",
    "render",
    "reply_needs",
    "trigger_for",
    "vet_regex",
]
