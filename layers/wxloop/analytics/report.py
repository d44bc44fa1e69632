"""The KPI report as text tables and as one self-contained HTML file (inline SVG, no script, no network).

The HTML embeds the report document itself (``<script type="application/json" id="kpi-data">``), so the
numbers on the page and the JSON output are the same data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

from wxloop.analytics import charts


def _pct(v: Any) -> str:
    return "–" if v is None else f"{v:.1%}"


def _num(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    return f"{v:,}" if isinstance(v, int) else f"{v:,.{digits}f}"


def _verdict(ok: bool | None) -> str:
    return {True: "meets target", False: "below target", None: "not enough data"}[ok]


# ------------------------------------------------------------------------------------------- text


def text_tables(report: dict[str, Any]) -> str:
    """Plain-text tables of every KPI (``--format table``)."""
    p, h = report["params"], report["headline"]
    lines = [f"wxloop KPIs {p['since']} .. {p['until']} ({p['timezone']}), engine {p['engine']}, "
             f"conversion = {p['conversion']}", "",
             f"cross-platform share, week of {h['cross_share_week']}: {_pct(h['cross_share_last_week'])} (target "
             f"{_pct(h['cross_share_target'])}: {_verdict(h['cross_share_meets_target'])})",
             f"median first touch -> conversion: {_num(h['median_days_to_conversion'])} days (target < "
             f"{h['days_target']:g}: {_verdict(h['conversion_meets_target'])})",
             f"D7 retention uplift cross vs single: {_pct(h['d7_uplift'])} (target > "
             f"{_pct(h['uplift_target'])}: {_verdict(h['uplift_meets_target'])})", ""]
    for name, rows in [*report["kpis"].items(), ("retention_uplift", report["derived"]["retention_uplift"]),
                       ("ab_comparison", report["derived"]["ab"])]:
        lines.append(f"== {name}")
        lines.extend(_table(rows))
        lines.append("")
    return "\n".join(lines)


def _table(rows: Sequence[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(no rows)"]
    cols = list(rows[0])
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    out = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    out += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return out


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return "" if v is None else str(v)


# ------------------------------------------------------------------------------------------- HTML

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;margin:24px auto;
max-width:980px;color:#1a202c;padding:0 16px}h1{font-size:24px}h2{font-size:18px;margin-top:32px;
border-bottom:1px solid #e2e8f0;padding-bottom:4px}.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{flex:1 1 260px;border:1px solid #e2e8f0;border-radius:8px;padding:12px}.card .v{font-size:28px;
font-weight:600}.ok{color:#276749}.bad{color:#c53030}.na{color:#718096}table{border-collapse:collapse;
width:100%;font-size:13px}th,td{padding:4px 8px;border-bottom:1px solid #edf2f7;text-align:right}
th:first-child,td:first-child{text-align:left}.note{color:#4a5568;font-size:13px}svg.chart{max-width:100%;
height:auto}
"""


def _status(ok: bool | None) -> str:
    cls = {True: "ok", False: "bad", None: "na"}[ok]
    return f'<span class="{cls}">{escape(_verdict(ok))}</span>'


def _html_table(name: str, rows: Sequence[dict[str, Any]], cols: Sequence[tuple[str, str, Any]]) -> str:
    if not rows:
        return f'<p class="note" data-table="{escape(name)}">No data in this window.</p>'
    head = "".join(f"<th>{escape(label)}</th>" for _, label, _ in cols)
    body = "".join("<tr>" + "".join(f'<td data-col="{escape(key)}">{escape(fmt(r.get(key)))}</td>'
                                    for key, _, fmt in cols) + "</tr>" for r in rows)
    return f'<table data-table="{escape(name)}"><tr>{head}</tr>{body}</table>'


def _cards(h: dict[str, Any]) -> str:
    cards = [(f"Cross-platform share (week of {h['cross_share_week'] or '–'})", _pct(h["cross_share_last_week"]),
              f"target ≥ {_pct(h['cross_share_target'])}", h["cross_share_meets_target"]),
             ("First touch → conversion (median)", f"{_num(h['median_days_to_conversion'])} days",
              f"target < {h['days_target']:g} days", h["conversion_meets_target"]),
             ("D7 retention uplift, cross vs single", _pct(h["d7_uplift"]),
              f"target > {_pct(h['uplift_target'])}", h["uplift_meets_target"])]
    return '<div class="cards">' + "".join(
        f'<div class="card"><div>{escape(t)}</div><div class="v">{escape(v)}</div>'
        f'<div>{escape(target)}: {_status(ok)}</div></div>' for t, v, target, ok in cards) + "</div>"


# long: one block per section of the report, in reading order
def _sections(report: dict[str, Any]) -> list[str]:
    k, d = report["kpis"], report["derived"]
    weeks = k["cross_platform_share"]
    ttc = (k["time_to_conversion"] or [{}])[0]
    curves = {seg: [(r["day"], r["rate"]) for r in k["retention"] if r["segment"] == seg]
              for seg in ("cross", "single")}
    steps = [(label, sum(int(r[key]) for r in k["funnel"])) for key, label in
             (("persons", "first touch"), ("oa_touch", "OA touch"), ("mp_open", "MP open"),
              ("registered", "registration / phone"), ("converted", "conversion"))]
    ref = (k["referrals"] or [{}])[0]
    return [
        "<h2>Cross-platform active share per week</h2>"
        '<p class="note">Persons active on both the Official Account and a Mini Program in the week, over all '
        "persons active in the week. The dashed line is the 40% target.</p>",
        charts.bar_chart("weekly_share", "Weekly cross-platform share",
                         [(w["week"], w["cross_share"]) for w in weeks], _pct,
                         target=report["headline"]["cross_share_target"], target_label="target", ymax=1.0),
        _html_table("cross_platform_share", weeks, [("week", "week from", str),
                    ("active_persons", "active", _num), ("cross_platform_persons", "cross-platform", _num),
                    ("cross_share", "share", _pct)]),
        "<h2>Retention: cross-platform vs single-platform</h2>"
        '<p class="note">Share of the first-touch cohort active again on day n; cross-platform = both platforms on '
        "the first day. Uplift = cross / single − 1 (target above 50%).</p>",
        charts.line_chart("retention", "Retention curves", {"cross-platform": curves["cross"],
                          "single-platform": curves["single"]}, _pct, "days since first touch"),
        _html_table("retention_uplift", d["retention_uplift"], [("day", "day", str),
                    ("cross_rate", "cross", _pct), ("single_rate", "single", _pct), ("uplift", "uplift", _pct),
                    ("cross_eligible", "cross cohort", _num), ("single_eligible", "single cohort", _num)]),
        "<h2>Funnel: OA touch → MP open → registration → conversion</h2>",
        charts.funnel_chart("funnel", "Funnel, all channels", steps),
        _html_table("funnel", k["funnel"], [("channel", "first-touch channel", str), ("persons", "persons", _num),
                    ("oa_touch", "OA touch", _num), ("mp_open", "MP open", _num),
                    ("registered", "registered", _num), ("converted", "converted", _num)]),
        "<h2>Time from first touch to conversion</h2>"
        f'<p class="note" data-summary="time_to_conversion">{_num(ttc.get("converted"))} of '
        f'{_num(ttc.get("persons"))} persons converted ({_pct(ttc.get("conversion_rate"))}); median '
        f'{_num(ttc.get("median_days"))} days, mean {_num(ttc.get("mean_days"))} days, '
        f'{_pct(ttc.get("share_under_7d"))} within 7 days.</p>',
        charts.bar_chart("conversion_histogram", "Days to conversion",
                         _histogram(k["conversion_histogram"]), lambda v: f"{v:,.0f}"),
        "<h2>Channels</h2>",
        _html_table("channels", k["channels"], [("channel", "channel", str), ("persons", "new persons", _num),
                    ("cross_platform", "cross-platform", _num), ("registered", "registered", _num),
                    ("converted", "converted", _num), ("conversion_rate", "conversion", _pct),
                    ("mean_days_to_convert", "mean days to convert", _num)]),
        "<h2>Referrals</h2>"
        f'<p class="note" data-summary="referrals">{_num(ref.get("inviters"))} inviters brought '
        f'{_num(ref.get("invitees"))} invitees; {_num(ref.get("converted_invitees"))} converted '
        f'(invite conversion {_pct(ref.get("invite_conversion"))}). K-factor {_num(ref.get("k_factor"), 3)} '
        f'over {_num(ref.get("active_persons"))} active persons.</p>',
        "<h2>Engagement score</h2>"
        '<p class="note">1 point per OA action, 2 per Mini Program action, 5 per active day, in the window.</p>',
        charts.bar_chart("engagement", "Engagement score distribution",
                         [(r["label"], r["persons"]) for r in k["engagement"]], lambda v: f"{v:,.0f}"),
        "<h2>A/B variants</h2>"
        '<p class="note">Conversion after the first exposure, 95% Wilson interval; each variant against the first '
        "(two-sided z-test, 5%).</p>",
        _html_table("ab", d["ab"], [("experiment", "experiment", str), ("variant", "variant", str),
                    ("exposed", "exposed", _num), ("converted", "converted", _num), ("rate", "conversion", _pct),
                    ("ci_low", "CI low", _pct), ("ci_high", "CI high", _pct), ("p_value", "p", lambda v: "–" if v is None else f"{v:.3g}"),
                    ("significant", "significant", lambda v: "–" if v is None else "yes" if v else "no")]),
    ]


def _histogram(rows: Sequence[dict[str, Any]]) -> list[tuple[str, float]]:
    """Every day from 0 to the last one with converters (empty days as 0); 30 means 30 days or more."""
    counts = {int(r["days"]): r["persons"] for r in rows}
    last = max(counts, default=-1)
    return [(f"{d}{'+' if d == 30 else ''}", counts.get(d, 0)) for d in range(last + 1)]


def html(report: dict[str, Any]) -> str:
    """The report as one HTML document: headline cards, charts, tables, and the data as JSON."""
    p = report["params"]
    # no '<', '>' or '&' inside the script element: lake values cannot end it or switch the HTML parser's state
    data = (json.dumps(report, ensure_ascii=False, sort_keys=True)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    title = f"wxloop KPIs {p['since']} – {p['until']}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{escape(title)}</h1><p class=\"note\">Days in {escape(p['timezone'])}; conversion = "
            f"<code>{escape(p['conversion'])}</code>, registration = <code>{escape(', '.join(p['registration']))}"
            f"</code>; engine {escape(p['engine'])}.</p>"
            + _cards(report["headline"]) + "".join(_sections(report))
            + f'<script type="application/json" id="kpi-data">{data}</script></body></html>\n')
