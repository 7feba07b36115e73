"""PII scanning of data sets (DataFrames, CSV and Parquet files streamed in chunks) and of the
inputs the prediction log holds: counts per column and kind, masked examples, column-name hints.

A :class:`PiiScanner` takes chunks (``update(frame) -> self``) and keeps the counts; text values are
scanned once per distinct value in a chunk (a category column costs its categories, not its rows).
Numeric columns are not scanned for values (a number is not read as a phone number) but their names
still give hints.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelward.errors import ConfigError
from modelward.governance.pii_detectors import KINDS, column_hint, find, mask

if TYPE_CHECKING:
    import pandas as pd

    from modelward.store import Store

__all__ = [
    "ColumnFindings",
    "PiiScanner",
    "ScanReport",
    "iter_file",
    "scan_file",
    "scan_frame",
    "scan_predictions",
]

EXAMPLES_PER_KIND = 3
CHUNK_ROWS = 50_000
Progress = Callable[[int, int | None], None]


@dataclass(slots=True)
class ColumnFindings:
    """What one column holds: cells per kind, a few masked examples, and what its name hints at."""

    column: str
    hint: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return bool(self.counts) or self.hint is not None

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "hint": self.hint, "counts": self.counts, "examples": self.examples}


@dataclass(frozen=True, slots=True)
class ScanReport:
    source: str
    rows: int
    columns: tuple[ColumnFindings, ...]  # only the columns with a finding or a hint

    @property
    def found(self) -> bool:
        return bool(self.columns)

    def totals(self) -> dict[str, int]:
        """Cells per kind over all columns (``"column_name"``: columns found by their name only)."""
        out: dict[str, int] = {}
        for c in self.columns:
            for kind, n in c.counts.items():
                out[kind] = out.get(kind, 0) + n
            if c.hint is not None and not c.counts:
                out["column_name"] = out.get("column_name", 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows": self.rows,
            "found": self.found,
            "totals": self.totals(),
            "columns": [c.to_dict() for c in self.columns],
        }


class PiiScanner:
    """Streaming scan: :meth:`update` with each chunk, then :meth:`report`."""

    def __init__(self, source: str = "<frame>", *, region: str = "US") -> None:
        import phonenumbers

        if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigError(f"unknown region {region!r}: use a country code such as US, GB or FR")
        self.source = source
        self.region = region.upper()
        self.rows = 0
        self._columns: dict[str, ColumnFindings] = {}

    def update(self, frame: pd.DataFrame) -> PiiScanner:
        from pandas.api.types import is_numeric_dtype

        self.rows += len(frame)
        for name in frame.columns:
            key = str(name)
            findings = self._columns.get(key)
            if findings is None:
                findings = self._columns[key] = ColumnFindings(key, column_hint(key))
            column = frame[name]
            if is_numeric_dtype(column.dtype) and not (findings.hint == "ssn" and column.dtype.kind in "iu"):
                continue
            values = column.dropna()
            if len(values) and _is_nested(values.iloc[0]):
                for value in values:
                    self._value(findings, value, 1)
                continue
            counts = column.dropna().astype(str).value_counts(sort=False)
            for value, n in counts.items():
                self._value(findings, str(value), int(n))
        return self

    def update_values(self, column: str, value: Any) -> None:
        """One value of one column (a logged payload): strings are scanned, nested values as JSON."""
        findings = self._columns.get(column)
        if findings is None:
            findings = self._columns[column] = ColumnFindings(column, column_hint(column))
        if value is None or isinstance(value, bool | float):
            return
        if isinstance(value, int) and findings.hint != "ssn":
            return
        self._value(findings, value, 1)

    def _value(self, findings: ColumnFindings, value: Any, n: int) -> None:
        """A text, or a list or object whose strings are each scanned (its numbers are not: a list of
        item ids printed in one line would read as a card number); the cell counts once per kind."""
        if isinstance(value, str):
            matches = find(value, hint=findings.hint, region=self.region)
        elif _is_nested(value):
            matches = [
                m
                for text in _leaf_texts(value, findings.hint == "ssn")
                for m in find(text, hint=findings.hint, region=self.region)
            ]
        else:
            matches = find(str(value), hint=findings.hint, region=self.region)
        for kind in dict.fromkeys(m.kind for m in matches):  # a cell counts once per kind
            findings.counts[kind] = findings.counts.get(kind, 0) + n
            shown = findings.examples.setdefault(kind, [])
            if len(shown) < EXAMPLES_PER_KIND:
                example = mask(kind, next(m.text for m in matches if m.kind == kind))
                if example not in shown:
                    shown.append(example)

    def report(self) -> ScanReport:
        order: dict[str, int] = {kind: i for i, kind in enumerate(KINDS)}
        kept = []
        for c in self._columns.values():
            if c.found:
                c.counts = dict(sorted(c.counts.items(), key=lambda kv: order.get(kv[0], 99)))
                kept.append(c)
        return ScanReport(self.source, self.rows, tuple(kept))


def _is_nested(value: Any) -> bool:
    return isinstance(value, list | tuple | dict) or type(value).__name__ == "ndarray"


def _leaf_texts(value: Any, numbers: bool) -> Iterator[str]:
    """The strings inside a list or object (and its integers when ``numbers``: an SSN column)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaf_texts(item, numbers)
    elif _is_nested(value):
        for item in value:
            yield from _leaf_texts(item, numbers)
    elif numbers and isinstance(value, Integral) and not isinstance(value, bool):
        yield str(value)


def scan_frame(frame: pd.DataFrame, *, sample: int | None = None, region: str = "US") -> ScanReport:
    """Scan a DataFrame (its first ``sample`` rows when given)."""
    if sample is not None:
        frame = frame.head(sample)
    return PiiScanner(region=region).update(frame).report()


def _rows_in(path: Path) -> int | None:
    if path.suffix.lower() in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return None


def iter_file(
    path: str | os.PathLike[str], *, chunk_rows: int = CHUNK_ROWS, sample: int | None = None
) -> Iterator[pd.DataFrame]:
    """A CSV or Parquet file as DataFrames of at most ``chunk_rows`` rows (never the whole file in
    memory), stopping after ``sample`` rows when given. Raises :class:`ConfigError` for another
    suffix; reading errors are pyarrow's and pandas'."""
    p = Path(path)
    suffix = p.suffix.lower()
    left = sample
    if suffix in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(p).iter_batches(batch_size=chunk_rows):
            frame = batch.to_pandas()
            if left is not None:
                frame, left = frame.head(left), left - len(frame)
            yield frame
            if left is not None and left <= 0:
                return
    elif suffix in {".csv", ".txt", ".tsv"}:
        import pandas as pd

        sep = "\t" if suffix == ".tsv" else ","
        with pd.read_csv(p, chunksize=chunk_rows, sep=sep, dtype=str, keep_default_na=False) as reader:
            for frame in reader:
                frame = frame.replace("", None)
                if left is not None:
                    frame, left = frame.head(left), left - len(frame)
                yield frame
                if left is not None and left <= 0:
                    return
    else:
        raise ConfigError(f"cannot scan {p}: use a .csv, .tsv or .parquet file")


def scan_file(
    path: str | os.PathLike[str],
    *,
    sample: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
    region: str = "US",
    on_chunk: Progress | None = None,
) -> ScanReport:
    """Scan a CSV or Parquet file in chunks; ``on_chunk(rows_so_far, total_rows_or_None)`` after each.

    CSV values are read as text (a card number keeps its digits and an SSN its leading zeros)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"cannot scan {p}: no such file")
    chunks = iter_file(p, chunk_rows=chunk_rows, sample=sample)
    try:
        total = _rows_in(p)
        if total is not None and sample is not None:
            total = min(total, sample)
        first = next(chunks, None)
    except ConfigError:
        raise
    except (OSError, ValueError) as exc:  # pandas' and pyarrow's parse errors are ValueErrors
        raise ConfigError(f"cannot read {p}: {exc}") from exc
    scanner = PiiScanner(str(p), region=region)
    frame = first
    while frame is not None:
        scanner.update(frame)
        if on_chunk is not None:
            on_chunk(scanner.rows, total)
        try:
            frame = next(chunks, None)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {p} after {scanner.rows} rows: {exc}") from exc
    return scanner.report()


def scan_predictions(
    store: Store,
    model: str,
    *,
    since: float | None = None,
    region: str = "US",
    on_chunk: Progress | None = None,
) -> ScanReport:
    """Scan the inputs the prediction log holds for ``model`` since ``since`` (epoch seconds), in
    chunks; columns are the input field names (nested values are scanned as their JSON text)."""
    from modelward.monitoring.prediction_query import iter_predictions

    scanner = PiiScanner(f"prediction log of {model}", region=region)
    for frame in iter_predictions(store, model, since=since):
        inputs = frame[[c for c in frame.columns if str(c).startswith("input.")]]
        scanner.update(inputs.rename(columns=lambda c: str(c).removeprefix("input.")))
        if on_chunk is not None:
            on_chunk(scanner.rows, None)
    return scanner.report()
