"""``modelward drift``: live traffic against a version's reference, or one data file against another.

Exit codes: 0 whether or not drift was found (a report is not a failure); 3 with ``--fail-on-drift``
when the data set drifted, for CI jobs; 1 for a mistake (unknown model, no live data, unreadable file).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from modelward.cli.app import emit_json, error_console, settings

if TYPE_CHECKING:
    from modelward.drift import DriftConfig, DriftReport

__all__ = ["DRIFT_EXIT_CODE", "register"]

DRIFT_EXIT_CODE = 3


def _config(threshold_share: float | None) -> DriftConfig:
    from modelward.drift import DriftConfig

    return DriftConfig() if threshold_share is None else DriftConfig(drift_share=threshold_share)


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.4g}"


def _table(title: str, verdicts: Any, width: int) -> Any:
    from rich.text import Text

    from modelward.cli._tables import Column, table

    columns = [
        Column("feature"),
        Column("kind", drop=1),
        Column("method"),
        Column("statistic"),
        Column("threshold", drop=2),
        Column("drifted"),
        Column("reason", wrap=True, floor=24),
    ]
    rows = [
        [
            f.feature,
            f.kind,
            f.method,
            _fmt(f.statistic),
            ("p < " if f.method in ("ks", "chi2") else "> ") + _fmt(f.threshold),
            Text("yes", style="bold red") if f.drifted else Text("no", style="green"),
            f.reason,
        ]
        for f in verdicts
    ]
    return table(columns, rows, width=width, title=title)


def _print_report(report: DriftReport, heading: str) -> None:
    from rich.console import Console

    console = Console()
    console.print(heading, highlight=False, markup=False)  # file paths may hold brackets
    console.print(_table("features", report.features, console.width))
    if report.prediction:
        console.print(_table("predictions", report.prediction, console.width))
    unseen = [f"{f.feature} {f.unseen:,} of {f.n_current:,} values" for f in report.features if f.unseen]
    if unseen:
        console.print(
            "unseen in training: " + ", ".join(unseen), highlight=False, markup=False, soft_wrap=True
        )
    n, drifted = len(report.features), len(report.drifted_features)
    if report.dataset_drift:
        verdict = f"[bold red]dataset drift[/]: {drifted} of {n} features drifted"
    else:
        verdict = f"[green]no dataset drift[/]: {drifted} of {n} features drifted"
    verdict += f" ({report.share_drifted:.0%}; the data set drifts at {report.threshold_share:.0%})"
    if report.prediction:
        verdict += "; prediction drift: " + (
            "[bold red]yes[/]" if report.prediction_drift else "[green]no[/]"
        )
    console.print(verdict, highlight=False)


def _write_html(path: Path, text: str) -> None:
    from modelward.files import write_text

    written = write_text(path, text)
    error_console().print(f"HTML report written to {written}", highlight=False)


def _live(
    name: str,
    window: str,
    version: str | None,
    arm: str | None,
    config: DriftConfig,
    html: Path | None,
    as_json: bool,
) -> DriftReport:
    import time

    from modelward.api import open_registry
    from modelward.drift.html import profile_histograms, render_html
    from modelward.errors import NotFound
    from modelward.monitoring.live_drift import (
        default_version,
        live_report,
        live_versions,
        load_reference,
        parse_window,
    )

    seconds = parse_window(window)
    now = time.time()
    with open_registry(settings()) as registry:
        chosen = version or default_version(registry, name, since=now - seconds, until=now)
        reference = load_reference(registry, name, chosen)
        live = live_report(
            registry, name, chosen, seconds, reference=reference, arm=arm, config=config, now=now
        )
        if live.report is None or live.window is None:
            served = live_versions(registry.store, name, since=now - seconds, until=now)
            others = [v for v in served if v != chosen]
            where = f" arm '{arm}'" if arm else ""
            hint = f"; versions with live data then: {', '.join(others)} (use --version)" if others else ""
            if not others:
                bucket = settings().profile_bucket_seconds
                hint = f" (live profiles are written when their {bucket:g} s bucket ends: retry after it)"
            raise NotFound(f"no live data for {name} version {chosen}{where} in the last {window}{hint}")
    report = live.report
    if html is not None:
        context = {
            "model": f"{name} version {chosen}" + (f", arm {arm}" if arm else ""),
            "window": " to ".join(live.bounds),
            "rows": f"{live.rows:,} served rows (buckets overlapping the window count whole)",
        }
        histograms = profile_histograms(reference, live.window)
        _write_html(html, render_html(report, histograms, title=f"Drift of {name}", context=context))
    if as_json:
        emit_json(live.to_dict())
    else:
        heading = f"{name} version {chosen}: {live.rows:,} served rows in the last {window}"
        _print_report(report, heading + (f", arm {arm}" if arm else ""))
    return report


def _files(
    reference: Path,
    current: Path,
    config: DriftConfig,
    categorical: list[str],
    html: Path | None,
    as_json: bool,
) -> DriftReport:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from modelward.drift.html import render_html
    from modelward.monitoring.drift_files import compare_files

    columns = (TextColumn("comparing columns"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=error_console(), transient=True) as bar:
        task = bar.add_task("drift", total=None)
        result = compare_files(
            reference,
            current,
            config=config,
            categorical=categorical,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    report = result.report
    if html is not None:
        context = {
            "reference": f"{reference} ({result.reference_rows:,} rows)",
            "current": f"{current} ({result.current_rows:,} rows)",
            "statistics": "exact (raw samples); histograms on the reference's quantile bins",
        }
        _write_html(
            html, render_html(report, result.histograms, title="Drift between two files", context=context)
        )
    if as_json:
        emit_json(result.to_dict())
    else:
        heading = (
            f"{current} ({result.current_rows:,} rows) against {reference} "
            f"({result.reference_rows:,} rows), {result.seconds:.1f} s"
        )
        _print_report(report, heading)
    return report


def drift(
    name: str | None = typer.Argument(
        None, help="Model whose live traffic to check (omit with --reference)."
    ),
    window: str = typer.Option("1h", "--window", "-w", help="How far back to look: 30m, 1h, 1d, 7d ..."),
    version: str | None = typer.Option(
        None, "--version", help="Version to check; default: the champion's, else the newest with live data."
    ),
    arm: str | None = typer.Option(None, "--arm", help="Only the traffic of this deployment arm."),
    reference: Path | None = typer.Option(
        None, "--reference", help="Reference data file (.csv or .parquet), compared with --current."
    ),
    current: Path | None = typer.Option(None, "--current", help="Current data file (.csv or .parquet)."),
    categorical: list[str] = typer.Option(
        [], "--categorical", help="Treat this numeric column as categorical (files only); repeatable."
    ),
    threshold_share: float | None = typer.Option(
        None,
        "--threshold-share",
        help="Share of drifted features at which the data set drifts (default 0.5).",
    ),
    html: Path | None = typer.Option(None, "--html", help="Also write a self-contained HTML report here."),
    fail_on_drift: bool = typer.Option(
        False, "--fail-on-drift", help=f"Exit {DRIFT_EXIT_CODE} when the data set drifted (for CI)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of a table."),
) -> None:
    """Check data drift: a model's live traffic against its reference, or two files against each other.

    Live: modelward drift churn --window 1h. Files: modelward drift --reference ref.parquet --current
    cur.csv (exact statistics, no registered model needed). Exits 0 whether or not drift is found;
    with --fail-on-drift, 3 when the data set drifted.
    """
    from modelward.errors import ConfigError

    config = _config(threshold_share)
    if reference is not None or current is not None:
        if name is not None:
            raise ConfigError(
                "give either a model NAME (live traffic) or --reference and --current, not both"
            )
        if reference is None or current is None:
            raise ConfigError("comparing files needs both --reference and --current")
        report = _files(reference, current, config, categorical, html, as_json)
    else:
        if name is None:
            raise ConfigError("give a model NAME, or --reference and --current to compare two files")
        if categorical:
            raise ConfigError("--categorical applies to files; a model's reference profile fixes the kinds")
        report = _live(name, window, version, arm, config, html, as_json)
    if fail_on_drift and report.dataset_drift:
        raise typer.Exit(DRIFT_EXIT_CODE)


def register(app: typer.Typer) -> None:
    app.command("drift")(drift)
