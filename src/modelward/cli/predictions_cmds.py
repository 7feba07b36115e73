"""``modelward predictions``: tail, export and account for the prediction log."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from modelward.cli.app import emit_json, error_console, open_store, require_model

if TYPE_CHECKING:
    pass

__all__ = ["predictions_app"]

predictions_app = typer.Typer(help="Tail, export and account for the prediction log.", no_args_is_help=True)

_FOLLOW_PAGE = 1_000


def _wait(seconds: float) -> None:
    """One pause between polls of ``tail --follow`` (tests replace it)."""
    time.sleep(seconds)


def _prediction(outputs: dict[str, Any]) -> str:
    if "prediction" in outputs:
        value = outputs["prediction"]
    elif len(outputs) == 1:
        value = next(iter(outputs.values()))
    else:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _cells(row: dict[str, Any]) -> list[str]:
    return [
        row["ts"][:23].replace("T", " "),
        row["request_id"],
        row["version"],
        row["arm"] or "",
        f"{row['latency_ms']:.1f} ms",
        _prediction(row["outputs"]),
    ]


_HEADERS = ("time (UTC)", "request id", "version", "arm", "latency", "prediction")
_WIDTHS = (23, 36, 7, 12, 11, 0)


def _line(cells: list[str] | tuple[str, ...]) -> str:
    return "  ".join(c.ljust(w) if w else c for c, w in zip(cells, _WIDTHS, strict=True)).rstrip()


def _print_json_lines(rows: list[dict[str, Any]]) -> None:
    import orjson

    for row in rows:
        sys.stdout.write(orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS).decode() + "\n")
    sys.stdout.flush()


def _print_table(rows: list[dict[str, Any]]) -> None:
    from modelward.cli._tables import Column, print_table

    # Request ids stay whole (feedback is keyed by them); on a narrow terminal the time wraps to two
    # lines and the latency, then the arm, are left out.
    columns = [
        Column("time (UTC)", wrap=True, floor=10),
        Column("request id"),
        Column("version"),
        Column("arm", drop=2),
        Column("latency", drop=1, justify="right"),
        Column("prediction", wrap=True),
    ]
    print_table(columns, [[c[0][:19], *c[1:]] for c in map(_cells, rows)])


@predictions_app.command("tail")
def tail_cmd(
    name: str = typer.Argument(..., help="The model whose predictions to show."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="Show the newest N predictions."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new predictions until Ctrl-C."),
    interval: float = typer.Option(1.0, "--interval", min=0.05, help="Seconds between polls with --follow."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per line (JSON lines)."),
) -> None:
    """Show the newest logged predictions of a model, oldest first."""
    from modelward.monitoring.prediction_query import tail

    with open_store() as store:
        rows = tail(store, name, limit=limit)
        if not rows:
            require_model(name)  # a typo is an error, not an empty log
            typer.echo(f"no predictions logged for '{name}' yet", err=True)
        if as_json:
            _print_json_lines(rows)
        elif follow:
            typer.echo(_line(_HEADERS))
            for row in rows:
                typer.echo(_line(_cells(row)))
        elif rows:
            _print_table(rows)
        if not follow:
            return
        last_id = rows[-1]["id"] if rows else 0
        try:
            while True:
                new = tail(store, name, limit=_FOLLOW_PAGE, after_id=last_id)
                if new:
                    last_id = new[-1]["id"]
                    if as_json:
                        _print_json_lines(new)
                    else:
                        for row in new:
                            typer.echo(_line(_cells(row)))
                if len(new) < _FOLLOW_PAGE:
                    _wait(interval)
        except KeyboardInterrupt:
            return


@predictions_app.command("export")
def export_cmd(
    name: str = typer.Argument(..., help="The model whose predictions to export."),
    output: Path = typer.Option(..., "--output", "-o", help="The file to write (.parquet or .csv)."),
    fmt: str | None = typer.Option(
        None, "--format", help="parquet or csv (default: from the output's suffix)."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Only predictions from then on: 15m, 2h, 7d ago or an ISO-8601 date/time (UTC)."
    ),
    until: str | None = typer.Option(
        None, "--until", help="Only predictions before then (same forms as --since)."
    ),
    labeled: bool = typer.Option(
        False,
        "--labeled",
        help="Only predictions with a label (feedback), with label columns: training data.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary for scripts."),
) -> None:
    """Export logged predictions to Parquet or CSV, one column per input field and output member.

    With `--labeled`, the rows that have a label (joined by request id), each request once (shadow
    copies left out), with `label` and `label_value` columns: data to retrain on. Requests without
    consent are never exported."""
    from modelward.errors import ConfigError, NotFound
    from modelward.monitoring.prediction_query import count_predictions, export, parse_since, resolve_format

    bounds: dict[str, float | None] = {}
    for option, text in (("--since", since), ("--until", until)):
        try:
            bounds[option] = None if text is None else parse_since(text)
        except ConfigError as exc:
            raise ConfigError(f"{option}: {exc}") from None
    start, end = bounds["--since"], bounds["--until"]
    kind = resolve_format(output, fmt)
    if start is not None and end is not None and end <= start:
        raise ConfigError("--until must be later than --since")
    with open_store() as store:
        logged = count_predictions(store, name, since=start, until=end, labeled=labeled)
        total = count_predictions(store, name, since=start, until=end, consented_only=True, labeled=labeled)
        excluded = logged - total  # requests without consent: never exported for retraining
        if logged == 0:
            window = "" if since is None and until is None else " in that time window"
            if labeled and count_predictions(store, name, since=start, until=end):
                raise NotFound(
                    f"nothing to export: no prediction of '{name}'{window} has a label yet "
                    "(post them to /feedback or `modelward feedback import`)"
                )
            if (start is None and end is None) or count_predictions(store, name) == 0:
                require_model(name)  # a typo is an error, not an empty log
            raise NotFound(f"nothing to export: no predictions of '{name}' are logged{window}")
        if total == 0:
            where = " in that time window" if since is not None or until is not None else ""
            raise NotFound(
                f"nothing to export: the {excluded} logged predictions of '{name}'{where} are all of "
                "requests without consent, which are never exported"
            )
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(
            TextColumn("exporting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=error_console(),
            transient=True,
        ) as bar:
            task = bar.add_task("export", total=total)
            rows = export(
                store,
                name,
                output,
                fmt=kind,
                since=start,
                until=end,
                progress=lambda n: bar.advance(task, n),
                labeled=labeled,
            )
    if as_json:
        emit_json(
            {
                "model": name,
                "path": str(output),
                "format": kind,
                "rows": rows,
                "excluded_without_consent": excluded,
                "labeled": labeled,
            }
        )
    else:
        left_out = f" ({excluded} without consent left out)" if excluded else ""
        what = "labelled predictions" if labeled else "predictions"
        typer.echo(f"exported {rows} {what} of {name} to {output}{left_out}")


def _bytes(n: int | None) -> str:
    if n is None:
        return "?"
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


@predictions_app.command("stats")
def stats_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """The prediction log's extent and size, its writers' counts (rows written, dropped, repaired,
    rejected, and lost by server processes that died: kill -9, out of memory) and what retention
    deleted."""
    from modelward.cli.app import settings
    from modelward.monitoring.prediction_query import log_summary

    cfg = settings()
    with open_store() as store:
        summary = log_summary(store, marks_dir=cfg.home / "log-writers")
    summary["retention"]["policy"] = cfg.log_retention or None
    if as_json:
        emit_json(summary)
        return
    log, writers, retention = summary["log"], summary["writers"], summary["retention"]
    if log["rows"]:
        typer.echo(f"log: about {log['rows']:,} rows, from {log['oldest']} to {log['newest']}")
    else:
        typer.echo("log: empty")
    size = log["size"]
    line = f"size: {_bytes(size['bytes'])} ({size['how']})"
    if size["file_bytes"] is not None:
        line += f"; file {_bytes(size['file_bytes'])}, {_bytes(size['free_bytes'])} free"
        line += f", auto_vacuum {size['auto_vacuum']}"
    if size["table_bytes"] is not None:
        line += f"; table {_bytes(size['table_bytes'])}"
    typer.echo(line)
    deleted = retention["deleted"]
    typer.echo(
        f"retention: {retention['policy'] or 'off (MODELWARD_LOG_RETENTION)'}; deleted {deleted['age']:,} "
        f"rows by age and {deleted['size']:,} by size; last run {retention['last_run'] or 'never'}"
    )
    typer.echo(
        f"writers: {writers['running']} running, {writers['closed']} closed, {writers['crashed']} crashed"
    )
    typer.echo(
        f"rows: {writers['written']:,} written ({writers['repaired']:,} repaired), "
        f"{writers['dropped']:,} dropped ({writers['rejected']:,} rejected), {writers['lost']:,} lost"
    )
    for crash in writers["crashes"]:
        typer.echo(
            f"  crashed: pid {crash['pid']} on {crash['host']}, started {crash['started']}, "
            f"found dead {crash['found_dead']}: {crash['lost']:,} lost"
        )
    for pending in writers["pending"]:
        typer.echo(
            f"  not yet settled: pid {pending['pid']} (writer {pending['writer']}): "
            f"{pending['lost']:,} lost (counted when a server starts here)"
        )


@predictions_app.command("vacuum")
def vacuum_cmd(
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """SQLite: rewrite the database once with incremental vacuum on, so that retention returns the
    space of deleted predictions to the file system. Stop the servers first: it holds the database
    for as long as rewriting it takes, and needs free disk space about the size of the file."""
    from modelward.errors import ConfigError

    with open_store() as store:
        if store.dialect != "sqlite":
            raise ConfigError("vacuum is for SQLite; PostgreSQL's autovacuum keeps the space reusable")
        with store.read() as conn:
            mode = int(conn.exec_driver_sql("PRAGMA auto_vacuum").scalar_one())
        if mode == 2:
            typer.echo("the database already uses incremental vacuum: retention returns free pages itself")
            return
        if not yes:
            typer.confirm("rewrite the whole database now (stop the servers first)?", abort=True)
        with store.engine.connect() as conn:
            raw = conn.connection.driver_connection
            if raw is None:  # pragma: no cover - a pooled SQLite connection always has one
                raise ConfigError("no SQLite connection")
            raw.execute("PRAGMA auto_vacuum=INCREMENTAL")
            raw.execute("VACUUM")  # outside any transaction (the pooled connection is in autocommit)
            mode = int(raw.execute("PRAGMA auto_vacuum").fetchone()[0])
    typer.echo("done: the database now uses incremental vacuum" if mode == 2 else f"auto_vacuum is {mode}")
