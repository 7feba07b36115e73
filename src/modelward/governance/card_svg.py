"""Inline SVG charts of a model card: horizontal bars (importance, selection rates per group) and a
histogram (a reference feature). Pure text out; no script, no font, nothing fetched."""

from __future__ import annotations

import html
from collections.abc import Sequence

__all__ = ["bar_chart", "histogram"]

_W = 560
_ROW = 18
_LABEL_W = 180
_BAR = "#5b7db1"
_FLAG = "#c0504d"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _short(label: str, room: int) -> str:
    return label if len(label) <= room else label[: room - 1] + "\u2026"


def bar_chart(
    title: str,
    rows: Sequence[tuple[str, float]],
    *,
    flagged: Sequence[str] = (),
    fmt: str = "{:.3g}",
    reference_line: float | None = None,
) -> str:
    """Horizontal bars, one per (label, value), scaled to the largest |value|; ``flagged`` labels are
    drawn in a second colour; ``reference_line`` (a value) is drawn as a dashed line."""
    if not rows:
        return ""
    top = max([abs(v) for _, v in rows] + [reference_line or 0.0, 1e-12])
    span = _W - _LABEL_W - 60
    height = _ROW * len(rows) + 6
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {_W} {height}" width="{_W}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{_esc(title)}">'
    ]
    for i, (label, value) in enumerate(rows):
        y = 3 + i * _ROW
        width = span * abs(value) / top
        color = _FLAG if label in flagged else _BAR
        text = fmt.format(value)
        parts.append(
            f'<text x="{_LABEL_W - 6}" y="{y + 12}" class="axis" text-anchor="end">'
            f"{_esc(_short(label, 30))}</text>"
            f'<rect x="{_LABEL_W}" y="{y + 2}" width="{width:.1f}" height="{_ROW - 5}" fill="{color}">'
            f"<title>{_esc(f'{label}: {text}')}</title></rect>"
            f'<text x="{_LABEL_W + width + 4:.1f}" y="{y + 12}" class="axis">{_esc(text)}</text>'
        )
    if reference_line is not None:
        x = _LABEL_W + span * abs(reference_line) / top
        parts.append(
            f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height}" stroke="#555" stroke-dasharray="4 3"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def histogram(title: str, bins: Sequence[str], counts: Sequence[int]) -> str:
    """Vertical bars of ``counts`` over ``bins``, as shares of the total; the end bins are labelled."""
    if not bins or not sum(counts):
        return ""
    width, height, pad = 280, 80, 2
    total = sum(counts)
    top = max(counts) / total
    slot = (width - 2 * pad) / len(bins)
    parts = [
        f'<svg class="chart hist" role="img" viewBox="0 0 {width} {height + 14}" width="{width}" '
        f'height="{height + 14}" xmlns="http://www.w3.org/2000/svg" aria-label="{_esc(title)}">',
        f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#999" stroke-width="1"/>',
    ]
    for i, (label, n) in enumerate(zip(bins, counts, strict=True)):
        share = n / total
        bar = (height - 4) * share / top
        parts.append(
            f'<rect x="{pad + i * slot + 0.5:.1f}" y="{height - bar:.1f}" width="{max(slot - 1, 1):.1f}" '
            f'height="{bar:.1f}" fill="{_BAR}"><title>{_esc(f"{label}: {n:,} ({share:.1%})")}</title></rect>'
        )
    first, last = _esc(_short(bins[0], 20)), _esc(_short(bins[-1], 20))
    parts.append(f'<text x="{pad}" y="{height + 11}" class="axis">{first}</text>')
    if len(bins) > 1:
        parts.append(
            f'<text x="{width - pad}" y="{height + 11}" class="axis" text-anchor="end">{last}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
