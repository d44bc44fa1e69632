"""``wxloop demo traffic`` -> ``wxloop kpi``: the JSON, the table and the HTML hold the same numbers; the HTML
is self-contained, escapes what the lake holds, and renders in a real headless Chromium without errors."""

from __future__ import annotations

import json
import os
import re
import shutil
from html import unescape

import pytest

pytest.importorskip("duckdb")
pytest.importorskip("pyarrow")

from wxloop import cli  # noqa: E402
from wxloop.analytics import lake  # noqa: E402
from wxloop.analytics.report import _num, _pct  # noqa: E402

WINDOW = ["--since", "2026-09-01", "--until", "2026-10-20"]
CHARTS = {"weekly_share", "retention", "funnel", "conversion_histogram", "engagement"}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    assert cli.main(["demo", "traffic", "--persons", "1500", "--days", "50", "--seed", "5", "--start", "2026-09-01",
                     "--lake", str(root)]) == 0
    hostile = {"event_id": "x1", "person": "evil", "platform": "oa", "app": "wx0", "type": "oa.event.subscribe",
               "ts": 1_789_000_000_000, "by_user": True, "channel": "</script><script>alert(1)</script>", "v": 1}
    lake.local_writer(root).write([hostile])
    out = {}
    for fmt in ("json", "html", "table"):
        path = root / f"report.{fmt}"
        assert cli.main(["kpi", *WINDOW, "--lake", str(root), "--format", fmt, "-o", str(path), "--no-progress"]) == 0
        out[fmt] = path
    return out


def _embedded(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="kpi-data">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


def _strip_timing(doc: dict) -> dict:
    doc["params"].pop("seconds", None)
    return doc


def test_the_html_embeds_exactly_the_json_report(reports):
    as_json = _strip_timing(json.loads(reports["json"].read_text(encoding="utf-8")))
    embedded = _strip_timing(_embedded(reports["html"].read_text(encoding="utf-8")))
    assert embedded == as_json
    assert set(as_json["kpis"]) == {"cross_platform_share", "time_to_conversion", "conversion_histogram",
                                    "retention", "funnel", "referrals", "channels", "engagement", "ab_variants"}


def test_the_html_tables_show_the_json_numbers(reports):
    doc = json.loads(reports["json"].read_text(encoding="utf-8"))
    html = reports["html"].read_text(encoding="utf-8")
    table = re.search(r'<table data-table="funnel">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]
    shown = [[unescape(c) for c in re.findall(r'<td data-col="[a-z_]+">(.*?)</td>', r)] for r in rows]
    want = [[r["channel"], *(_num(r[k]) for k in ("persons", "oa_touch", "mp_open", "registered", "converted"))]
            for r in doc["kpis"]["funnel"]]
    assert shown == want
    h = doc["headline"]
    assert _pct(h["cross_share_last_week"]) in html and _pct(h["d7_uplift"]) in html
    assert f"{_num(h['median_days_to_conversion'])} days" in html
    text = reports["table"].read_text(encoding="utf-8")
    assert f"{doc['kpis']['time_to_conversion'][0]['median_days']:.4f}" in text


def test_the_html_is_self_contained_and_escapes_lake_values(reports):
    html = reports["html"].read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html), "nothing loaded from the network"
    assert "<script>alert(1)</script>" not in html
    assert html.count("<script") == 1  # only the JSON data block
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in html  # the hostile channel shown as text
    assert {m for m in re.findall(r'data-chart="([a-z_]+)"', html)} == CHARTS


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def test_the_report_renders_in_headless_chromium_without_errors(reports):
    binary = _chromium()
    if binary is None:
        pytest.skip("no chromium binary on this machine (make browser installs the OS package)")
    sync_api = pytest.importorskip("playwright.sync_api")
    problems = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=binary, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("request", lambda r: problems.append(f"request {r.url}") if not r.url.startswith("file:") else None)
            page.goto(reports["html"].as_uri())
            charts = page.eval_on_selector_all("svg.chart", """els => els.map(e => ({
                name: e.dataset.chart, marks: e.querySelectorAll('.mark').length,
                width: e.getBoundingClientRect().width, height: e.getBoundingClientRect().height,
                painted: Array.from(e.querySelectorAll('.mark')).some(m => {
                    const b = m.getBBox(); return b.width > 0 && b.height > 0; })}))""")
            data = page.evaluate("JSON.parse(document.getElementById('kpi-data').textContent)")
        finally:
            browser.close()
    assert problems == []
    assert {c["name"] for c in charts} == CHARTS
    for c in charts:
        assert c["marks"] > 0 and c["width"] > 100 and c["height"] > 50 and c["painted"], c
    assert _strip_timing(data) == _strip_timing(json.loads(reports["json"].read_text(encoding="utf-8")))


def test_a_folder_without_a_lake_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["kpi", "--lake", str(tmp_path), "--no-progress"]) == 1
    assert "no journey data" in capsys.readouterr().err


def test_athena_without_a_workgroup_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ATHENA_WORKGROUP", raising=False)
    assert cli.main(["kpi", "--engine", "athena", "--database", "lake", "--no-progress"]) in (2,)
    assert "--workgroup" in capsys.readouterr().err


def test_a_bad_conversion_type_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["kpi", "--lake", str(tmp_path), "--conversion", "x';--", "--no-progress"]) == 2
    assert "event type" in capsys.readouterr().err
