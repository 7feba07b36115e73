"""A model card as one self-contained HTML page: no script, no remote stylesheet, font or image;
charts are inline SVG (:mod:`modelward.governance.card_svg`) and the page prints on paper as read.

Every figure sits in an element with ``data-key`` (what it is) and ``data-value`` (the exact value),
so tools and tests can read the card back without parsing formatted text.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from modelward.governance.card_svg import bar_chart, histogram

if TYPE_CHECKING:
    from modelward.governance.card import CardSection, ModelCard

__all__ = ["render_html"]

_CSS = (
    'body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;'
    "max-width:960px;margin:2em auto;padding:0 1em}"
    " h1{font-size:1.6em;margin-bottom:.2em}"
    "h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}"
    " h3{font-size:1em;margin:1em 0 .3em}.meta{color:#555}"
    ".missing{color:#8a5a00;background:#fff7e0;padding:.4em .6em}"
    " table{border-collapse:collapse;margin:.4em 0}"
    "td,th{border:1px solid #ddd;padding:2px 8px;text-align:left;vertical-align:top}"
    " th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".pass{color:#1b7f3b}.fail{color:#b42318;font-weight:600}.skip{color:#667085} .flag{color:#b42318}"
    "code{font-size:.92em;word-break:break-all}"
    ".chart text.axis,.chart .axis{font:10px sans-serif;fill:#444}"
    " .hists{display:flex;flex-wrap:wrap;gap:.4em 1.2em}.hists figure{margin:0}"
    ".hists figcaption{font-size:.85em;color:#444} nav ol{columns:2}"
    " @media print{body{margin:0;max-width:none;font-size:11pt}nav{display:none}"
    "section{break-inside:avoid-page} h2{break-after:avoid}svg{max-width:100%}"
    ".missing{border:1px solid #c9a227}}"
    # On a phone: long hashes and paths wrap, a wide table scrolls inside itself, never the page.
    " td{overflow-wrap:anywhere}svg{max-width:100%;height:auto}"
    " @media screen and (max-width:640px){table{display:block;overflow-x:auto;max-width:100%}"
    "nav ol{columns:1}}"
)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _cell(value: Any, key: str | None = None, shown: str | None = None) -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    attrs = ' class="n"' if numeric else ""
    if key is not None:
        exact = json.dumps(value) if not isinstance(value, str) else value
        attrs += f' data-key="{_e(key)}" data-value="{_e(exact)}"'
    return f"<td{attrs}>{_e(shown if shown is not None else _fmt(value))}</td>"


def _table(headers: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _pairs(items: Sequence[tuple[str, Any, str | None]]) -> str:
    rows = [f"<tr><th>{_e(label)}</th>{_cell(value, key)}</tr>" for label, value, key in items]
    return f"<table><tbody>{''.join(rows)}</tbody></table>"


def _intended_use(d: dict[str, Any]) -> str:
    out = []
    for key, title in (("intended_use", "Intended use"), ("limitations", "Limitations")):
        text = d.get(key)
        body = _e(text) if text else "not recorded"
        out.append(f'<h3>{title}</h3><p data-key="notes.{key}">{body}</p>')
    out.append(f'<p class="meta">last edited by {_e(d.get("updated_by"))} at {_e(d.get("updated_at"))}</p>')
    return "".join(out)


def _lineage(d: dict[str, Any]) -> str:
    dvc, git, span = d.get("dvc") or {}, d.get("git") or {}, d.get("time_range")
    items: list[tuple[str, Any, str | None]] = [
        ("dataset sha256", d.get("dataset_sha256"), "lineage.dataset_sha256"),
        ("dataset path", d.get("dataset_path"), "lineage.dataset_path"),
        ("rows", d.get("rows"), "lineage.rows"),
        ("features", len(d.get("features") or []), "lineage.features"),
        ("target", d.get("target"), "lineage.target"),
        ("git commit", git.get("commit") or "not in a git repository", "lineage.git_commit"),
    ]
    if git:
        items.append(
            ("git branch / dirty", f"{git.get('branch') or 'detached'} / {_fmt(git.get('dirty'))}", None)
        )
    items.append(
        (
            "DVC pointer",
            f"{dvc.get('file')} md5 {dvc.get('md5')}" if dvc else "not tracked by DVC",
            "lineage.dvc",
        )
    )
    if span:
        items.append(
            (
                "time range",
                f"{span.get('start')} to {span.get('end')} ({span.get('column')})",
                "lineage.time_range",
            )
        )
    else:
        items.append(("time range", "no time column in the training data", "lineage.time_range"))
    items.append(("MLflow run", d.get("run_id"), "lineage.run_id"))
    if federated := d.get("federation"):
        from modelward.registry.federation import Federation

        line = Federation.from_mapping(federated).describe()
        items.insert(0, ("federated training", line, "lineage.federation"))
    return _pairs(items)


def _profile(d: dict[str, Any]) -> str:
    lines, charts = [], []
    for name, f in d.get("features", {}).items():
        if f.get("kind") == "numeric":
            detail = f"min {_fmt(f.get('min'))}, mean {_fmt(f.get('mean'))}, max {_fmt(f.get('max'))}"
        else:
            detail = f"{_fmt(f.get('categories'))} categories"
        rate = f.get("missing_rate")
        lines.append(
            f"<tr><td>{_e(name)}</td><td>{_e(f.get('kind'))}</td>"
            f"{_cell(rate, f'profile.{name}.missing_rate', f'{rate or 0:.1%}')}<td>{_e(detail)}</td></tr>"
        )
        hist = f.get("histogram") or {}
        svg = histogram(f"reference histogram of {name}", hist.get("bins", []), hist.get("counts", []))
        if svg:
            charts.append(f"<figure>{svg}<figcaption>{_e(name)}</figcaption></figure>")
    rows = d.get("rows")
    rows_line = (
        f'<p><span data-key="profile.rows" data-value="{_e(rows)}">{_fmt(rows)}</span> reference rows</p>'
    )
    table = _table(["feature", "kind", "missing", "summary"], lines)
    return rows_line + table + f'<div class="hists">{"".join(charts)}</div>'


def _metrics(d: dict[str, Any]) -> str:
    rows = [f"<tr><td>{_e(k)}</td>{_cell(v, f'metrics.{k}')}</tr>" for k, v in d["metrics"].items()]
    return _table(["metric", "value"], rows) + f'<p class="meta">from MLflow run {_e(d.get("run_id"))}</p>'


def _verdict(v: Any) -> str:
    text = {True: "passed", False: "failed"}.get(v, _fmt(v)) if isinstance(v, bool) else _fmt(v)
    good = v is True or str(v).lower() in {"pass", "passed", "ok"}
    kind = "pass" if good else "skip" if str(v).lower() in {"skipped", "n/a"} else "fail"
    return f'<span class="{kind}">{_e(text)}</span>'


def _gates(d: dict[str, Any]) -> str:
    rows = [
        f"<tr><td>{_e(g.get('name'))}</td>{_cell(g.get('value'), 'gates.' + str(g.get('name')) + '.value')}"
        f"{_cell(g.get('threshold'))}"
        f'<td data-key="gates.{_e(g.get("name"))}.verdict">{_verdict(g.get("verdict"))}</td>'
        f"<td>{_e(g.get('detail'))}</td></tr>"
        for g in d["gates"]
    ]
    against = d.get("against")
    head = f'<p>overall: <span data-key="gates.passed">{_verdict(d.get("passed"))}</span>'
    head += f" (against version {_e(against)})" if against else " (no champion to compare with)"
    head += f"; run {_e(d.get('created_at'))} by {_e(d.get('actor'))}</p>"
    return head + _table(["gate", "value", "threshold", "verdict", "detail"], rows)


def _fairness(d: dict[str, Any]) -> str:
    out = [f'<p class="meta">audit of {_e(d.get("created_at"))} by {_e(d.get("actor"))}</p>']
    for f in d["features"]:
        name = str(f.get("feature"))
        ff = f.get("four_fifths") or {}
        out.append(f"<h3>{_e(name)}</h3>")
        out.append(
            _pairs(
                [
                    (
                        "demographic parity difference",
                        f.get("demographic_parity_difference"),
                        f"fairness.{name}.dpd",
                    ),
                    ("demographic parity ratio", f.get("demographic_parity_ratio"), f"fairness.{name}.dpr"),
                    ("equalized odds difference", f.get("equalized_odds_difference"), f"fairness.{name}.eod"),
                    ("four-fifths rule passed", ff.get("passed"), f"fairness.{name}.four_fifths"),
                ]
            )
        )
        rows, bars, small = [], [], []
        for g in f["groups"]:
            group = str(g.get("group"))
            if g.get("small"):
                small.append(group)
            cells = "".join(
                _cell(g.get(k), f"fairness.{name}.{group}.{k}")
                for k in ("count", "selection_rate", "accuracy", "tpr", "fpr", "auc")
            )
            flag = ' <span class="flag">(small group: not judged)</span>' if g.get("small") else ""
            rows.append(f"<tr><td>{_e(group)}{flag}</td>{cells}</tr>")
            if isinstance(g.get("selection_rate"), int | float):
                bars.append((group, float(g["selection_rate"])))
        out.append(_table(["group", "count", "selection rate", "accuracy", "TPR", "FPR", "AUC"], rows))
        best = max((v for _, v in bars), default=None)
        out.append(
            bar_chart(
                f"selection rate per {name} group",
                bars,
                flagged=small,
                reference_line=None if best is None else 0.8 * best,
            )
        )
        if bars:
            out.append('<p class="meta">dashed line: four fifths of the highest selection rate</p>')
    return "".join(out)


def _calibration(d: dict[str, Any]) -> str:
    items = [
        ("rows", d.get("n"), "calibration.n"),
        ("source", d.get("source"), "calibration.source"),
        ("accuracy", d.get("accuracy"), "calibration.accuracy"),
        ("mean confidence", d.get("mean_confidence"), "calibration.mean_confidence"),
        ("expected calibration error (top label)", d.get("ece"), "calibration.ece"),
        ("class-wise ECE", d.get("classwise_ece"), "calibration.classwise_ece"),
    ]
    rows = [
        f"<tr><td>{_fmt(b['lower'])}-{_fmt(b['upper'])}</td>{_cell(b['n'])}{_cell(b['mean_score'])}{_cell(b['frequency'])}</tr>"
        for b in d.get("reliability", [])
        if b.get("n")
    ]
    return (
        _pairs(items)
        + "<h3>Reliability (top label)</h3>"
        + _table(["confidence", "rows", "mean confidence", "share correct"], rows)
    )


def _importance(d: dict[str, Any]) -> str:
    rows = [(str(r["feature"]), float(r["importance"])) for r in d["features"]]
    table = _table(
        ["feature", "importance"],
        [f"<tr><td>{_e(n)}</td>{_cell(v, f'importance.{n}')}</tr>" for n, v in rows],
    )
    return (
        f"<p>{_e(d.get('source'))}; metric {_e(d.get('metric'))}</p>"
        + bar_chart("global feature importance", rows)
        + table
    )


def _live(d: dict[str, Any]) -> str:
    drift, perf = d.get("drift"), d.get("performance")
    items: list[tuple[str, Any, str | None]] = [
        ("window", f"{d.get('since')} to {d.get('until')}", None),
        ("served rows", d.get("rows"), "live.rows"),
        (
            "dataset drift",
            drift.get("dataset_drift") if drift else "no live profile in the window",
            "live.dataset_drift",
        ),
    ]
    if drift:
        items.append(("drifted features", ", ".join(drift.get("drifted_features") or []) or "none", None))
    if perf:
        items.append(("predictions / labelled", f"{perf['n_predictions']:,} / {perf['n_labelled']:,}", None))
        items += [(f"live {k}", v, f"live.metrics.{k}") for k, v in perf.get("metrics", {}).items()]
        items += [
            (
                f"estimated {k}" + ("" if e.get("trusted") else " (not trusted)"),
                e.get("value"),
                f"live.estimated.{k}",
            )
            for k, e in perf.get("estimated", {}).items()
        ]
    else:
        items.append(("performance", "no predictions logged in the window", None))
    alerts = d.get("alerts") or []
    rows = [
        f"<tr><td>{_e(a['since'])}</td><td>{_e(a['severity'])}</td><td>{_e(a['rule'])}</td><td>{_e(a['message'])}</td></tr>"
        for a in alerts
    ]
    tail = _table(["since", "severity", "rule", "message"], rows) if rows else "<p>no alert firing</p>"
    return _pairs(items) + "<h3>Firing alerts</h3>" + tail


def _history(d: dict[str, Any]) -> str:
    rows = []
    for e in d["events"]:
        move = f"{e['alias']}: {e['from'] or '-'} \u2192 {e['to']}" if e.get("alias") else ""
        rows.append(
            f'<tr data-seq="{e["seq"]}"><td>{_e(e["ts"])}</td>'
            f'<td data-key="history.{e["seq"]}.action">{_e(e["action"])}</td>'
            f'<td data-key="history.{e["seq"]}.actor">{_e(e["actor"])}</td><td>{_e(move)}</td>'
            f'<td data-key="history.{e["seq"]}.reason">{_e(e.get("reason") or "")}</td></tr>'
        )
    return _table(["time (UTC)", "event", "by", "alias move", "reason"], rows)


_RENDER: dict[str, Callable[[dict[str, Any]], str]] = {
    "intended_use": _intended_use,
    "lineage": _lineage,
    "reference_profile": _profile,
    "metrics": _metrics,
    "gates": _gates,
    "fairness": _fairness,
    "calibration": _calibration,
    "importance": _importance,
    "live": _live,
    "history": _history,
}


def _section(s: CardSection) -> str:
    body = (
        _RENDER[s.key](s.data) if s.data is not None else f'<p class="missing">No data: {_e(s.missing)}</p>'
    )
    state = "available" if s.data is not None else "missing"
    head = f'<section id="{s.key}" data-section="{s.key}" data-state="{state}">'
    return f"{head}<h2>{_e(s.title)}</h2>{body}</section>"


def render_html(card: ModelCard) -> str:
    nav = "".join(f'<li><a href="#{s.key}">{_e(s.title)}</a></li>' for s in card.sections)
    aliases = ", ".join(card.aliases) or "none"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8" />'
        '<meta name="viewport" content="width=device-width, initial-scale=1" />'
        f"<title>Model card: {_e(card.ref)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>Model card: <span data-key="ref">{_e(card.ref)}</span></h1>'
        f"<p>{_e(card.description)}</p>"
        f'<p class="meta">aliases <span data-key="aliases">{_e(aliases)}</span> \u00b7 '
        f"{_e(card.model_class)} ({_e(card.flavor)}, {_e(card.task)}) \u00b7 "
        f"registered {_e(card.created_at)} \u00b7 "
        f"card generated {_e(card.generated_at)} by {_e(card.generated_by)}</p></header>"
        f"<nav><ol>{nav}</ol></nav>" + "".join(_section(s) for s in card.sections) + "</body></html>\n"
    )
