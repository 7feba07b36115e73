"""``modelward feedback import --join-on FIELD``: read keyed label rows from a file, and say what the
join did (``modelward.feedback.join`` does the matching)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from modelward.cli.app import error_console

if TYPE_CHECKING:
    from modelward.feedback.join import JoinResult, KeyedLabel

__all__ = ["DEFAULT_TIME_COLUMN", "print_join", "read_keyed_labels"]

DEFAULT_TIME_COLUMN = "time"
_SHOW_ROWS = 10
_SHOW_PROBLEMS = 10


def _columns(path: Path) -> list[str]:
    from modelward.errors import ConfigError

    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    if suffix == ".csv":
        import pandas as pd

        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    raise ConfigError(f"cannot read {path}: use a .csv or .parquet file")


def _frame(path: Path, columns: list[str], key: str) -> Any:
    import pandas as pd

    if path.suffix.lower() == ".csv":
        # Keys stay text as written (leading zeros, long ids); numbers in the log compare as text too.
        return pd.read_csv(path, usecols=columns, dtype={key: str}, keep_default_na=True)
    return pd.read_parquet(path, columns=columns)


def _times(series: Any) -> list[float | None]:
    """UNIX seconds per cell: numbers are epoch seconds, text is ISO-8601 (naive means UTC)."""
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype

    if is_numeric_dtype(series) and not is_bool_dtype(series):
        return [float(v) if v is not None and math.isfinite(float(v)) else None for v in series.tolist()]
    if not is_datetime64_any_dtype(series):
        series = pd.to_datetime(series, utc=True, errors="coerce", format="ISO8601")
    elif series.dt.tz is None:
        series = series.dt.tz_localize("UTC")
    return [None if pd.isna(t) else float(t.timestamp()) for t in series]


def read_keyed_labels(
    path: Path, key: str, label_column: str, time_column: str | None
) -> tuple[list[KeyedLabel], str | None]:
    """Every row of ``path`` as a keyed label, and the time column used (None: the rows are timed
    at the import, because the file has no ``time`` column and none was named). Every row is checked
    first: a ConfigError names the bad ones and nothing is returned."""
    from modelward.errors import ConfigError
    from modelward.feedback.ingest import label_problem
    from modelward.feedback.join import KeyedLabel, key_text

    columns = _columns(path)
    when: str | None = time_column or DEFAULT_TIME_COLUMN
    if when not in columns:
        if time_column is not None:
            raise ConfigError(f"{path.name} has no column {when!r} (columns: {', '.join(columns)})")
        when = None
    wanted = list(dict.fromkeys([key, label_column, *([when] if when else [])]))
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise ConfigError(
            f"{path.name} has no column {', '.join(repr(m) for m in missing)} "
            f"(columns: {', '.join(columns)}); name them with --join-on and --label-column"
        )
    frame = _frame(path, wanted, key)
    now = time.time()
    times = _times(frame[when]) if when else [now] * len(frame)
    labels: list[KeyedLabel] = []
    problems: list[str] = []
    for i, (raw_key, raw_label, ts) in enumerate(
        zip(frame[key].tolist(), frame[label_column].tolist(), times, strict=True), start=1
    ):
        text = key_text(raw_key)
        label = raw_label.item() if hasattr(raw_label, "item") else raw_label
        if isinstance(label, float) and math.isnan(label):
            label = None
        bad = [
            f"{key} is empty" if not text else None,
            label_problem(label, label_column),
            f"{when} {frame[when].iloc[i - 1]!r} is not a date-time or epoch seconds" if ts is None else None,
        ]
        problems.extend(f"row {i}: {b}" for b in bad if b)
        if text and ts is not None and not any(bad):
            labels.append(KeyedLabel(i, text, ts, label))
    if problems:
        more = len(problems) - _SHOW_PROBLEMS
        shown = "; ".join(problems[:_SHOW_PROBLEMS]) + (f" (and {more} more)" if more > 0 else "")
        raise ConfigError(f"{path.name}: nothing imported, {len(problems)} bad row(s): {shown}")
    return labels, when


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def print_join(path: Path, join: JoinResult, window: str, time_column: str | None) -> None:
    timed = (
        f"label times from column {time_column!r}"
        if time_column
        else "labels timed at the import: the file has no 'time' column"
    )
    typer.echo(
        f"{path.name}: {join.rows} rows joined on {join.field} to the latest prediction of {join.model} "
        f"within {window} before each label ({timed}): {join.matched} matched, "
        f"{len(join.unmatched)} unmatched, {len(join.ambiguous)} ambiguous (not imported)"
    )
    console = error_console()
    for title, rows in (("unmatched", join.unmatched), ("ambiguous", join.ambiguous)):
        for u in rows[:_SHOW_ROWS]:
            ids = f" ({', '.join(u.request_ids)})" if u.request_ids else ""
            console.print(
                f"  {title} row {u.row}: {join.field} {u.key} at {_when(u.ts)} UTC: {u.reason}{ids}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        if len(rows) > _SHOW_ROWS:
            console.print(f"  ... and {len(rows) - _SHOW_ROWS} more {title} (--json lists all)")
