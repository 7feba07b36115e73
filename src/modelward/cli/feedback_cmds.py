"""``modelward feedback import``, ``modelward performance`` and ``modelward calibrate``."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from modelward.cli.app import emit_json, error_console, open_store, require_model, settings

if TYPE_CHECKING:
    from modelward.feedback import FeedbackResult, GroupPerformance, PerformanceReport
    from modelward.feedback.join import JoinResult

__all__ = ["feedback_app", "register"]

feedback_app = typer.Typer(help="Ground-truth labels for served predictions.", no_args_is_help=True)

CHUNK_ROWS = 5_000
_SHOW_CONFLICTS = 20
_SHOW_PROBLEMS = 10


def _cell(value: Any) -> Any:
    """A file cell as a plain Python value; an empty cell (NaN, None) is None."""
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _read_chunks(path: Path, id_column: str, label_column: str) -> Iterator[list[dict[str, Any]]]:
    """The file's (request id, label) pairs, ``CHUNK_ROWS`` at a time, without reading it whole."""
    from modelward.errors import ConfigError

    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        columns = pq.ParquetFile(path).schema_arrow.names
        _check_columns(path, columns, id_column, label_column)
        for batch in pq.ParquetFile(path).iter_batches(
            batch_size=CHUNK_ROWS, columns=[id_column, label_column]
        ):
            ids, labels = batch.column(0).to_pylist(), batch.column(1).to_pylist()
            yield [_item(i, lab) for i, lab in zip(ids, labels, strict=True)]
    elif suffix == ".csv":
        import pandas as pd

        header = pd.read_csv(path, nrows=0).columns
        _check_columns(path, [str(c) for c in header], id_column, label_column)
        reader = pd.read_csv(
            path,
            usecols=[id_column, label_column],
            dtype={id_column: str},
            chunksize=CHUNK_ROWS,
            keep_default_na=True,
        )
        for frame in reader:
            ids, labels = frame[id_column].tolist(), frame[label_column].tolist()
            yield [_item(i, lab) for i, lab in zip(ids, labels, strict=True)]
    else:
        raise ConfigError(f"cannot read {path}: use a .csv or .parquet file")


def _item(request_id: Any, label: Any) -> dict[str, Any]:
    rid = _cell(request_id)
    return {"request_id": str(rid) if isinstance(rid, int) else rid, "label": _cell(label)}


def _check_columns(path: Path, columns: list[str], *wanted: str) -> None:
    from modelward.errors import ConfigError

    missing = [c for c in wanted if c not in columns]
    if missing:
        raise ConfigError(
            f"{path.name} has no column {', '.join(repr(m) for m in missing)} "
            f"(columns: {', '.join(columns)}); name them with --id-column and --label-column"
        )


def _validate(path: Path, id_column: str, label_column: str) -> int:
    """Check every row before writing any; the number of rows. ConfigError names the bad rows."""
    from modelward.errors import ConfigError
    from modelward.feedback import FeedbackInvalid, parse_items

    rows = 0
    problems: list[str] = []
    for chunk in _read_chunks(path, id_column, label_column):
        try:
            parse_items(chunk)
        except FeedbackInvalid as exc:
            problems.extend(f"row {rows + p.index + 1}: {p.message}" for p in exc.problems)
        rows += len(chunk)
    if problems:
        more = len(problems) - _SHOW_PROBLEMS
        shown = "; ".join(problems[:_SHOW_PROBLEMS]) + (f" (and {more} more)" if more > 0 else "")
        raise ConfigError(f"{path.name}: nothing imported, {len(problems)} bad row(s): {shown}")
    return rows


@feedback_app.command("import")
def import_cmd(
    path: Path = typer.Argument(
        ..., help="A .csv or .parquet file with a request id (or, with --join-on, a key) and a label per row."
    ),
    id_column: str = typer.Option("request_id", "--id-column", help="The column of request ids."),
    label_column: str = typer.Option("label", "--label-column", help="The column of labels (or values)."),
    join_on: str | None = typer.Option(
        None,
        "--join-on",
        metavar="FIELD",
        help="No request ids: match each row to the prediction of --model whose logged FIELD (an input, "
        "or the routing key) equals the row's FIELD, the nearest before the row's time within --window.",
    ),
    model: str | None = typer.Option(
        None, "--model", metavar="NAME", help="With --join-on: the model whose log to search."
    ),
    window: str = typer.Option(
        "1d", "--window", help="With --join-on: how long before a label its prediction may be."
    ),
    time_column: str | None = typer.Option(
        None,
        "--time-column",
        help="With --join-on: when each outcome was known (ISO-8601 or epoch seconds; default: the "
        "column 'time', else the time of the import).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace stored labels that differ."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary for scripts."),
) -> None:
    """Import labels from a file; exit 1 when some differed from stored labels and were refused.

    Every row is checked first (nothing is imported when one is bad); then chunks of 5,000 rows
    are committed one by one, so an interrupted import can simply be run again. With --join-on, rows
    that match no prediction, or several, are reported and left out.
    """
    from modelward.errors import ConfigError
    from modelward.feedback import FeedbackResult, FeedbackStore

    if not path.is_file():
        raise FileNotFoundError(2, "No such file", str(path))
    if join_on is None:
        for option, value in (("--model", model), ("--time-column", time_column)):
            if value is not None:
                raise ConfigError(f"{option} goes with --join-on (labels matched by a logged field)")
        total = _validate(path, id_column, label_column)
        chunks: Any = _read_chunks(path, id_column, label_column)
        join = None
    else:
        if model is None:
            raise ConfigError("--join-on needs --model: the model whose predictions the labels are about")
        join, used_time = _join(path, model, join_on, label_column, time_column, window)
        total = join.matched
        chunks = (list(join.items[i : i + CHUNK_ROWS]) for i in range(0, total, CHUNK_ROWS))
    result = FeedbackResult()
    with open_store() as store:
        labels = FeedbackStore(store)
        source = f"import:{path.name}"[:64]
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=error_console(),
            transient=True,
        ) as bar:
            task = bar.add_task("import", total=total)
            for chunk in chunks:
                result = result + labels.record(chunk, overwrite=overwrite, source=source)
                bar.advance(task, len(chunk))
    if as_json:
        emit_json({"path": str(path), **(join.to_dict() if join else {}), **result.to_dict()})
    else:
        if join is not None:
            from modelward.cli._label_join import print_join

            print_join(path, join, window, used_time)
        _print_result(path, result)
    if result.conflicts:
        raise typer.Exit(1)


def _join(
    path: Path, model: str, field: str, label_column: str, time_column: str | None, window: str
) -> tuple[JoinResult, str | None]:
    """The file's rows matched to logged predictions; a ConfigError when not one matched."""
    from modelward.cli._label_join import read_keyed_labels
    from modelward.errors import ConfigError
    from modelward.feedback.join import join_labels
    from modelward.routing.spec import parse_duration

    seconds = parse_duration(window)
    rows, used_time = read_keyed_labels(path, field, label_column, time_column)
    with open_store() as store:
        join = join_labels(store, model, field, rows, window=seconds)
    if rows and not join.matched:
        if not join.logged:
            require_model(model)  # a typo is an error, not an empty log
            why = f"no prediction of '{model}' is logged in the {window} before the labels' times"
        elif not join.keyed:
            where = "an input" + (" or the routing key" if join.routing_key else "")
            why = (
                f"none of the {join.logged} predictions of '{model}' logged then carries {field} as "
                f"{where} (a deployment keyed on it, `modelward deploy {model} --key {field}`, logs it "
                "as the routing key)"
            )
        else:
            why = f"{len(join.unmatched)} unmatched, {len(join.ambiguous)} ambiguous"
        raise ConfigError(f"{path.name}: nothing imported, no row matched a prediction by {field}: {why}")
    return join, used_time


def _print_result(path: Path, result: FeedbackResult) -> None:
    typer.echo(
        f"{path.name}: {result.received} labels: {result.inserted} new, {result.unchanged} unchanged, "
        f"{result.overwritten} overwritten, {len(result.conflicts)} refused (conflicts); "
        f"{result.orphans} without a logged prediction yet (kept as orphans)"
    )
    if result.conflicts:
        console = error_console()
        console.print(
            f"[bold red]{len(result.conflicts)} label(s) differ from the stored ones and were not written[/]"
            " (run again with --overwrite to replace them):",
            highlight=False,
        )
        for c in result.conflicts[:_SHOW_CONFLICTS]:
            console.print(
                f"  {c.request_id}: stored {c.stored!r}, sent {c.sent!r}", highlight=False, markup=False
            )
        if len(result.conflicts) > _SHOW_CONFLICTS:
            console.print(f"  ... and {len(result.conflicts) - _SHOW_CONFLICTS} more (--json lists all)")


# -- performance -----------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _group_table(group: GroupPerformance) -> Any:
    from rich.table import Table

    scope = "all versions and arms" if group.version == "all" else f"version {group.version}, arm {group.arm}"
    coverage = "" if group.coverage is None else f" ({group.coverage:.1%})"
    title = f"{scope}: {group.n_predictions} predictions, {group.n_labelled} labelled{coverage}"
    table = Table(title=title, title_justify="left")
    table.add_column("metric", no_wrap=True)
    table.add_column("realized", justify="right", no_wrap=True)
    table.add_column("estimated", justify="right", no_wrap=True)
    table.add_column("note", overflow="fold")
    for name, metric in group.metrics.items():
        estimate = group.estimated.get(name)
        shown = "" if estimate is None else _fmt(estimate.value)
        if estimate is not None and estimate.value is not None and not estimate.trusted:
            shown += " (untrusted)"
        note = metric.reason or ""
        table.add_row(name, _fmt(metric.value), shown, note)
    return table


def _print_report(report: PerformanceReport, window: str) -> None:
    from rich.console import Console

    console = Console()
    errors = f", {report.errors} failed" if report.errors else ""
    console.print(
        f"[bold]{report.model}[/], last {window}: {report.n_predictions} predictions{errors}", highlight=False
    )
    if report.truncated:
        console.print("[yellow]the window holds more predictions than are read: the newest were used[/]")
    groups = list(report.groups)
    for group in [report.overall] if len(groups) <= 1 else [report.overall, *groups]:
        if group.n_predictions == 0:
            console.print("no predictions logged in this window")
            return
        console.print(_group_table(group))
        reasons = list(dict.fromkeys(e.reason for e in group.estimated.values() if e.reason))
        for reason in reasons:
            console.print(f"  estimates: {reason}", highlight=False)


def performance(
    name: str = typer.Argument(..., help="The model."),
    window: str = typer.Option("1d", "--window", "-w", help="How far back: 30m, 6h, 1d, 2w."),
    version: str | None = typer.Option(None, "--version", help="Only this version."),
    arm: str | None = typer.Option(None, "--arm", help="Only this deployment arm (e.g. primary, canary)."),
    threshold: float = typer.Option(
        0.05, "--threshold", help="Largest calibration error at which label-free estimates are trusted."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Live performance from labels, beside label-free estimates, per version and arm."""
    from modelward.api import open_registry
    from modelward.feedback import performance_report
    from modelward.feedback.performance import parse_window

    seconds = parse_window(window)
    with open_registry(settings()) as registry:
        report = performance_report(
            registry, name, since=time.time() - seconds, version=version, arm=arm, threshold=threshold
        )
    if as_json:
        emit_json(report.to_dict())
    else:
        _print_report(report, window)


def calibrate(
    ref: str = typer.Argument(..., help="NAME, NAME@ALIAS or NAME:VERSION."),
    data: Path = typer.Option(..., "--data", help="Labelled held-out data (.csv or .parquet)."),
    target: str = typer.Option(..., "--target", help="The label column of the data."),
    bins: int = typer.Option(10, "--bins", min=2, max=100, help="Reliability bins."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Measure a classifier's calibration on held-out data and record it (audit chain).

    Label-free estimates of that version are trusted only when its calibration error is small;
    the error measured at registration, on the training rows, is optimistic for tree models.
    """
    from modelward.api import open_registry
    from modelward.feedback import calibrate as measure
    from modelward.feedback.estimate import DEFAULT_TRUST_THRESHOLD

    with open_registry(settings()) as registry:
        run = measure(registry, ref, data, target, bins=bins)
    if as_json:
        emit_json(run.to_dict())
        return
    cal = run.calibration
    verdict = "trusted" if max(cal.ece, cal.classwise_ece) <= DEFAULT_TRUST_THRESHOLD else "NOT trusted"
    typer.echo(
        f"{run.ref} on {cal.n} rows: calibration error {cal.ece:.4f} (top label), {cal.classwise_ece:.4f} "
        f"(per class); accuracy {cal.accuracy:.4f} vs mean confidence {cal.mean_confidence:.4f}; "
        f"label-free estimates {verdict} at {DEFAULT_TRUST_THRESHOLD:g}; recorded as audit event {run.seq}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(feedback_app, name="feedback")
    app.command("performance")(performance)
    app.command("calibrate")(calibrate)
