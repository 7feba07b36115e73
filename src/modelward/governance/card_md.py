"""A model card as Markdown: the same sections and figures as the HTML page, charts as tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelward.governance.card import CardSection, ModelCard

__all__ = ["render_markdown"]


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _intended_use(d: dict[str, Any]) -> str:
    return (
        f"**Intended use.** {d.get('intended_use') or 'not recorded'}\n\n"
        f"**Limitations.** {d.get('limitations') or 'not recorded'}\n\n"
        f"_Last edited by {d.get('updated_by')} at {d.get('updated_at')}._\n"
    )


def _lineage(d: dict[str, Any]) -> str:
    dvc, git, span = d.get("dvc"), d.get("git"), d.get("time_range")
    rows: list[list[Any]] = [
        ["dataset sha256", f"`{d.get('dataset_sha256')}`"],
        ["dataset path", d.get("dataset_path")],
        ["rows", d.get("rows")],
        ["features", len(d.get("features") or [])],
        ["target", d.get("target")],
        [
            "git commit",
            f"`{git['commit']}` ({git.get('branch') or 'detached'}, dirty: {_fmt(git.get('dirty'))})"
            if git
            else "not in a git repository",
        ],
        ["DVC pointer", f"{dvc.get('file')} md5 {dvc.get('md5')}" if dvc else "not tracked by DVC"],
        [
            "time range",
            f"{span['start']} to {span['end']} ({span['column']})"
            if span
            else "no time column in the training data",
        ],
        ["MLflow run", d.get("run_id")],
    ]
    if federated := d.get("federation"):
        from modelward.registry.federation import Federation

        rows.insert(0, ["federated training", Federation.from_mapping(federated).describe()])
    return _table(["", ""], rows)


def _profile(d: dict[str, Any]) -> str:
    rows = []
    for name, f in d.get("features", {}).items():
        if f.get("kind") == "numeric":
            detail = f"min {_fmt(f.get('min'))}, mean {_fmt(f.get('mean'))}, max {_fmt(f.get('max'))}"
        else:
            detail = f"{_fmt(f.get('categories'))} categories"
        rows.append([name, f.get("kind"), f"{f.get('missing_rate', 0):.1%}", detail])
    return f"{_fmt(d.get('rows'))} reference rows.\n\n" + _table(
        ["feature", "kind", "missing", "summary"], rows
    )


def _metrics(d: dict[str, Any]) -> str:
    return (
        _table(["metric", "value"], [[k, v] for k, v in d["metrics"].items()])
        + f"\n_From MLflow run {d.get('run_id')}._\n"
    )


def _gates(d: dict[str, Any]) -> str:
    verdict = "passed" if d.get("passed") else "failed"
    head = f"Overall: **{verdict}** (run {d.get('created_at')} by {d.get('actor')}).\n\n"
    rows = [
        [g.get("name"), g.get("value"), g.get("threshold"), g.get("verdict"), g.get("detail")]
        for g in d["gates"]
    ]
    return head + _table(["gate", "value", "threshold", "verdict", "detail"], rows)


def _fairness(d: dict[str, Any]) -> str:
    out = [f"_Audit of {d.get('created_at')} by {d.get('actor')}._\n"]
    for f in d["features"]:
        ff = f.get("four_fifths") or {}
        out.append(f"### {f.get('feature')}\n")
        out.append(
            _table(
                ["measure", "value"],
                [
                    ["demographic parity difference", f.get("demographic_parity_difference")],
                    ["demographic parity ratio", f.get("demographic_parity_ratio")],
                    ["equalized odds difference", f.get("equalized_odds_difference")],
                    ["four-fifths rule passed", ff.get("passed")],
                ],
            )
        )
        rows = [
            [str(g.get("group")) + (" (small: not judged)" if g.get("small") else "")]
            + [g.get(k) for k in ("count", "selection_rate", "accuracy", "tpr", "fpr", "auc")]
            for g in f["groups"]
        ]
        out.append("\n" + _table(["group", "count", "selection rate", "accuracy", "TPR", "FPR", "AUC"], rows))
    return "\n".join(out)


def _calibration(d: dict[str, Any]) -> str:
    rows = [
        ["rows", d.get("n")],
        ["source", d.get("source")],
        ["accuracy", d.get("accuracy")],
        ["mean confidence", d.get("mean_confidence")],
        ["expected calibration error (top label)", d.get("ece")],
        ["class-wise ECE", d.get("classwise_ece")],
    ]
    return _table(["measure", "value"], rows)


def _importance(d: dict[str, Any]) -> str:
    rows = [[r["feature"], r["importance"]] for r in d["features"]]
    return f"{d.get('source')}; metric {d.get('metric')}.\n\n" + _table(["feature", "importance"], rows)


def _live(d: dict[str, Any]) -> str:
    drift, perf = d.get("drift"), d.get("performance")
    rows: list[list[Any]] = [
        ["window", f"{d.get('since')} to {d.get('until')}"],
        ["served rows", d.get("rows")],
    ]
    rows.append(["dataset drift", drift.get("dataset_drift") if drift else "no live profile in the window"])
    if perf:
        rows.append(["predictions / labelled", f"{perf['n_predictions']:,} / {perf['n_labelled']:,}"])
        rows += [[f"live {k}", v] for k, v in perf.get("metrics", {}).items()]
        rows += [[f"estimated {k}", e.get("value")] for k, e in perf.get("estimated", {}).items()]
    alerts = d.get("alerts") or []
    tail = (
        _table(
            ["since", "severity", "rule", "message"],
            [[a["since"], a["severity"], a["rule"], a["message"]] for a in alerts],
        )
        if alerts
        else "No alert firing.\n"
    )
    return _table(["", ""], rows) + "\n**Firing alerts.**\n\n" + tail


def _history(d: dict[str, Any]) -> str:
    rows = [
        [
            e["ts"],
            e["action"],
            e["actor"],
            f"{e['alias']}: {e['from'] or '-'} -> {e['to']}" if e.get("alias") else "",
            e.get("reason") or "",
        ]
        for e in d["events"]
    ]
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
    body = _RENDER[s.key](s.data) if s.data is not None else f"_No data: {s.missing}_\n"
    return f"## {s.title}\n\n{body}"


def render_markdown(card: ModelCard) -> str:
    head = (
        f"# Model card: {card.ref}\n\n"
        + (f"{card.description}\n\n" if card.description else "")
        + f"Aliases: {', '.join(card.aliases) or 'none'}. "
        f"Model: {card.model_class} ({card.flavor}, {card.task}). "
        f"Registered {card.created_at}. Card generated {card.generated_at} by {card.generated_by}.\n\n"
    )
    return head + "\n".join(_section(s) for s in card.sections)
