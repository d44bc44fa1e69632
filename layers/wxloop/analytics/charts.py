"""Inline SVG charts for the KPI report: no script, no fonts or files from outside, every label escaped.

Each chart is a ``<svg class="chart" data-chart=NAME>`` with at least one mark, or a "no data" note.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

W, H = 640, 260
PAD_L, PAD_R, PAD_T, PAD_B = 52, 16, 16, 40
COLORS = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#c53030")


def _svg(name: str, title: str, body: str) -> str:
    return (f'<svg class="chart" data-chart="{escape(name)}" role="img" aria-label="{escape(title)}" '
            f'viewBox="0 0 {W} {H}" width="{W}" height="{H}" xmlns="http://www.w3.org/2000/svg">'
            f"<title>{escape(title)}</title>{body}</svg>")


def _empty(name: str, title: str) -> str:
    return _svg(name, title, f'<text class="empty" x="{W / 2}" y="{H / 2}" text-anchor="middle">no data in this '
                             "window</text>")


def _axis(ymax: float, fmt: Callable[[float], str]) -> str:
    out = []
    for i in range(5):
        v = ymax * i / 4
        y = _y(v, ymax)
        out.append(f'<line x1="{PAD_L}" y1="{y:.1f}" x2="{W - PAD_R}" y2="{y:.1f}" stroke="#e2e8f0"/>'
                   f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{escape(fmt(v))}</text>')
    return "".join(out)


def nice_max(top: float) -> float:
    """The smallest 'round' axis top (1 to 10 in easy steps, times a power of ten, times 4 ticks) at or above top."""
    if top <= 0:
        return 1.0
    step = top / 4
    power = 10 ** math.floor(math.log10(step))
    return 4 * next(m * power for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * power >= step)


def _y(v: float, ymax: float) -> float:
    return H - PAD_B - (v / ymax if ymax else 0) * (H - PAD_T - PAD_B)


def bar_chart(name: str, title: str, bars: Sequence[tuple[str, float]], fmt: Callable[[float], str],
              *, target: float | None = None, target_label: str = "", ymax: float | None = None) -> str:
    """Vertical bars (label, value), an optional dashed target line."""
    if not bars:
        return _empty(name, title)
    ymax = ymax or nice_max(max([v for _, v in bars] + [target or 0]))
    step = (W - PAD_L - PAD_R) / len(bars)
    every = max(1, len(bars) // 12)
    marks = [_axis(ymax, fmt)]
    for i, (label, v) in enumerate(bars):
        x, y = PAD_L + i * step + step * 0.15, _y(v, ymax)
        marks.append(f'<rect class="mark" x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" '
                     f'height="{H - PAD_B - y:.1f}" fill="{COLORS[0]}"><title>{escape(label)}: {escape(fmt(v))}'
                     "</title></rect>")
        if i % every == 0:
            marks.append(f'<text x="{x + step * 0.35:.1f}" y="{H - PAD_B + 14}" text-anchor="middle" '
                         f'font-size="10">{escape(label)}</text>')
    if target is not None:
        ty = _y(target, ymax)
        marks.append(f'<line class="target" x1="{PAD_L}" y1="{ty:.1f}" x2="{W - PAD_R}" y2="{ty:.1f}" '
                     f'stroke="{COLORS[4]}" stroke-dasharray="6 4" stroke-width="2"/>'
                     f'<text x="{W - PAD_R}" y="{ty - 5:.1f}" text-anchor="end" font-size="11" fill="{COLORS[4]}">'
                     f"{escape(target_label)}</text>")
    return _svg(name, title, "".join(marks))


def line_chart(name: str, title: str, series: dict[str, Sequence[tuple[float, float]]],
               fmt: Callable[[float], str], x_label: str = "") -> str:
    """One polyline per series over a shared numeric x axis, with a legend."""
    points = [p for s in series.values() for p in s]
    if not points:
        return _empty(name, title)
    xmin, xmax = min(x for x, _ in points), max(x for x, _ in points)
    ymax = nice_max(max(y for _, y in points))
    span = (xmax - xmin) or 1

    def px(x: float) -> float:
        return PAD_L + (x - xmin) / span * (W - PAD_L - PAD_R)

    marks = [_axis(ymax, fmt)]
    for i, (label, pts) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        coords = " ".join(f"{px(x):.1f},{_y(y, ymax):.1f}" for x, y in pts)
        if pts:
            marks.append(f'<polyline class="mark" points="{coords}" fill="none" stroke="{color}" stroke-width="2">'
                         f"<title>{escape(label)}</title></polyline>")
        marks.append(f'<rect x="{PAD_L + 10 + i * 150}" y="{PAD_T}" width="12" height="12" fill="{color}"/>'
                     f'<text x="{PAD_L + 27 + i * 150}" y="{PAD_T + 10}" font-size="12">{escape(label)}</text>')
    for x in (xmin, (xmin + xmax) / 2, xmax):
        marks.append(f'<text x="{px(x):.1f}" y="{H - PAD_B + 14}" text-anchor="middle" font-size="10">'
                     f"{escape(f'{x:g}')}</text>")
    marks.append(f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle" font-size="11">{escape(x_label)}</text>')
    return _svg(name, title, "".join(marks))


def funnel_chart(name: str, title: str, steps: Sequence[tuple[str, int]]) -> str:
    """Horizontal bars, one per funnel step, with the count and the share of the first step."""
    if not steps or not steps[0][1]:
        return _empty(name, title)
    first = steps[0][1]
    row = (H - PAD_T - 10) / len(steps)
    width = W - 170 - 120  # room for the count beside the longest bar
    marks = []
    for i, (label, n) in enumerate(steps):
        y = PAD_T + i * row
        w = max(1.0, width * n / first)
        marks.append(f'<text x="160" y="{y + row * 0.55:.1f}" text-anchor="end" font-size="12">{escape(label)}</text>'
                     f'<rect class="mark" x="170" y="{y:.1f}" width="{w:.1f}" height="{row * 0.7:.1f}" '
                     f'fill="{COLORS[i % len(COLORS)]}"/>'
                     f'<text x="{174 + w:.1f}" y="{y + row * 0.5:.1f}" font-size="11">{n:,} '
                     f"({n / first:.0%})</text>")
    return _svg(name, title, "".join(marks))
