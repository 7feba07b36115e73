"""A drift report as one self-contained HTML page: the verdict, a table of every feature's statistic,
and reference vs current histograms per feature and model output.

Pure: a :class:`~modelward.drift.DriftReport` and :class:`Histogram` values in, HTML text out. The
page loads nothing from anywhere (no script, no external stylesheet, no font): the charts are inline
SVG bars, so the file can be mailed, archived as a CI artifact or opened offline. Histograms come from
profiles (:func:`profile_histograms`: a live window against the reference, on the reference's bin edges
and categories) or from raw samples binned on the reference's quantile edges (the two-file mode).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Literal

from modelward.drift._feature_profile import CategoricalProfile, FeatureProfile, NumericProfile
from modelward.drift._judge import DriftReport, FeatureDrift
from modelward.drift.profile import DatasetProfile

__all__ = ["MAX_BARS", "Histogram", "numeric_bin_labels", "profile_histograms", "render_html"]

MAX_BARS = 30
_W, _H, _PAD = 560, 150, 4
_REFERENCE, _CURRENT = "#5b7db1", "#e07b39"
_LABELLED_BARS = 8


@dataclass(frozen=True, slots=True)
class Histogram:
    """Reference and current counts over the same bins, with a label per bin."""

    feature: str
    kind: Literal["numeric", "categorical"]
    bins: tuple[str, ...]
    reference: tuple[int, ...]
    current: tuple[int, ...]

    def __post_init__(self) -> None:
        if not len(self.bins) == len(self.reference) == len(self.current):
            raise ValueError(f"histogram of '{self.feature}': bins and counts differ in length")

    def trimmed(self) -> Histogram:
        """Without the bins empty on both sides, and with at most :data:`MAX_BARS` bars (numeric bins
        are kept in order; categories beyond the limit are summed into one bar)."""
        keep = [i for i, (r, c) in enumerate(zip(self.reference, self.current, strict=True)) if r or c]
        bins = [self.bins[i] for i in keep]
        ref = [self.reference[i] for i in keep]
        cur = [self.current[i] for i in keep]
        if self.kind == "categorical" and len(bins) > MAX_BARS:
            rest = len(bins) - MAX_BARS + 1
            bins = [*bins[: MAX_BARS - 1], f"({rest} more)"]
            ref = [*ref[: MAX_BARS - 1], sum(ref[MAX_BARS - 1 :])]
            cur = [*cur[: MAX_BARS - 1], sum(cur[MAX_BARS - 1 :])]
        return Histogram(self.feature, self.kind, tuple(bins), tuple(ref), tuple(cur))


def _num(x: float) -> str:
    return f"{x:.4g}"


def numeric_bin_labels(edges: Sequence[float]) -> tuple[str, ...]:
    """Labels of the bins of :class:`~modelward.drift.NumericProfile` on ``edges``."""
    e = list(edges)
    if not e:
        return ("all values",)
    if len(e) == 1:
        return (f"< {_num(e[0])}", f"= {_num(e[0])}", f"> {_num(e[0])}")
    inner = [f"[{_num(a)}, {_num(b)})" for a, b in pairwise(e[:-1])]
    inner.append(f"[{_num(e[-2])}, {_num(e[-1])}]")
    return (f"< {_num(e[0])}", *inner, f"> {_num(e[-1])}")


def _feature_histogram(name: str, ref: FeatureProfile, cur: FeatureProfile) -> Histogram | None:
    if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile) and ref.edges == cur.edges:
        return Histogram(name, "numeric", numeric_bin_labels(ref.edges), ref.counts, cur.counts)
    if isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile):
        keys = list(ref.categories)
        if keys != list(cur.categories):
            return None
        return Histogram(
            name,
            "categorical",
            (*keys, "(other)"),
            (*ref.categories.values(), ref.other),
            (*(cur.categories[k] for k in keys), cur.other),
        )
    return None


def profile_histograms(reference: DatasetProfile, current: DatasetProfile) -> dict[str, Histogram]:
    """Histograms of every feature, and of the predictions ("prediction", and "score" or the
    regression's "prediction"), from a reference and a profile observed on it."""
    out: dict[str, Histogram] = {}
    for name, ref in reference.features.items():
        cur = current.features.get(name)
        made = _feature_histogram(name, ref, cur) if cur is not None else None
        if made is not None:
            out[name] = made
    rp, cp = reference.prediction, current.prediction
    if rp is not None and cp is not None:
        scores = "score" if rp.task == "classification" else "prediction"
        for output, r, c in (("prediction", rp.labels, cp.labels), (scores, rp.scores, cp.scores)):
            if r is not None and c is not None and (made := _feature_histogram(output, r, c)) is not None:
                out[f"output:{output}"] = made
    return out


def _shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def _svg(h: Histogram) -> str:
    h = h.trimmed()
    if not h.bins:
        return '<p class="muted">no values on either side</p>'
    ref, cur = _shares(h.reference), _shares(h.current)
    top = max([*ref, *cur, 1e-12])
    slot = (_W - 2 * _PAD) / len(h.bins)
    bar = max(slot / 2 - 1, 1.0)
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {_W} {_H + 16}" width="{_W}" height="{_H + 16}" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{html.escape(h.feature)}: reference vs current">',
        f'<line x1="0" y1="{_H}" x2="{_W}" y2="{_H}" stroke="#999" stroke-width="1"/>',
    ]
    for i, label in enumerate(h.bins):
        x = _PAD + i * slot
        for j, (share, color, side) in enumerate(
            ((ref[i], _REFERENCE, "reference"), (cur[i], _CURRENT, "current"))
        ):
            height = (_H - 8) * share / top
            tip = f"{label}: {side} {share:.1%} ({(h.reference, h.current)[j][i]:,})"
            parts.append(
                f'<rect x="{x + j * (bar + 1):.1f}" y="{_H - height:.1f}" width="{bar:.1f}" '
                f'height="{height:.1f}" fill="{color}"><title>{html.escape(tip)}</title></rect>'
            )
    if len(h.bins) <= _LABELLED_BARS:  # few bars: name each one (categories, discrete values)
        room = max(int(slot / 6.5), 3)
        for i, label in enumerate(h.bins):
            text = label if len(label) <= room else label[: room - 1] + "\u2026"
            x = _PAD + (i + 0.5) * slot
            anchor = f'x="{x:.1f}" y="{_H + 13}" class="axis" text-anchor="middle"'
            parts.append(f"<text {anchor}>{html.escape(text)}</text>")
    else:  # many bars: the outermost bins say where the axis starts and ends
        first, last = html.escape(h.bins[0]), html.escape(h.bins[-1])
        parts.append(f'<text x="{_PAD}" y="{_H + 13}" class="axis">{first}</text>')
        parts.append(f'<text x="{_W - _PAD}" y="{_H + 13}" class="axis" text-anchor="end">{last}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    return _num(x) if math.isfinite(x) else str(x)


def _row(f: FeatureDrift, anchor: str) -> str:
    cells = [
        f'<a href="#{anchor}">{html.escape(f.feature)}</a>',
        f.kind,
        f.method,
        _fmt(f.statistic),
        ("p &lt; " if f.method in ("ks", "chi2") else "&gt; ") + _fmt(f.threshold),
        _fmt(f.p_value),
        f"{f.n_current:,}",
        '<span class="bad">drifted</span>' if f.drifted else '<span class="ok">stable</span>',
        html.escape(f.reason),
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _section(f: FeatureDrift, h: Histogram | None, anchor: str) -> str:
    verdict = '<span class="bad">drifted</span>' if f.drifted else '<span class="ok">stable</span>'
    chart = _svg(h) if h is not None else '<p class="muted">no histogram for this feature</p>'
    return (
        f'<section id="{anchor}"><h3>{html.escape(f.feature)} {verdict}</h3>'
        f'<p class="muted">{html.escape(f.reason)}</p>{chart}</section>'
    )


_HEAD = (
    "feature",
    "kind",
    "method",
    "statistic",
    "drift when",
    "p-value",
    "current values",
    "verdict",
    "reason",
)
_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em;margin-bottom:.2em}
h2{margin-top:1.6em}
h3{margin:.2em 0}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4}
.bad{color:#b00020;font-weight:600}
.ok{color:#1b7f3b;font-weight:600}
.muted{color:#666;margin:.2em 0 .4em}
.verdict{font-size:1.2em;padding:.6em 1em;border-radius:6px;background:#f4f4f4;display:inline-block}
section{margin:1.2em 0;padding-top:.4em;border-top:1px solid #eee}
.axis{font-size:11px;fill:#555}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}
dt{color:#666}
dd{margin:0}
"""


def render_html(
    report: DriftReport,
    histograms: Mapping[str, Histogram] | None = None,
    *,
    title: str = "Drift report",
    context: Mapping[str, str] | None = None,
    generated_at: datetime | None = None,
) -> str:
    """The report as a complete HTML document. ``histograms`` maps feature names (and
    ``"output:prediction"``, ``"output:score"`` for the model's outputs) to their histograms;
    ``context`` lines (model, window, files) are shown under the title."""
    hist = dict(histograms or {})
    when = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    drifted = len(report.drifted_features)
    verdict = (
        f'<p class="verdict"><span class="{"bad" if report.dataset_drift else "ok"}">'
        f"{'Dataset drift' if report.dataset_drift else 'No dataset drift'}</span>: "
        f"{drifted} of {len(report.features)} features drifted ({report.share_drifted:.0%}; "
        f"the data set drifts at {report.threshold_share:.0%})"
    )
    if report.prediction:
        verdict += (
            f' &middot; prediction drift: <span class="{"bad" if report.prediction_drift else "ok"}">'
            f"{'yes' if report.prediction_drift else 'no'}</span>"
        )
    verdict += "</p>"
    lines = dict(context or {}) | {"generated": when}
    facts = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in lines.items())
    head = "".join(f"<th>{h}</th>" for h in _HEAD)
    features = [(f, f"f-{i}", hist.get(f.feature)) for i, f in enumerate(report.features)]
    outputs = [(p, f"p-{i}", hist.get(f"output:{p.feature}")) for i, p in enumerate(report.prediction)]
    body = [
        f"<h1>{html.escape(title)}</h1><dl>{facts}</dl>{verdict}",
        '<p class="legend"><span style="background:' + _REFERENCE + '"></span>reference'
        '<span style="background:' + _CURRENT + '"></span>current (shares of non-missing values)</p>',
        f"<h2>Features</h2><table><thead><tr>{head}</tr></thead><tbody>",
        *(_row(f, a) for f, a, _ in features),
        "</tbody></table>",
    ]
    if outputs:
        body += [
            f"<h2>Predictions</h2><table><thead><tr>{head}</tr></thead><tbody>",
            *(_row(p, a) for p, a, _ in outputs),
            "</tbody></table>",
        ]
    body.append("<h2>Histograms</h2>")
    body += [_section(f, h, a) for f, a, h in [*outputs, *features]]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
