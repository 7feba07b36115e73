"""``modelward pii scan``: find personal data in a CSV or Parquet file, or in the prediction log.

Exit codes for CI: 0 when nothing is found, 1 when something is, 2 when the file cannot be read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from modelward.cli.app import emit_json, error_console, open_store, print_error, require_model
from modelward.errors import ConfigError

if TYPE_CHECKING:
    from modelward.governance.pii import ScanReport

__all__ = ["pii_app"]

pii_app = typer.Typer(
    help="Find personal data (PII) in data sets and in the prediction log.", no_args_is_help=True
)


def _progress() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = error_console()
    return Progress(
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # no bar in logs and CI output
    )


def _print_report(report: ScanReport) -> None:
    from rich.console import Console
    from rich.text import Text

    from modelward.cli._tables import Column, print_table

    console = Console()
    if not report.found:
        console.print(Text(f"no personal data found in {report.rows} rows of {report.source}"))
        return
    rows = []
    for c in report.columns:
        if not c.counts:
            rows.append([c.column, c.hint or "", "(column name)", "", ""])
        for kind, n in c.counts.items():
            rows.append([c.column, c.hint or "", kind, str(n), ", ".join(c.examples.get(kind, []))])
    columns = [
        Column("column"),
        Column("name hint", drop=1),
        Column("kind"),
        Column("cells", justify="right"),
        Column("examples (masked)", wrap=True, drop=2),
    ]
    title = f"personal data in {report.source} ({report.rows} rows scanned)"
    print_table(columns, rows, title=title, console=console)


@pii_app.command("scan")
def scan(
    file: Path | None = typer.Argument(None, help="A .csv, .tsv or .parquet file."),
    predictions: str | None = typer.Option(
        None, "--predictions", help="Scan the inputs the prediction log holds for this model instead."
    ),
    window: str = typer.Option(
        "1d", "--window", help="With --predictions: how far back (30m, 12h, 7d, or a date)."
    ),
    sample: int | None = typer.Option(
        None, "--sample", min=1, help="Scan the first N rows of the file only."
    ),
    region: str = typer.Option(
        "US", "--region", help="Country whose national phone numbers (without +) are recognised."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts instead of a table."),
) -> None:
    """Count e-mail addresses, phone numbers, card numbers, IBANs, SSNs, IP addresses and dates of
    birth per column, with masked examples. Exits 1 when something is found, 0 when clean, 2 when
    the file cannot be read."""
    from modelward.governance.pii import PiiScanner, scan_file, scan_predictions

    if (file is None) == (predictions is None):
        raise ConfigError("give either a FILE or --predictions NAME")
    PiiScanner(region=region)  # a bad --region is a usage error (exit 1), not an unreadable file
    with _progress() as progress:
        task = progress.add_task("scan", total=None)

        def advance(rows: int, total: int | None) -> None:
            progress.update(task, completed=rows, total=total)

        if predictions is not None:
            from modelward.monitoring.prediction_query import parse_since

            since = parse_since(window)
            with open_store() as store:
                report = scan_predictions(store, predictions, since=since, region=region, on_chunk=advance)
            if report.rows == 0:
                require_model(predictions)  # a typo is an error, not a clean log
        else:
            assert file is not None  # noqa: S101 - narrowed by the check above
            try:
                report = scan_file(file, sample=sample, region=region, on_chunk=advance)
            except ConfigError as exc:
                progress.stop()
                print_error(str(exc))
                raise typer.Exit(2) from None
    if as_json:
        emit_json(report.to_dict())
    else:
        _print_report(report)
    if report.found:
        raise typer.Exit(1)
