"""``modelward fairness``: how a version's decisions fall across groups, on a data file or on live traffic.

Exit codes: 0 when the report was made (a failed four-fifths rule is a finding, not an error; the
promotion gates turn findings into failures); 1 for a mistake (unknown model or column, no data, an
unreadable file). Every report is stored with its version, and ``modelward show`` prints the newest.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from modelward.cli.app import emit_json, settings

if TYPE_CHECKING:
    from modelward.governance.fairness_data import FairnessRun

__all__ = ["print_show_section", "register", "show_section"]


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _verdict(passed: bool | None) -> Any:
    from rich.text import Text

    if passed is None:
        return Text("n/a")
    return Text("pass", style="green") if passed else Text("FAIL", style="bold red")


def _print_run(run: FairnessRun) -> None:
    from rich.console import Console
    from rich.text import Text

    from modelward.cli._tables import Column, print_table

    console = Console()
    report = run.report
    data = run.data
    where = f"{data['path']}" if data["source"] == "file" else f"live traffic, {data['groups_from']}"
    console.print(
        Text(
            f"{run.model}:{run.version} fairness on {report.rows:,} rows ({where}); "
            f"{report.labelled:,} labelled; positive class {report.positive_label}"
        ),
        soft_wrap=True,
    )
    for feature in report.features:
        columns = [
            Column("group"),
            Column("count", justify="right"),
            Column("selection", justify="right"),
            Column("accuracy", justify="right", drop=3),
            Column("TPR", justify="right", drop=2),
            Column("FPR", justify="right", drop=2),
            Column("AUC", justify="right", drop=1),
        ]
        small = any(g.small for g in feature.groups)
        if small:
            columns.append(Column("note", drop=4))
        rows = [
            [
                g.group,
                f"{g.count:,}",
                _rate(g.selection_rate),
                _rate(g.accuracy),
                _rate(g.tpr),
                _rate(g.fpr),
                _rate(g.auc),
                *(["small: not judged" if g.small else ""] if small else []),
            ]
            for g in feature.groups
        ]
        title = feature.feature + (" (quantile bands)" if feature.banded else "")
        print_table(columns, rows, title=title, console=console)
        rule = feature.four_fifths
        summary = Text.assemble(
            f"  {feature.feature}: demographic parity difference "
            f"{_rate(feature.demographic_parity_difference)}, "
            f"ratio {_rate(feature.demographic_parity_ratio)}; equalized odds difference "
            f"{_rate(feature.equalized_odds_difference)}; four-fifths rule ",
            _verdict(rule.passed),
        )
        if rule.passed is not None:
            summary.append(f" ({rule.worst_group} at {_rate(rule.ratio)} of {rule.best_group})")
        console.print(summary, soft_wrap=True)
        gap = feature.worst_gap()
        if gap is not None:
            console.print(Text(f"  worst gap: {gap.describe()}"), soft_wrap=True)
        for note in feature.notes:
            console.print(Text(f"  note: {note}"), soft_wrap=True)
    for note in report.notes:
        console.print(Text(f"note: {note}"), soft_wrap=True)


def fairness(
    ref: str = typer.Argument(..., help="NAME, NAME@ALIAS or NAME:VERSION (live traffic: NAME)."),
    data: Path | None = typer.Option(None, "--data", help="Data to score, .csv or .parquet."),
    sensitive: str = typer.Option(..., "--sensitive", "-s", help="Sensitive columns, comma-separated."),
    label: str | None = typer.Option(None, "--label", help="Label column of --data (for TPR, FPR, ...)."),
    window: str | None = typer.Option(None, "--window", "-w", help="Live traffic of the last 1h, 1d, 7d ..."),
    version: str | None = typer.Option(None, "--version", help="Live: the version whose traffic to audit."),
    groups: Path | None = typer.Option(
        None, "--groups", help="Live: a file of request_id plus the sensitive columns."
    ),
    bins: int = typer.Option(4, "--bins", min=2, help="Quantile bands for a numeric sensitive column."),
    min_group: int = typer.Option(
        30, "--min-group", min=1, help="Groups with fewer rows are flagged and not judged."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Audit a version's decisions per group (Fairlearn): selection rate, accuracy, TPR, FPR, AUC,
    demographic parity, equalized odds and the four-fifths rule. The report is stored with the version."""
    from modelward.api import fairness as run_fairness
    from modelward.errors import ConfigError

    if (data is None) == (window is None):
        raise ConfigError("give either --data FILE (score a data file) or --window 7d (live traffic)")
    if data is not None and (groups is not None or version is not None):
        raise ConfigError("--groups and --version are for live traffic (--window); name the version in REF")
    run = run_fairness(
        ref,
        data=data,
        sensitive=sensitive.split(","),
        label=label,
        window=window,
        version=version,
        groups=groups,
        bins=bins,
        min_group=min_group,
        settings=settings(),
    )
    if as_json:
        emit_json(run.to_dict())
    else:
        _print_run(run)


def show_section(store: Any, name: str, version: str) -> dict[str, Any] | None:
    """What ``show`` (and ``show --json``) says about the version's newest fairness report."""
    from modelward.governance.fairness_data import stored_summary

    return stored_summary(store, name, version)


def print_show_section(section: dict[str, Any] | None, console: Any) -> None:
    import time

    from rich.text import Text

    if section is None:
        console.print(Text("  fairness     not audited (modelward fairness REF --data FILE --sensitive COL)"))
        return
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(section["created_at"]))
    console.print(
        Text(
            f"  fairness     {section['source']} data, {section['rows']:,} rows, "
            f"{when} UTC by {section['actor']}"
        ),
        soft_wrap=True,
    )
    for f in section["features"]:
        line = Text(
            f"    {f['feature']}: DP difference {_rate(f['demographic_parity_difference'])}, "
            f"ratio {_rate(f['demographic_parity_ratio'])}, EO difference "
            f"{_rate(f['equalized_odds_difference'])}, four-fifths "
        )
        line.append_text(_verdict(f["four_fifths"]))
        console.print(line, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("fairness")(fairness)
