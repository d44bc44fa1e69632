"""The keyword rule engine: precedence, normalisation, time windows, regexes (RE2), replies, placeholders."""

from __future__ import annotations

import random
import re
import time
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from wxloop.domain.inbound import Inbound
from wxloop.domain.replies import TEXT_LIMIT_BYTES, Article, Reply
from wxloop.domain.rules import (
    MAX_REGEXES,
    MAX_RULES,
    REGEX_SET_PROGRAM_LIMIT,
    REGEX_SET_WIDTH_LIMIT,
    REGEX_TEXT_LIMIT,
    RegexSet,
    RuleError,
    RuleSet,
    TimeWindow,
    Trigger,
    _shanghai_tz,
    cut_text,
    normalize,
    render,
    trigger_for,
    vet_regex,
)

OA = "wx1234567890abcdef"
MP = "wxabcdef1234567890"
CST = timezone(timedelta(hours=8))
NOW = datetime(2025, 6, 4, 3, 0, tzinfo=UTC)  # Wednesday 11:00 in Shanghai


def rule(rid: str, keywords, *, match="exact", priority=0, reply=None, **extra) -> dict:
    return {"id": rid, "match": match, "keywords": keywords if isinstance(keywords, list) else [keywords],
            "priority": priority, "reply": reply or {"text": rid}, **extra}


def compile_rules(*rules, defaults=None, **top) -> RuleSet:
    doc = {"rules": list(rules), **top}
    if defaults:
        doc["defaults"] = defaults
    return RuleSet.compile(doc)


def answer(rs: RuleSet, text: str, *, kind="text", now=NOW, first_time=False) -> str | None:
    d = rs.decide(Trigger(kind, text), now=now, first_time=first_time)
    return d.rule_id if d else None


def cst(*args) -> datetime:
    return datetime(*args, tzinfo=CST)


# ------------------------------------------------------------------------------------------ precedence


def test_given_rules_of_different_priority_when_both_match_then_the_higher_priority_wins_whatever_its_mode():
    rs = compile_rules(
        rule("exact-low", "coupon", priority=1),
        rule("regex-high", r"^coup", match="regex", priority=9),
        rule("contains-mid", "cou", match="contains", priority=5),
    )
    assert answer(rs, "coupon") == "regex-high"


def test_given_equal_priority_when_several_modes_match_then_exact_beats_contains_beats_regex_not_file_order():
    rs = compile_rules(
        rule("regex", r"^coupon$", match="regex", priority=3),
        rule("contains", "coupon", match="contains", priority=3),
        rule("exact", "coupon", priority=3),
    )
    assert answer(rs, "coupon") == "exact"
    assert answer(rs, "a coupon") == "contains"
    rs2 = compile_rules(rule("regex", r"^coupon$", match="regex", priority=3),
                        rule("contains", "coupons", match="contains", priority=3))
    assert answer(rs2, "coupon") == "regex"


def test_given_equal_priority_and_mode_when_both_match_then_the_earlier_rule_in_the_file_wins():
    rs = compile_rules(rule("first", "sale", match="contains"), rule("second", "big sale", match="contains"))
    assert answer(rs, "big sale today") == "first"
    rs = compile_rules(rule("second", "big sale", match="contains"), rule("first", "sale", match="contains"))
    assert answer(rs, "big sale today") == "second"


def test_given_the_best_rule_is_outside_its_window_when_matching_then_the_next_rule_in_precedence_answers():
    rs = compile_rules(
        rule("office", "客服", match="contains", priority=20, window={"hours": "09:00-18:00"}),
        rule("closed", "客服", match="contains", priority=1),
    )
    assert answer(rs, "找客服", now=cst(2025, 6, 4, 10, 0)) == "office"
    assert answer(rs, "找客服", now=cst(2025, 6, 4, 19, 0)) == "closed"


def test_given_a_rule_scoped_to_an_account_when_the_set_serves_another_account_then_it_is_skipped():
    doc = {"rules": [rule("scoped", "hi", priority=5, apps=[MP]), rule("general", "hi")]}
    assert answer(RuleSet.compile(doc, app_id=MP), "hi") == "scoped"
    assert answer(RuleSet.compile(doc, app_id=OA), "hi") == "general"
    assert answer(RuleSet.compile(doc), "hi") == "general"  # no account known: scoped rules are inactive


def test_given_one_keyword_with_many_rules_when_compiled_then_decisions_match_a_naive_reference():
    """Given random rule sets, when the indexed engine decides, then it agrees with a linear scan."""
    rng = random.Random(7)
    words = ["优惠", "优惠券", "积分", "shop", "shopping", "vip", "会员", "订单", "a", "ab", "x y"]
    for _ in range(30):
        rules = []
        for i in range(rng.randint(5, 25)):
            mode = rng.choice(["exact", "contains", "regex"])
            kw = rng.choice(words)
            if mode == "regex":
                kw = rng.choice([f"^{kw}", f"{kw}\\d+", f"{kw}$", r"^\d{3}$", f"(?:{kw}|会员)码", f"^{kw}|码$",
                                 r"^\d{2}", r"\Aab"])
            extra = {}
            if rng.random() < 0.2:
                extra["window"] = {"hours": rng.choice(["09:00-18:00", "22:00-02:00"])}
            rules.append(rule(f"r{i}", kw, match=mode, priority=rng.randint(0, 3), **extra))
        rs = RuleSet.compile({"rules": rules})
        for _ in range(40):
            text = rng.choice(["", " "]) + "".join(rng.choice(words + ["123", " ", "码", "Z"])
                                                   for _ in range(rng.randint(1, 4)))
            now = cst(2025, 6, 4, rng.choice([3, 10, 23]), 0)
            assert answer(rs, text, now=now) == _naive(rs, text, now), (rules, text)


def _naive(rs: RuleSet, text: str, now: datetime) -> str | None:
    value = normalize(text)
    if not value:
        return None
    for r in sorted(rs.rules, key=lambda r: r.precedence):
        if r.window and not r.window.is_open(now):
            continue
        for kw in r.keywords:
            if r.match == "exact" and normalize(kw) == value:
                return r.id
            if r.match == "contains" and normalize(kw) in value:
                return r.id
            if r.match == "regex" and re.search(kw, value[:REGEX_TEXT_LIMIT], re.IGNORECASE):
                return r.id
    return None


# ------------------------------------------------------------------------------------------ normalisation


def test_given_full_width_upper_case_and_extra_spaces_when_normalised_then_they_equal_plain_text():
    assert normalize("  ＨＥＬＬＯ　　Ｗｏｒｌｄ！ ") == "hello world!"
    assert normalize("Straße") == normalize("STRASSE")
    assert normalize("１２３") == "123"
    assert normalize("") == ""


def test_given_a_keyword_written_with_odd_width_and_case_when_a_user_types_it_differently_then_it_matches():
    rs = compile_rules(rule("shop", "ＳＨＯＰ  Now"), rule("vip", "Vip", match="contains"))
    assert answer(rs, " shop now ") == "shop"
    assert answer(rs, "shop\tnow") == "shop"
    assert answer(rs, "我是ＶＩＰ会员") == "vip"
    assert answer(rs, "shopnow") is None


def test_given_a_keyword_empty_after_normalisation_when_compiled_then_it_is_refused():
    with pytest.raises(RuleError) as err:
        compile_rules(rule("blank", ["ok", "　 "]))
    assert err.value.path == "rules[0].keywords[1]"


# ------------------------------------------------------------------------------------------ time windows


def test_given_office_hours_when_asked_at_the_edges_in_shanghai_time_then_start_is_open_and_end_is_closed():
    w = TimeWindow(hours=((9 * 60, 18 * 60),))
    assert not w.is_open(datetime(2025, 6, 4, 0, 59, tzinfo=UTC))  # 08:59 CST
    assert w.is_open(datetime(2025, 6, 4, 1, 0, tzinfo=UTC))  # 09:00 CST
    assert w.is_open(cst(2025, 6, 4, 17, 59))
    assert not w.is_open(cst(2025, 6, 4, 18, 0))


def test_given_hours_crossing_midnight_on_fridays_when_asked_then_the_night_belongs_to_the_day_it_starts():
    rs = compile_rules(rule("fri-night", "go", window={"hours": "22:00-02:00", "weekdays": ["fri"]}))
    assert answer(rs, "go", now=cst(2025, 6, 6, 21, 59)) is None  # Friday, before
    assert answer(rs, "go", now=cst(2025, 6, 6, 22, 0)) == "fri-night"
    assert answer(rs, "go", now=cst(2025, 6, 7, 1, 59)) == "fri-night"  # Saturday small hours
    assert answer(rs, "go", now=cst(2025, 6, 7, 2, 0)) is None
    assert answer(rs, "go", now=cst(2025, 6, 6, 1, 0)) is None  # Friday 01:00 is Thursday's night
    assert answer(rs, "go", now=cst(2025, 6, 7, 22, 30)) is None  # Saturday evening


def test_given_weekdays_only_when_utc_is_still_friday_but_shanghai_is_saturday_then_the_rule_is_closed():
    rs = compile_rules(rule("weekday", "go", window={"weekdays": ["mon", "tue", "wed", "thu", "fri"]}))
    assert answer(rs, "go", now=datetime(2025, 6, 6, 15, 59, tzinfo=UTC)) == "weekday"  # Fri 23:59
    assert answer(rs, "go", now=datetime(2025, 6, 6, 16, 0, tzinfo=UTC)) is None  # Sat 00:00
    assert answer(rs, "go", now=datetime(2025, 6, 8, 16, 0, tzinfo=UTC)) == "weekday"  # Mon 00:00


def test_given_a_date_range_when_asked_then_both_ends_are_inclusive_shanghai_calendar_days():
    rs = compile_rules(rule("nov", "go", window={"dates": {"from": "2025-11-01", "to": date(2025, 11, 30)}}))
    assert answer(rs, "go", now=datetime(2025, 10, 31, 15, 59, tzinfo=UTC)) is None
    assert answer(rs, "go", now=datetime(2025, 10, 31, 16, 0, tzinfo=UTC)) == "nov"  # Nov 1 00:00 CST
    assert answer(rs, "go", now=cst(2025, 11, 30, 23, 59)) == "nov"
    assert answer(rs, "go", now=cst(2025, 12, 1, 0, 0)) is None


def test_given_a_naive_now_when_deciding_then_it_is_read_as_utc():
    rs = compile_rules(rule("morning", "go", window={"hours": "09:00-10:00"}))
    assert answer(rs, "go", now=datetime(2025, 6, 4, 1, 30)) == "morning"  # 09:30 CST


def test_given_no_tz_database_when_resolving_shanghai_then_a_fixed_utc_plus_8_is_used():
    tz = _shanghai_tz("No/Such_Zone")
    assert tz.utcoffset(datetime(2025, 1, 1)) == timedelta(hours=8)
    assert tz.utcoffset(datetime(2025, 7, 1)) == timedelta(hours=8)


@pytest.mark.parametrize(
    ("window", "path"),
    [
        ({"hours": "25:00-26:00"}, "rules[0].window.hours"),
        ({"hours": "09:00-09:00"}, "rules[0].window.hours"),
        ({"hours": ["09:00-10:00", "9-10"]}, "rules[0].window.hours[1]"),
        ({"weekdays": ["mon", "funday"]}, "rules[0].window.weekdays[1]"),
        ({"dates": {"from": "2025-12-01", "to": "2025-11-01"}}, "rules[0].window.dates"),
        ({"dates": {"from": "tomorrow"}}, "rules[0].window.dates.from"),
        ({"days": ["mon"]}, "rules[0].window.days"),
        ({}, "rules[0].window"),
    ],
)
def test_given_a_bad_window_when_compiled_then_the_error_names_the_field(window, path):
    with pytest.raises(RuleError) as err:
        compile_rules(rule("w", "go", window=window))
    assert err.value.path == path


# ------------------------------------------------------------------------------------------ regexes (RE2)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a)\1", "back-references"),
        (r"(?P<x>a)(?P=x)", "back-references"),
        (r"^x\w+?\w+?(?=\w+?\d)", "lookahead"),
        (r"price(?!s)", "negative lookahead"),
        (r"(?<=vip)code", "lookbehind"),
        (r"(?<!no )thanks", "negative lookbehind"),
        (r"a++b", "possessive"),
        (r"(?>ab|a)c", "atomic groups"),
        (r"a\Cb", "any byte"),
        ("a" * 201, "longer than 200"),
        (r"(unclosed", "does not compile"),
        (r"a*", "matches empty"),
        (r"(?:\pL{1,100}){1,10}x", "too large"),
    ],
)
def test_given_a_regex_re2_cannot_take_when_compiled_then_it_is_refused_naming_the_keyword(pattern, reason):
    with pytest.raises(RuleError) as err:
        compile_rules(rule("ok", "fine"), rule("bad", ["fine", pattern], match="regex"))
    assert err.value.path == "rules[1].keywords[1]"
    assert reason in str(err.value)


@pytest.mark.parametrize(
    "pattern",
    [r"(a+)+$", r"(a|aa)+$", r"\d+\s*\d+\s*x", r".*优惠.*!", r"a.*b.*c", r"x{0,16}x{0,16}y",
     r"s+[\u0100-\u017f]+s+!", r"^x\w+?\w+?\w+?\d", r"(\w+\s?)*!"],
)
def test_given_a_pattern_python_would_backtrack_on_when_vetted_then_re2_accepts_it(pattern):
    """Shapes the old cost model had to refuse are harmless in RE2: it never backtracks."""
    assert vet_regex(pattern).size > 0


def test_given_python_unicode_escapes_when_vetted_then_they_read_as_re2_code_points():
    assert vet_regex(r"s+[\u0100-\u017f]+s+!").source == r"s+[\x{0100}-\x{017f}]+s+!"
    assert vet_regex(r"a\\u0100").source == r"a\\u0100"  # an escaped backslash stays literal
    rs = compile_rules(rule("latin-ext", r"^[\u0100-\u017f]+$", match="regex"))
    assert answer(rs, "āăą") == "latin-ext" and answer(rs, "abc") is None


def test_given_re2_semantics_when_matching_then_they_are_as_documented():
    """Case-insensitive (Unicode simple folding); \\d \\w are ASCII, but NFKC has made full-width ASCII."""
    rs = compile_rules(rule("digits", r"^\d{3}$", match="regex"), rule("word", r"^\w+$", match="regex"),
                       rule("han", r"^\p{Han}+$", match="regex"), rule("greek", r"^σ+$", match="regex"))
    assert answer(rs, "１２３") == "digits"  # full-width digits: half-width after normalisation
    assert answer(rs, "١٢٣") is None  # Arabic-Indic digits are not \d in RE2 (they are in Python's re)
    assert answer(rs, "ABC_1") == "word"  # casefolded text, case-insensitive pattern
    assert answer(rs, "中文") == "han"  # \w is ASCII: use \p{Han} / \pL for other scripts
    assert answer(rs, "ΣΣ") == "greek" and answer(rs, "ςσ") == "greek"


def test_given_anchored_and_unanchored_regexes_when_matching_then_none_is_missed():
    rs = compile_rules(rule("code", r"^\d{6}$", match="regex"), rule("alt", r"^\d{4}|[a-z]{2}\d$", match="regex"),
                       rule("short", r"^\d{2}$", match="regex"))
    assert answer(rs, "123456") == "code"
    assert answer(rs, "xx ab1") == "alt"
    assert answer(rs, "12") == "short"
    assert answer(rs, "x12") is None


def test_given_several_regexes_match_when_deciding_then_precedence_not_set_order_picks_the_winner():
    rs = compile_rules(rule("late-high", r"vip", match="regex", priority=5),
                       rule("early-low", r"v.p", match="regex", priority=1),
                       rule("same-a", r"gold", match="regex"), rule("same-b", r"g.ld", match="regex"),
                       rule("dup-1", "^x$", match="regex", triggers=["click"]),
                       rule("dup-2", "^x$", match="regex", triggers=["click"], priority=3))
    assert answer(rs, "vip gold") == "late-high"
    assert answer(rs, "gold") == "same-a"  # equal priority: the earlier rule in the file
    assert answer(rs, "x", kind="click") == "dup-2"  # identical patterns share one slot, both still rank


def test_given_a_long_text_when_regexes_match_then_they_only_see_the_first_512_characters():
    rs = compile_rules(rule("tail", "x$", match="regex"), rule("head", "^a+", match="regex"))
    assert answer(rs, "a" * 10) == "head"
    assert answer(rs, "b" * (REGEX_TEXT_LIMIT + 10) + "x") is None
    assert answer(rs, "b" * (REGEX_TEXT_LIMIT - 10) + "x") == "tail"


def _regex_rules(patterns, prefix="r", **extra) -> list[dict]:
    return [rule(f"{prefix}{i}", p, match="regex", **extra) for i, p in enumerate(patterns)]


def _decide_ms(rs: RuleSet, text: str) -> float:
    started = time.perf_counter()
    rs.decide(Trigger("text", text), now=NOW)
    return (time.perf_counter() - started) * 1000


def test_given_the_hostile_patterns_of_the_review_when_deciding_2048_chars_then_each_is_fast():
    """Measured here: 0.1 to 1 ms each (Python's re took 22 s and 0.4 s). 50 ms leaves a slow machine room."""
    rs = compile_rules(*_regex_rules([r"s+[\u0100-\u017f]+s+!"] * 5 + [r"^x\w+?\w+?\w+?\d"]),
                       defaults={"reply": {"text": "default"}})
    for text in ("s" * 2048, "x" + "a" * 2047, "sſ" * 1024):
        assert rs.decide(Trigger("text", text), now=NOW).rule_id == "defaults.reply"
        assert _decide_ms(rs, text) < 50


def test_given_a_500_regex_set_at_the_size_limit_when_a_hostile_text_arrives_then_deciding_stays_fast():
    """Unanchored regexes, all alive on a text of s's, filling the set's width budget, and 4,500 contains
    rules: one pass decides (measured 1 to 4 ms here; the benchmark reports the figure)."""
    patterns = [rf"s+[a-z{i % 10}]*s{{1,3}}[\u0100-\u017f]{i}" for i in range(REGEX_SET_WIDTH_LIMIT // 2)]
    doc = {"rules": _regex_rules(patterns) + [rule(f"kw{i}", f"词{i}", match="contains")
                                              for i in range(MAX_RULES - MAX_REGEXES)],
           "defaults": {"reply": {"text": "default"}}}
    rs = RuleSet.compile(doc)
    assert sum(vet_regex(p).width for p in patterns) == REGEX_SET_WIDTH_LIMIT
    for text in ("s" * 2047 + "!", "sſ" * 1024, "好" * 2048):
        assert rs.decide(Trigger("text", text), now=NOW).rule_id == "defaults.reply"
        assert min(_decide_ms(rs, text) for _ in range(3)) < 50
    assert answer(rs, "sss ss" + "\u0101" + "7") == "r7"


@pytest.mark.parametrize("pattern, reason", [
    (r"a[ab]{180}c", "counted repeat of 180"),
    (r"(?:a|b)[ab]{20}c", "counted repeat of 20"),
    (r"(?:退款|退货).{0,60}(?:订单|单号)", "counted repeat of 60"),
    (r"x{17,}", "counted repeat of 17"),
    ("a" + "." * 190 + "c", "tracks 190 characters"),
    (r"(?:[ab]{16}){3}", "tracks 48 characters"),
    (".", "any one character"),
    (r"\b", "any one character"),
    (r"\w", "any one character"),
])
def test_given_a_regex_that_makes_re2_track_a_long_window_when_compiled_then_it_is_refused(pattern, reason):
    """Linear time is not enough: a counted repeat of a broad class keeps up to N live states per
    character (a[ab]{180}c took 10 ms alone, 600 ms in a set), so repeats and windows are bounded."""
    with pytest.raises(RuleError) as err:
        compile_rules(rule("ok", "fine"), rule("bad", ["fine", pattern], match="regex"))
    assert err.value.path == "rules[1].keywords[1]"
    assert reason in str(err.value)


def test_given_regexes_over_the_set_width_limit_when_compiled_then_the_one_that_crosses_it_is_named():
    patterns = [f"a[ab]{{16}}c{i}" for i in range(REGEX_SET_WIDTH_LIMIT // 16 + 1)]
    with pytest.raises(RuleError) as err:
        RuleSet.compile({"rules": _regex_rules(patterns)})
    assert err.value.path == f"rules[{REGEX_SET_WIDTH_LIMIT // 16}].keywords[0]"
    assert "characters of history" in err.value.message


def test_given_the_widest_accepted_sets_when_random_ab_texts_arrive_then_each_decides_fast_and_right():
    """The review's families at their largest accepted size, on cold sets: fast, and no match is lost."""
    rnd = random.Random(5)
    texts = ["".join(rnd.choice("ab") for _ in range(2048)) for _ in range(3)] + ["a" * 2048]
    for make in (lambda i: f"a[ab]{{16}}c{i % 10}", lambda i: f"(?:a|b)[ab]{{{1 + i % 16}}}c"):
        patterns, width = [], 0
        while width + vet_regex(make(len(patterns))).width <= REGEX_SET_WIDTH_LIMIT:
            width += vet_regex(make(len(patterns))).width
            patterns.append(make(len(patterns)))
        doc = {"rules": _regex_rules(patterns)}
        for text in texts:
            assert min(_decide_ms(RuleSet.compile(doc), text) for _ in range(3)) < 50
        hit = texts[0][:40] + "a" + "ab" * 8 + "c7"
        expected = next((f"r{i}" for i, p in enumerate(patterns) if re.search(p, hit)), None)
        assert expected is not None and answer(RuleSet.compile(doc), hit) == expected


def test_given_a_realistic_window_regex_when_compiled_then_it_is_accepted_and_matches():
    rs = compile_rules(rule("refund", r"(?:退款|退货).{0,16}(?:订单|单号)", match="regex"))
    assert answer(rs, "我要退款，订单号123") == "refund" and answer(rs, "退款" + "好" * 20 + "订单") is None


def test_given_regexes_over_the_set_program_limit_when_compiled_then_the_one_that_crosses_it_is_named():
    pattern = r"\pL\pN"
    size = vet_regex(pattern).size
    fits = REGEX_SET_PROGRAM_LIMIT // size
    with pytest.raises(RuleError) as err:
        RuleSet.compile({"rules": [rule("plain", "hi"), *_regex_rules([pattern] * (fits + 1))]})
    assert err.value.path == f"rules[{fits + 1}].keywords[0]"
    assert "RE2 instructions" in err.value.message
    RuleSet.compile({"rules": _regex_rules([pattern] * fits)})


def test_given_more_regexes_than_a_set_may_hold_when_compiled_then_the_first_one_over_is_named():
    per_rule = 10
    rules = [rule(f"r{i}", [rf"^k{i}x{j}$" for j in range(per_rule)], match="regex")
             for i in range(MAX_REGEXES // per_rule)]
    rules.append(rule("one-more", ["^a", "^b"], match="regex"))
    with pytest.raises(RuleError) as err:
        RuleSet.compile({"rules": rules})
    assert err.value.path == f"rules[{MAX_REGEXES // per_rule}].keywords[0]"
    assert f"at most {MAX_REGEXES} regexes" in err.value.message



# ------------------------------------------------------------------------------------------ replies


def test_given_every_reply_kind_when_compiled_then_each_maps_onto_a_reply():
    rs = compile_rules(
        rule("text", "1", reply={"text": "hello"}),
        rule("image", "2", reply={"image": "IMG_ID"}),
        rule("voice", "3", reply={"voice": "VOICE_ID"}),
        rule("video", "4", reply={"video": {"media_id": "VID", "title": "T", "description": "D"}}),
        rule("music", "5", reply={"music": {"title": "M", "music_url": "https://x.cn/a.mp3",
                                            "hq_music_url": "https://x.cn/hq.mp3", "thumb_media_id": "TH"}}),
        rule("news", "6", reply={"news": {"title": "N", "description": "ND", "url": "https://x.cn/n",
                                          "image": "https://x.cn/n.jpg"}}),
        rule("card", "7", reply={"mp_card": {"title": "C", "appid": MP, "pagepath": "pages/a/a",
                                             "thumb_media_id": "TH", "text": "card coming"}}),
        rule("link", "8", reply={"mp_link": {"appid": MP, "path": "pages/b/b?x=1&y=2", "label": "Go <now>",
                                             "text": "before {link} after"}}),
    )
    got = {r.id: r.reply for r in rs.rules}
    assert got["text"] == Reply(kind="text", content="hello")
    assert got["image"] == Reply(kind="image", media_id="IMG_ID")
    assert got["voice"] == Reply(kind="voice", media_id="VOICE_ID")
    assert got["video"] == Reply(kind="video", media_id="VID", title="T", description="D")
    assert got["music"] == Reply(kind="music", title="M", music_url="https://x.cn/a.mp3",
                                 hq_music_url="https://x.cn/hq.mp3", thumb_media_id="TH")
    assert got["news"] == Reply(kind="news", articles=(Article("N", "ND", "https://x.cn/n", "https://x.cn/n.jpg"),))
    assert got["card"] == Reply(kind="mp_card", title="C", appid=MP, pagepath="pages/a/a", thumb_media_id="TH",
                                content="card coming")
    assert not got["card"].is_passive
    assert got["link"] == Reply(kind="text", content=(
        f'before <a data-miniprogram-appid="{MP}" data-miniprogram-path="pages/b/b?x=1&amp;y=2">'
        "Go &lt;now&gt;</a> after"))


@pytest.mark.parametrize(
    ("reply", "path"),
    [
        ({"news": [{"title": "a", "url": "https://a.cn"}, {"title": "b", "url": "https://b.cn"}]}, "rules[0].reply.news"),
        ({"news": {"title": "a", "url": "ftp://a.cn"}}, "rules[0].reply.news.url"),
        ({"text": "a", "image": "b"}, "rules[0].reply"),
        ({"sticker": "x"}, "rules[0].reply"),
        ({"video": {"media_id": "v", "colour": "red"}}, "rules[0].reply.video.colour"),
        ({"music": {"title": "no thumb"}}, "rules[0].reply.music.thumb_media_id"),
        ({"mp_link": {"appid": MP, "path": "p", "label": "l", "text": "no link here"}}, "rules[0].reply.mp_link.text"),
        ({"mp_card": {"title": "t", "appid": MP, "pagepath": "p"}}, "rules[0].reply.mp_card.thumb_media_id"),
        ({"text": "x" * (TEXT_LIMIT_BYTES + 1)}, "rules[0].reply.text"),
        ({"text": ""}, "rules[0].reply.text"),
    ],
)
def test_given_a_bad_reply_when_compiled_then_the_error_names_the_field(reply, path):
    with pytest.raises(RuleError) as err:
        compile_rules(rule("r", "go", reply=reply))
    assert err.value.path == path


# ------------------------------------------------------------------------------------------ placeholders


def test_given_placeholders_when_rendered_then_values_fill_them_and_missing_ones_use_the_fallback_or_nothing():
    reply = Reply(kind="text", content="{nickname|朋友}, you have {points} points{suffix}. {{literal}}")
    assert render(reply, {"points": 12}).content == "朋友, you have 12 points. {literal}"
    assert render(reply, {"nickname": "Ann", "points": None}).content == "Ann, you have  points. {literal}"


@pytest.mark.parametrize(
    "template",
    ["{__class__}", "{0.__init__}", "{points.__class__.__mro__}", "{points[0]}", "{points!r}", "{points:>99999}",
     "{}", "{0}", "unbalanced } brace", "{ points }"],
)
def test_given_a_hostile_template_when_compiled_then_it_is_refused(template):
    with pytest.raises(RuleError) as err:
        compile_rules(rule("r", "go", reply={"text": template}))
    assert "placeholder" in err.value.message


@pytest.mark.parametrize(
    "template", ["{__class__}", "{0.__init__}", "{points.__class__.__mro__}", "{points[0]}", "{points!r}",
                 "{points:>99999}", "{__globals__}", "{"],
)
def test_given_a_hostile_template_when_rendered_anyway_then_nothing_is_evaluated_and_nothing_raises(template):
    out = render(Reply(kind="text", content=template), {"points": 5, "__class__": "leak"}).content
    assert out == template
    assert "<class" not in out and "leak" not in out


def test_given_values_that_misbehave_when_rendered_then_they_render_empty_and_render_never_raises():
    class Boom:
        def __str__(self):
            raise RuntimeError("no")

    class BadMapping(dict):
        def get(self, *_):
            raise KeyError("no")

    reply = Reply(kind="text", content="a{x}b")
    assert render(reply, {"x": Boom()}).content == "ab"
    assert render(reply, BadMapping()).content == "ab"


def test_given_a_value_with_markup_when_rendered_into_text_then_it_cannot_inject_a_link():
    reply = Reply(kind="text", content="hi {nickname}")
    hostile = '<a data-miniprogram-appid="wxevil" data-miniprogram-path="x">tap</a>'
    out = render(reply, {"nickname": hostile}).content
    assert "<a" not in out and '"' not in out


def test_given_a_value_in_a_page_path_or_url_when_rendered_then_it_is_percent_encoded():
    rs = compile_rules(
        rule("invite", "go", reply={"mp_card": {"title": "t", "appid": MP, "pagepath": "pages/i?code={invite_code}",
                                                "thumb_media_id": "TH"}}),
        rule("news", "n", reply={"news": {"title": "Hi {nickname}", "url": "https://x.cn/?c={invite_code}"}}),
    )
    card = render(rs.rule("invite").reply, {"invite_code": "A&B=C D"})
    assert card.pagepath == "pages/i?code=A%26B%3DC%20D"
    news = render(rs.rule("news").reply, {"invite_code": "Z9", "nickname": "Ann"})
    assert news.articles[0] == Article(title="Hi Ann", url="https://x.cn/?c=Z9")


HOSTILE_CODE = "a b&c=d/#?"
ENCODED_CODE = "a%20b%26c%3Dd%2F%23%3F"


def test_given_a_hostile_invite_code_in_an_mp_link_path_when_rendered_then_it_cannot_add_parameters():
    rs = compile_rules(rule("invite", "go", reply={"mp_link": {
        "appid": MP, "path": "pages/invite/index?code={invite_code}", "label": "邀请 {nickname}",
        "text": "给 {nickname}：{link}"}}))
    out = render(rs.rule("invite").reply, {"invite_code": HOSTILE_CODE, "nickname": '<b>"x"'}).content
    assert f'data-miniprogram-path="pages/invite/index?code={ENCODED_CODE}"' in out
    assert "&c=" not in out and "#?" not in out
    # outside the tag, values stay text with markup neutralised (the label and the surrounding text)
    assert out.startswith("给 ＜b＞＂x＂：") and out.endswith(">邀请 ＜b＞＂x＂</a>")


def test_given_a_hostile_value_in_any_url_or_page_path_when_rendered_then_each_is_encoded_the_same_way():
    rs = compile_rules(
        rule("card", "c", reply={"mp_card": {"title": "t", "appid": MP, "thumb_media_id": "TH",
                                             "pagepath": "pages/i?code={invite_code}"}}),
        rule("news", "n", reply={"news": {"title": "t", "url": "https://x.cn/?c={invite_code}"}}),
        rule("music", "m", reply={"music": {"thumb_media_id": "TH", "music_url": "https://x.cn/{invite_code}"}}),
        rule("href", "h", reply={"text": '<a href="https://x.cn/?c={invite_code}">{invite_code}</a>'}),
    )
    values = {"invite_code": HOSTILE_CODE}
    assert render(rs.rule("card").reply, values).pagepath == f"pages/i?code={ENCODED_CODE}"
    assert render(rs.rule("news").reply, values).articles[0].url == f"https://x.cn/?c={ENCODED_CODE}"
    assert render(rs.rule("music").reply, values).music_url == f"https://x.cn/{ENCODED_CODE}"
    assert render(rs.rule("href").reply, values).content == f'<a href="https://x.cn/?c={ENCODED_CODE}">{HOSTILE_CODE}</a>'


@pytest.mark.parametrize(
    ("path", "values", "expected"),
    [
        ("pages/i?code={c}", {}, "pages/i"),
        ("pages/i?from=oa&code={c}", {"c": None}, "pages/i?from=oa"),
        ("pages/i?code={c}&from=oa", {"c": ""}, "pages/i?from=oa"),
        ("pages/i?a=1&code={c}&b=2", {}, "pages/i?a=1&b=2"),
        ("pages/i?code={c}#top", {}, "pages/i#top"),
        ("pages/i?code={c|new}", {}, "pages/i?code=new"),  # a fallback is used as written
        ("pages/i?code={c}", {"c": "K7"}, "pages/i?code=K7"),
        ("pages/i?code=x{c}", {}, "pages/i?code=x"),  # not the whole value: the parameter stays
    ],
)
def test_given_a_missing_value_for_a_whole_query_parameter_when_rendered_then_the_parameter_is_left_out(
        path, values, expected):
    card = Reply(kind="mp_card", title="t", appid=MP, pagepath=path)
    assert render(card, values).pagepath == expected
    link = compile_rules(rule("l", "go", reply={"mp_link": {"appid": MP, "path": path, "label": "go"}}))
    content = render(link.rule("l").reply, values).content
    assert f'data-miniprogram-path="{expected.replace("&", "&amp;")}"' in content


def test_given_the_example_invite_rule_and_no_invite_code_when_rendered_then_no_empty_code_is_sent():
    from wxloop.rulesfile import load_rule_set

    rs, _ = load_rule_set(str(Path(__file__).resolve().parents[2] / "rules" / "example.yaml"))
    decision = rs.decide(Trigger("text", "邀请好友"), now=NOW)
    assert decision.rule_id == "invite"
    assert 'data-miniprogram-path="pages/invite/index?from=oa"' in render(decision.reply, {}).content
    with_code = render(decision.reply, {"invite_code": HOSTILE_CODE}).content
    assert f'data-miniprogram-path="pages/invite/index?from=oa&amp;code={ENCODED_CODE}"' in with_code


def test_given_a_value_that_looks_like_a_placeholder_when_rendered_then_it_is_not_expanded_again():
    out = render(Reply(kind="text", content="{a}"), {"a": "{b}", "b": "secret"}).content
    assert out == "{b}"


def test_given_rules_with_placeholders_when_compiled_then_needs_and_placeholders_needed_name_them():
    rs = compile_rules(
        rule("p", "p", reply={"text": "{points} {nickname|x}"}),
        rule("i", "i", reply={"mp_link": {"appid": MP, "path": "pages/i?c={invite_code}", "label": "go"}}),
        rule("plain", "z"),
        defaults={"welcome": {"text": "hi {nickname}"}},
    )
    assert rs.placeholders_needed == frozenset({"points", "nickname", "invite_code"})
    assert rs.decide(Trigger("text", "p"), now=NOW).needs == frozenset({"points", "nickname"})
    assert rs.decide(Trigger("text", "z"), now=NOW).needs == frozenset()
    assert compile_rules(rule("plain", "z")).placeholders_needed == frozenset()


# ------------------------------------------------------------------------------------------ truncation


def test_given_text_longer_than_the_limit_when_cut_then_no_link_or_tag_is_ever_split():
    link = f'<a data-miniprogram-appid="{MP}" data-miniprogram-path="pages/index/index">打开小程序</a>'
    for filler in range(1900, 2100, 3):
        content = "字" * (filler // 3) + "x" * (filler % 3) + link + " 尾巴" * 50
        out = cut_text(content)
        assert len(out.encode("utf-8")) <= TEXT_LIMIT_BYTES
        assert out.endswith("…")
        assert out.count("<a ") == out.count("</a>")
        assert out.rfind("<") <= out.rfind(">")
        if "<a " in out:
            assert link in out


def test_given_a_long_rendered_value_when_rendered_then_the_text_is_cut_within_the_limit():
    rs = compile_rules(rule("l", "go", reply={"mp_link": {"appid": MP, "path": "pages/x", "label": "open",
                                                          "text": "{nickname}{nickname} {link}"}}))
    out = render(rs.rule("l").reply, {"nickname": "长" * 5000}).content  # each value is capped at 512 chars
    assert len(out.encode("utf-8")) <= TEXT_LIMIT_BYTES and "<a" not in out and out.endswith("…")
    short = render(rs.rule("l").reply, {"nickname": "Ann"}).content
    assert short.startswith("AnnAnn <a ") and short.endswith("</a>")


# ------------------------------------------------------------------------------------------ defaults & welcome


WELCOME_SET = {
    "rules": [rule("scene-store", "store_1", triggers=["subscribe", "scan"]),
              rule("menu", "ABOUT", triggers=["click"])],
    "defaults": {"reply": {"text": "default"}, "welcome": {"text": "welcome back"},
                 "first_welcome": {"text": "first time!"}},
}


def test_given_a_new_follower_without_scene_when_first_time_then_the_first_welcome_is_given_otherwise_the_default():
    rs = RuleSet.compile(WELCOME_SET)
    assert answer(rs, "", kind="subscribe", first_time=True) == "defaults.first_welcome"
    assert answer(rs, "", kind="subscribe", first_time=False) == "defaults.welcome"
    assert answer(rs, "other_scene", kind="subscribe", first_time=True) == "defaults.first_welcome"


def test_given_a_matching_scene_when_a_first_timer_follows_then_the_scene_rule_wins_over_the_first_welcome():
    rs = RuleSet.compile(WELCOME_SET)
    assert answer(rs, "store_1", kind="subscribe", first_time=True) == "scene-store"
    assert answer(rs, "store_1", kind="scan") == "scene-store"


def test_given_scan_click_and_text_when_nothing_matches_then_only_text_falls_back_to_the_default_reply():
    rs = RuleSet.compile(WELCOME_SET)
    assert answer(rs, "unknown", kind="scan", first_time=True) is None
    assert answer(rs, "UNKNOWN_KEY", kind="click") is None
    assert answer(rs, "about", kind="click") == "menu"
    assert answer(rs, "about") == "defaults.reply"  # click rules do not answer text
    assert answer(rs, "whatever", first_time=True) == "defaults.reply"
    assert answer(rs, "") == "defaults.reply"


def test_given_no_defaults_when_nothing_matches_then_there_is_no_reply():
    rs = compile_rules(rule("x", "x"))
    assert answer(rs, "y") is None
    assert answer(rs, "", kind="subscribe", first_time=True) is None


def test_given_only_a_default_welcome_when_a_first_timer_follows_then_the_default_welcome_is_given():
    rs = RuleSet.compile({"defaults": {"welcome": {"text": "hi"}}})
    assert answer(rs, "", kind="subscribe", first_time=True) == "defaults.welcome"


# ------------------------------------------------------------------------------------------ triggers


def _inbound(**kw) -> Inbound:
    return Inbound(openid="o1", to_user="gh_1", create_time=1_700_000_000, **kw)


def test_given_pushes_when_mapped_then_text_voice_click_subscribe_and_scan_become_triggers_and_others_none():
    assert trigger_for(_inbound(msg_type="text", content="hi")) == Trigger("text", "hi")
    assert trigger_for(_inbound(msg_type="voice", detail={"Recognition": "你好", "recognition": "你好"})) == Trigger("text", "你好")
    assert trigger_for(_inbound(msg_type="event", event="click", event_key="ABOUT")) == Trigger("click", "ABOUT")
    assert trigger_for(_inbound(msg_type="event", event="subscribe", scene="store_1")) == Trigger("subscribe", "store_1")
    assert trigger_for(_inbound(msg_type="event", event="subscribe")) == Trigger("subscribe", "")
    assert trigger_for(_inbound(msg_type="event", event="scan", scene="store_1")) == Trigger("scan", "store_1")
    assert trigger_for(_inbound(msg_type="image")) is None
    assert trigger_for(_inbound(msg_type="event", event="unsubscribe")) is None
    assert trigger_for(_inbound(msg_type="event", event="view", event_key="https://x.cn")) is None


def test_given_an_unknown_trigger_kind_when_deciding_then_there_is_no_reply():
    assert RuleSet.compile(WELCOME_SET).decide(Trigger("location", "x"), now=NOW) is None


# ------------------------------------------------------------------------------------------ compile errors & doc


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"rules": [rule("a", "x"), {**rule("b", "y"), "colour": "red"}]}, "rules[1].colour"),
        ({"rules": [rule("a", "x"), rule("a", "y")]}, "rules[1].id"),
        ({"rules": [rule("a", "x", priority=True)]}, "rules[0].priority"),
        ({"rules": [rule("a", "x", priority="high")]}, "rules[0].priority"),
        ({"rules": [{"id": "a", "keywords": ["x"]}]}, "rules[0].reply"),
        ({"rules": [rule("a", [])]}, "rules[0].keywords"),
        ({"rules": [rule("a", "x", match="fuzzy")]}, "rules[0].match"),
        ({"rules": [rule("a", "x", triggers=["text", "view"])]}, "rules[0].triggers[1]"),
        ({"rules": [rule("bad id!", "x")]}, "rules[0].id"),
        ({"rules": [rule("a", "x", apps=["has space"])]}, "rules[0].apps[0]"),
        ({"rules": [], "extra": 1}, "extra"),
        ({"defaults": {"hello": {"text": "x"}}}, "defaults.hello"),
        ({"rules": {"a": 1}}, "rules"),
    ],
)
def test_given_an_invalid_document_when_compiled_then_rule_error_names_the_path(doc, path):
    with pytest.raises(RuleError) as err:
        RuleSet.compile(doc)
    assert err.value.path == path
    assert str(err.value).startswith(path + ": ")


def test_given_a_set_for_one_account_when_compiled_for_another_then_it_is_refused():
    with pytest.raises(RuleError) as err:
        RuleSet.compile({"app_id": OA, "rules": []}, app_id=MP)
    assert err.value.path == "app_id"


def test_given_a_compiled_set_when_turned_back_into_a_doc_then_it_round_trips():
    doc = {
        "app_id": OA,
        "defaults": {"reply": {"text": "d"}, "first_welcome": {"mp_link": {"appid": MP, "path": "p", "label": "l"}}},
        "rules": [
            rule("a", ["Ｘ", "y"], match="contains", priority=3, triggers=["text", "scan"],
                 window={"dates": {"from": date(2025, 1, 1)}, "hours": "22:00-02:00", "weekdays": [5, "sat"]}),
            rule("b", r"^\d{6}$", match="regex", note="codes", apps=[OA]),
            rule("c", 12345, triggers="subscribe", reply={"news": {"title": "t", "url": "https://x.cn"}}),
        ],
    }
    rs = RuleSet.compile(doc)
    again = RuleSet.compile(rs.to_doc())
    assert again.to_doc() == rs.to_doc()
    assert again.version == rs.version
    assert again.rules == rs.rules
    assert rs.to_doc()["rules"][0]["window"] == {"dates": {"from": "2025-01-01"}, "hours": ["22:00-02:00"],
                                                 "weekdays": ["fri", "sat"]}
    assert answer(again, "12345", kind="subscribe") == "c"


def test_given_no_version_when_compiled_then_the_version_is_a_hash_of_content_not_of_formatting():
    a = RuleSet.compile({"rules": [rule("a", "x", priority=1)]})
    b = RuleSet.compile({"rules": [{"reply": {"text": "a"}, "priority": 1, "keywords": "x", "id": "a"}]})
    c = RuleSet.compile({"rules": [rule("a", "x", priority=2)]})
    assert a.version == b.version != c.version
    assert RuleSet.compile({"version": "2025-06-r1", "rules": []}).version == "2025-06-r1"
    assert RuleSet.compile({"version": "2025-06-r1", "rules": []}, version="stored").version == "stored"


# ------------------------------------------------------------------------------- invisible characters


@pytest.mark.parametrize("text", ["我要退\u200b款", "我要退\u00ad款", "我要退\u2060款", "我要\u202e退款",
                                  "\ufeff我要退款"])
def test_given_an_invisible_format_character_inside_a_keyword_when_deciding_then_the_keyword_still_matches(text):
    rs = compile_rules(rule("refund", "退款", match="contains"), rule("help", "help"))
    assert answer(rs, text) == "refund"
    assert answer(rs, "help\u200b") == "help" and answer(rs, "he\u00adlp") == "help"


def test_given_a_lone_surrogate_in_a_text_when_matching_regexes_then_nothing_raises():
    rs = compile_rules(rule("abc", r"ab+c", match="regex"), defaults={"reply": {"text": "d"}})
    assert answer(rs, "ab\ud800c") == "abc"  # the surrogate is dropped like an invisible character
    assert RegexSet([r"ab+c", r"x"]).matching("ab\udfffc x") == [1]  # encoded with "replace", never raising


@pytest.mark.parametrize("value", ["a\x00b\x01\x08\x0b\x0c\x1f", "a\ud800b", "a\ufffeb"])
def test_given_a_placeholder_value_xml_cannot_carry_when_rendered_then_the_reply_xml_stays_valid(value):
    from xml.dom import minidom

    from wxloop.protocol.outbound import passive_xml

    rs = compile_rules(rule("hi", "hi", reply={"text": "hi {nickname}!"}))
    out = render(rs.decide(Trigger("text", "hi"), now=NOW).reply, {"nickname": value})
    assert out.content == "hi ab!"
    xml = passive_xml(out, openid="o1", account="gh_1", now=1)
    assert minidom.parseString(xml.encode()).getElementsByTagName("Content")[0].firstChild.data == "hi ab!"


# ------------------------------------------------------------------------------------------ set size


def test_given_more_keywords_than_a_set_may_hold_when_compiled_then_the_first_one_over_is_named():
    from wxloop.domain.rules.model import MAX_KEYWORDS

    per_rule = 1000
    rules = [rule(f"r{i}", [f"k{i}-{j}" for j in range(per_rule)]) for i in range(MAX_KEYWORDS // per_rule)]
    RuleSet.compile({"rules": rules})
    with pytest.raises(RuleError) as err:
        RuleSet.compile({"rules": [*rules, rule("one-more", ["x", "y"])]})
    assert err.value.path == f"rules[{MAX_KEYWORDS // per_rule}].keywords[0]"
    with pytest.raises(RuleError) as err:  # one huge rule is refused before its keywords are read
        RuleSet.compile({"rules": [rule("huge", [f"k{j}" for j in range(10 * MAX_KEYWORDS)])]})
    assert err.value.path == f"rules[0].keywords[{MAX_KEYWORDS}]"


def test_given_contains_keywords_over_the_character_budget_when_compiled_then_the_one_that_crosses_it_is_named():
    from wxloop.domain.rules.model import MAX_NEEDLE_CHARS

    needles = [f"{j:05d}" + "好" * 245 for j in range(MAX_NEEDLE_CHARS // 250 + 1)]
    with pytest.raises(RuleError) as err:
        RuleSet.compile({"rules": [rule("ok", "hi"), rule("many", needles, match="contains")]})
    assert err.value.path == f"rules[1].keywords[{MAX_NEEDLE_CHARS // 250}]"
    assert "contains keywords together" in err.value.message


def test_given_a_compressed_rule_set_when_inflated_then_a_bomb_is_refused_and_a_real_one_reads_back():
    import zlib

    from wxloop.domain.rules.stored import StoredRulesTooLarge, inflate_rules_doc

    doc = b'{"rules": []}' * 1000
    assert inflate_rules_doc(zlib.compress(doc)) == doc
    assert inflate_rules_doc(zlib.compress(doc), len(doc)) == doc
    with pytest.raises(StoredRulesTooLarge):
        inflate_rules_doc(zlib.compress(doc), len(doc) - 1)
    with pytest.raises(zlib.error):
        inflate_rules_doc(zlib.compress(doc)[:-8])


def test_given_many_contains_keywords_over_two_letters_when_a_hostile_text_arrives_then_one_pass_decides_fast():
    """The review's case: 5,000 needles of a/b took 170 ms tested one by one; one automaton pass is linear."""
    rnd = random.Random(3)
    needles = sorted({"".join(rnd.choice("ab") for _ in range(20)) for _ in range(5000)})
    rs = compile_rules(rule("many", needles, match="contains"), defaults={"reply": {"text": "d"}})
    texts = ["".join(rnd.choice("ab") for _ in range(2048)), "a" * 2048, "ab" * 1024]
    for text in texts:
        assert min(_decide_ms(rs, text) for _ in range(3)) < 50
        assert (answer(rs, text) == "many") == any(n in text for n in needles)
    assert answer(rs, "x" + needles[123] + "y") == "many"


def test_given_contains_keywords_nested_too_deep_when_compiled_then_the_deepest_is_named():
    from wxloop.domain.rules.model import MAX_NESTED_NEEDLES

    nested = ["卡" * k for k in range(1, MAX_NESTED_NEEDLES + 1)]
    rs = compile_rules(rule("cards", nested, match="contains"))
    assert answer(rs, "我的卡") == "cards"
    with pytest.raises(RuleError) as err:
        compile_rules(rule("ok", "hi"), rule("cards", [*nested, "卡" * (MAX_NESTED_NEEDLES + 1)], match="contains"))
    assert err.value.path == f"rules[1].keywords[{MAX_NESTED_NEEDLES}]"
