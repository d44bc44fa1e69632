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

import importlib
from typing import Any

# Names resolve on first use (PEP 562): code that needs one submodule, such as the stored-document
# bounds the DynamoDB adapter reads, does not import the engine, RE2 and the parser with it.
_EXPORTS = {
    "RuleSet": "engine",
    "content_version": "engine",
    "RuleError": "errors",
    "DEFAULT_IDS": "model",
    "Decision": "model",
    "KEYWORD_MAX_LEN": "model",
    "MATCH_MODES": "model",
    "MAX_REGEXES": "model",
    "MAX_RULES": "model",
    "REGEX_MAX_LEN": "model",
    "REGEX_TEXT_LIMIT": "model",
    "Rule": "model",
    "TRIGGERS": "model",
    "Trigger": "model",
    "normalize": "model",
    "trigger_for": "model",
    "REGEX_PROGRAM_LIMIT": "regexes",
    "REGEX_SET_PROGRAM_LIMIT": "regexes",
    "REGEX_SET_WIDTH_LIMIT": "regexes",
    "REGEX_WIDTH_LIMIT": "regexes",
    "RegexSet": "regexes",
    "vet_regex": "regexes",
    "cut_text": "templates",
    "placeholders_in": "templates",
    "render": "templates",
    "reply_needs": "templates",
    "SHANGHAI": "windows",
    "TimeWindow": "windows",
    "WEEKDAYS": "windows",
    "_shanghai_tz": "windows",
    "local_time": "windows",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


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
