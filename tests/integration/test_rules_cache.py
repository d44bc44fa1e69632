"""The per-container rule cache (moto): hot reload after the interval, few DynamoDB reads, last good set."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import moto  # noqa: F401 - before any AWS client exists
import pytest

from wxloop.adapters import repository
from wxloop.domain.rules import RuleError, RuleSet, Trigger
from wxloop.services import rules_cache
from wxloop.services.rules_cache import RulesCache

REPO = Path(__file__).resolve().parents[2]
APP = "wx00000000000000aa"
NOW = datetime(2025, 6, 4, 3, 0, tzinfo=UTC)


def doc(text: str, version: str) -> dict:
    return RuleSet.compile({"version": version, "rules": [
        {"id": "hi", "keywords": ["hi"], "reply": {"text": text}}]}).to_doc()


def push(text: str, version: str) -> None:
    repository.put_rule_set(APP, doc(text, version), version)


def reply_text(rules: RuleSet) -> str | None:
    d = rules.decide(Trigger("text", "hi"), now=NOW)
    return d.reply.content if d else None


class Counting:
    """Wraps the repository reads to count DynamoDB requests."""

    def __init__(self) -> None:
        self.version_reads = 0
        self.doc_reads = 0

    def current_version(self, app_id):
        self.version_reads += 1
        return repository.current_rule_version(app_id)

    def fetch(self, app_id, version):
        self.doc_reads += 1
        return repository.get_rule_set(app_id, version)


@pytest.fixture
def counting():
    return Counting()


@pytest.fixture
def cache(counting):
    return RulesCache(current_version=counting.current_version, fetch=counting.fetch, refresh=30)


def test_given_a_pushed_set_when_a_new_version_is_pushed_then_it_is_served_after_the_interval_not_before(aws, cache):
    push("one", "r1")
    assert reply_text(cache.current(APP, now_monotonic=1000.0)) == "one"
    push("two", "r2")
    assert reply_text(cache.current(APP, now_monotonic=1029.9)) == "one"  # within the interval: cached
    rules = cache.current(APP, now_monotonic=1030.0)
    assert rules.version == "r2" and reply_text(rules) == "two"
    assert rules.app_id == APP


def test_given_many_messages_within_the_interval_when_served_then_only_one_version_read_per_interval(aws, cache, counting):
    push("one", "r1")
    for i in range(500):
        cache.current(APP, now_monotonic=2000.0 + i * 0.05)  # 25 s of traffic
    assert (counting.version_reads, counting.doc_reads) == (0, 1)  # cold: the current document in one read
    first = cache.current(APP, now_monotonic=2031.0)
    assert (counting.version_reads, counting.doc_reads) == (1, 1)  # version unchanged: no refetch, no recompile
    assert cache.current(APP, now_monotonic=2031.5) is first


def test_given_dynamodb_fails_when_refreshing_then_the_last_good_set_keeps_serving(aws):
    failing = {"on": False}

    def version(app_id):
        if failing["on"]:
            raise repository.RepositoryError("throttled")
        return repository.current_rule_version(app_id)

    cache = RulesCache(current_version=version, refresh=30)
    push("one", "r1")
    good = cache.current(APP, now_monotonic=0.0)
    failing["on"] = True
    assert cache.current(APP, now_monotonic=31.0) is good
    assert cache.current(APP, now_monotonic=62.0) is good
    failing["on"] = False
    push("two", "r2")
    assert reply_text(cache.current(APP, now_monotonic=93.0)) == "two"


def test_given_a_stored_document_that_does_not_compile_when_refreshing_then_the_last_good_set_keeps_serving(aws, cache):
    push("one", "r1")
    good = cache.current(APP, now_monotonic=0.0)
    bad = {"version": "r2", "rules": [{"id": "x", "keywords": ["x"], "reply": {"text": "{0.__init__}"}}]}
    repository.put_rule_set(APP, bad, "r2")
    assert cache.current(APP, now_monotonic=31.0) is good
    push("three", "r3")
    assert reply_text(cache.current(APP, now_monotonic=62.0)) == "three"



def test_given_a_pushed_set_over_the_regex_budget_when_refreshing_then_the_last_good_set_serves_and_it_is_not_refetched(
        aws, cache, counting):
    push("one", "r1")
    good = cache.current(APP, now_monotonic=0.0)
    slow = [{"id": f"slow{n}", "match": "regex", "keywords": [rf"\pL\pN{n}$"], "reply": {"text": "x"}}
            for n in range(1, 101)]  # each is fine alone; together they are over the set's program budget
    with pytest.raises(RuleError) as err:
        RuleSet.compile({"rules": slow})
    assert "RE2 instructions" in err.value.message
    repository.put_rule_set(APP, {"version": "r2", "rules": slow}, "r2")
    assert cache.current(APP, now_monotonic=31.0) is good
    assert cache.current(APP, now_monotonic=62.0) is good
    assert cache.current(APP, now_monotonic=93.0) is good
    assert counting.doc_reads == 2  # r1 once, r2 once: a version that did not compile is not fetched again
    push("three", "r3")
    assert reply_text(cache.current(APP, now_monotonic=124.0)) == "three"
    assert counting.doc_reads == 3


def test_given_the_first_stored_set_does_not_compile_when_asked_then_the_builtin_set_serves_until_a_good_push(
        aws, cache, counting, monkeypatch):
    monkeypatch.delenv("RULES_FILE", raising=False)
    bad = {"version": "r1", "rules": [{"id": "x", "match": "regex", "keywords": ["(a)\\1"], "reply": {"text": "x"}}]}
    repository.put_rule_set(APP, bad, "r1")
    assert cache.current(APP, now_monotonic=0.0).version == rules_cache.BUILTIN_VERSION
    assert cache.current(APP, now_monotonic=31.0).version == rules_cache.BUILTIN_VERSION
    assert counting.doc_reads == 1
    push("two", "r2")
    assert reply_text(cache.current(APP, now_monotonic=62.0)) == "two"


def test_given_nothing_stored_when_asked_then_the_builtin_set_from_rules_file_answers(aws, cache, monkeypatch):
    monkeypatch.setenv("RULES_FILE", str(REPO / "rules" / "example.yaml"))
    rules = cache.current("wx1234567890abcdef", now_monotonic=0.0)
    assert rules.rule("shop") is not None
    monkeypatch.delenv("RULES_FILE")
    empty = RulesCache(refresh=30).current(APP, now_monotonic=0.0)
    assert empty.version == rules_cache.BUILTIN_VERSION and len(empty) == 0
    assert empty.decide(Trigger("text", "hi"), now=NOW) is None


def test_given_the_builtin_set_when_a_set_is_pushed_then_it_replaces_the_builtin_after_the_interval(aws, cache, monkeypatch):
    monkeypatch.delenv("RULES_FILE", raising=False)
    assert cache.current(APP, now_monotonic=0.0).version == rules_cache.BUILTIN_VERSION
    push("one", "r1")
    assert cache.current(APP, now_monotonic=10.0).version == rules_cache.BUILTIN_VERSION
    assert cache.current(APP, now_monotonic=30.0).version == "r1"


def test_given_the_module_cache_when_env_sets_the_interval_then_it_is_honoured(aws, monkeypatch):
    monkeypatch.setenv("RULES_REFRESH_SECONDS", "5")
    rules_cache.reset()
    push("one", "r1")
    assert rules_cache.current(APP, now_monotonic=100.0).version == "r1"
    push("two", "r2")
    assert rules_cache.current(APP, now_monotonic=104.0).version == "r1"
    assert rules_cache.current(APP, now_monotonic=105.0).version == "r2"
