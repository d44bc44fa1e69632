"""The compiled rule set of each account, kept in memory for the life of the Lambda container.

``current(app_id)`` answers from memory; at most once every ``RULES_REFRESH_SECONDS`` (default 30) per
account it reads the CURRENT version pointer (one small DynamoDB read) and fetches and compiles the document
only when the version changed; a container's first read fetches the CURRENT item whole (version and
document), one request on the cold path instead of two. So most messages cause no DynamoDB request, and a
push is live everywhere within one interval. When DynamoDB fails or a stored document does not compile, the last good set keeps
serving (a warning is logged). Stored versions never change, so a version that did not compile is not fetched
or compiled again: only a newer version is. Compiling happens inside the request that notices the new
version; it is bounded (see ``wxloop.domain.rules``: at most 5,000 rules and 500 regexes, well under a second).
With nothing stored for an account, the built-in set is used: the YAML file named by ``RULES_FILE``, or an
empty set (no rules, no replies).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools import Logger

from wxloop.domain.rules import RuleError, RuleSet
from wxloop.settings import settings

logger = Logger(child=True)

DEFAULT_REFRESH_SECONDS = 30.0
BUILTIN_VERSION = "builtin"


def refresh_seconds() -> float:
    return settings().rules_refresh_seconds


def builtin_rules(app_id: str | None = None) -> RuleSet:
    """The fallback set: ``RULES_FILE`` if set (a broken file is logged and replaced by the empty set)."""
    path = settings().rules_file
    if path:
        try:
            from wxloop.rulesfile import load_rule_set

            rules, _ = load_rule_set(path, app_id=app_id)
            return rules
        except Exception as exc:
            logger.warning("RULES_FILE unusable, using no rules", extra={"path": path, "error": str(exc)[:300]})
    return RuleSet.compile({"rules": []}, version=BUILTIN_VERSION, app_id=app_id)


@dataclass
class _Entry:
    rules: RuleSet
    checked_at: float
    stored: bool  # True when ``rules`` came from the table (False: built-in fallback)
    refused: str | None = None  # the stored version that did not compile (it is not tried again)


class RulesCache:
    """Per-account cache of compiled rule sets. The repository functions are injectable for tests."""

    def __init__(
        self,
        *,
        current_version: Callable[[str], str | None] | None = None,
        fetch: Callable[[str, str | None], tuple[str, dict] | None] | None = None,
        refresh: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._current_version = current_version
        self._fetch = fetch
        self._refresh = refresh
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def current(self, app_id: str, *, now_monotonic: float | None = None) -> RuleSet:
        """The rule set to answer ``app_id``'s pushes with (never raises for storage problems)."""
        now = self._clock() if now_monotonic is None else now_monotonic
        entry = self._entries.get(app_id)
        interval = self._refresh if self._refresh is not None else refresh_seconds()
        if entry is not None and now - entry.checked_at < interval:
            return entry.rules
        with self._lock:
            entry = self._entries.get(app_id)
            if entry is not None and now - entry.checked_at < interval:
                return entry.rules
            entry = self._reload(app_id, entry, now)
            self._entries[app_id] = entry
            return entry.rules

    def _reload(self, app_id: str, entry: _Entry | None, now: float) -> _Entry:
        try:
            if entry is None:  # cold: the CURRENT item holds the document, so one read instead of two
                found = self._fetch_fn()(app_id, None)
                if found is None:
                    return _Entry(builtin_rules(app_id), now, False)
                return self._compiled(app_id, entry, now, *found)
            version = self._version_fn()(app_id)
            if version is None:
                if entry is not None and not entry.stored:
                    return _Entry(entry.rules, now, False)
                return _Entry(builtin_rules(app_id), now, False)
            if entry is not None and entry.stored and entry.rules.version == version:
                return _Entry(entry.rules, now, True)
            if entry is not None and entry.refused == version:
                return _Entry(entry.rules, now, entry.stored, version)
            found = self._fetch_fn()(app_id, version)
            if found is None:
                raise LookupError(f"rule set version {version} of {app_id} is missing")
            return self._compiled(app_id, entry, now, *found)
        except Exception as exc:
            # Keep answering with what we had; try again after the next interval.
            logger.warning("rules refresh failed, keeping the last good set",
                           extra={"app_id": app_id, "error": repr(exc)[:300]})
            if entry is not None:
                return _Entry(entry.rules, now, entry.stored, entry.refused)
            return _Entry(builtin_rules(app_id), now, False)

    def _compiled(self, app_id: str, entry: _Entry | None, now: float, version: str, doc: dict) -> _Entry:
        """The entry for stored ``doc``: compiled, or the last good set (else the builtin one) when it does not
        compile, remembering ``version`` as refused so it is not fetched again."""
        try:
            rules = RuleSet.compile(doc, version=version, app_id=app_id)
        except RuleError as exc:
            logger.warning("stored rules do not compile, keeping the last good set",
                           extra={"app_id": app_id, "version": version, "error": str(exc)[:300]})
            if entry is not None:
                return _Entry(entry.rules, now, entry.stored, version)
            return _Entry(builtin_rules(app_id), now, False, version)
        logger.info("rules loaded", extra={"app_id": app_id, "version": version, "rules": len(rules)})
        return _Entry(rules, now, True)

    def _version_fn(self) -> Callable[[str], str | None]:
        if self._current_version is not None:
            return self._current_version
        from wxloop.adapters import repository

        return repository.current_rule_version

    def _fetch_fn(self) -> Callable[[str, str | None], tuple[str, dict] | None]:
        if self._fetch is not None:
            return self._fetch
        from wxloop.adapters import repository

        return repository.get_rule_set

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_cache = RulesCache()


def current(app_id: str, *, now_monotonic: float | None = None) -> RuleSet:
    """The container-wide cached rule set of ``app_id`` (see the module docstring)."""
    return _cache.current(app_id, now_monotonic=now_monotonic)


def reset() -> None:
    """Forget every cached set (tests)."""
    _cache.clear()
