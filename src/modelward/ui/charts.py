"""Inline SVG charts of the dashboard: lines over time and a heat map of drift per feature per time
bucket. Histograms and bars are the model card's (:mod:`modelward.governance.card_svg`). Pure text
out; no script, no font, nothing fetched. Every chart scales to its container (``viewBox`` and CSS
``width: 100%``), so nothing overflows a phone's screen."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from modelward.governance.card_svg import bar_chart, histogram

__all__ = ["COLORS", "bar_chart", "heat_map", "histogram", "line_chart"]

COLORS = ("#5b7db1", "#e08a2c", "#3a9a5b", "#8e5ba8", "#c0504d", "#6d6d6d")
_W, _H, _LEFT, _BOTTOM, _TOP = 560, 150, 46, 18, 8


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M")


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def line_chart(
    title: str,
    times: Sequence[float],
    series: Mapping[str, Sequence[float | None]],
    *,
    unit: str = "",
) -> str:
    """One line per series over ``times`` (UNIX seconds, the start of each bucket); ``None`` is a
    gap. An empty string when there is nothing to draw."""
    values = [v for vs in series.values() for v in vs if v is not None and math.isfinite(v)]
    if not times or not values:
        return ""
    top = max(values) if max(values) > 0 else 1.0  # all zero (no failures): a plain 0-1 axis
    span_x = (_W - _LEFT - 8) / max(len(times) - 1, 1)
    plot_h = _H - _BOTTOM - _TOP

    def xy(i: int, v: float) -> tuple[float, float]:
        return _LEFT + i * span_x, _TOP + plot_h * (1 - v / top)

    parts = [
        f'<svg class="chart line" role="img" viewBox="0 0 {_W} {_H}" preserveAspectRatio="xMinYMin meet" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{_esc(title)}">',
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_W}" y2="{_TOP + plot_h}" stroke="#999"/>',
        f'<text x="{_LEFT - 4}" y="{_TOP + 8}" class="axis" text-anchor="end">{_esc(_fmt(top))}{unit}</text>',
        f'<text x="{_LEFT - 4}" y="{_TOP + plot_h}" class="axis" text-anchor="end">0</text>',
        f'<text x="{_LEFT}" y="{_H - 4}" class="axis">{_clock(times[0])}</text>',
        f'<text x="{_W - 4}" y="{_H - 4}" class="axis" text-anchor="end">{_clock(times[-1])} UTC</text>',
    ]
    for n, (name, vs) in enumerate(series.items()):
        color = COLORS[n % len(COLORS)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(vs):
            if v is None or not math.isfinite(v):
                runs.append([])
                continue
            x, y = xy(i, v)
            runs[-1].append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{color}">'
                f"<title>{_esc(f'{name} {_clock(times[i])}: {_fmt(v)}{unit}')}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                parts.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{" ".join(run)}"/>'
                )
    parts.append("</svg>")
    legend = "".join(
        f'<span class="key"><i style="background:{COLORS[n % len(COLORS)]}"></i>{_esc(name)}</span>'
        for n, name in enumerate(series)
    )
    caption = f"<figcaption>{_esc(title)}</figcaption>"
    return f'<figure class="plot">{caption}{"".join(parts)}<div class="legend">{legend}</div></figure>'


def _heat(value: float | None, drifted: bool) -> str:
    if value is None:
        return "#eeeeee"
    if drifted:
        return "#c0504d"
    # A statistic's share of its threshold, from pale to amber: still within, but moving.
    share = max(0.0, min(value, 1.0))
    g = int(230 - 90 * share)
    return f"rgb(250,{g},{int(200 - 150 * share)})"


def heat_map(
    title: str,
    times: Sequence[float],
    rows: Mapping[str, Sequence[tuple[float | None, bool]]],
) -> str:
    """One row per feature, one cell per time bucket: each cell is (the statistic as a share of its
    threshold, drifted?). Drifted cells are red; cells without traffic grey."""
    if not times or not rows:
        return ""
    label_w, cell_h = 130, 16
    cell_w = (_W - label_w - 4) / len(times)
    height = cell_h * len(rows) + 16
    parts = [
        f'<svg class="chart heat" role="img" viewBox="0 0 {_W} {height}" preserveAspectRatio="xMinYMin meet" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{_esc(title)}">'
    ]
    for r, (feature, cells) in enumerate(rows.items()):
        y = r * cell_h
        parts.append(
            f'<text x="{label_w - 4}" y="{y + 12}" class="axis" text-anchor="end" '
            f'data-feature="{_esc(feature)}">{_esc(feature[:20])}</text>'
        )
        for i, (value, drifted) in enumerate(cells):
            shown = "no traffic" if value is None else f"{value:.2f} of threshold"
            state = "drifted" if drifted else "ok"
            parts.append(
                f'<rect x="{label_w + i * cell_w:.1f}" y="{y + 1}" width="{max(cell_w - 1, 1):.1f}" '
                f'height="{cell_h - 2}" fill="{_heat(value, drifted)}" class="cell {state}">'
                f"<title>{_esc(f'{feature} {_clock(times[i])}: {shown}, {state}')}</title></rect>"
            )
    bottom = cell_h * len(rows) + 12
    parts.append(f'<text x="{label_w}" y="{bottom}" class="axis">{_clock(times[0])}</text>')
    parts.append(
        f'<text x="{_W - 4}" y="{bottom}" class="axis" text-anchor="end">{_clock(times[-1])} UTC</text>'
    )
    parts.append("</svg>")
    return f'<figure class="plot"><figcaption>{_esc(title)}</figcaption>{"".join(parts)}</figure>'
