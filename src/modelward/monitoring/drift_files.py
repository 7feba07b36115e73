"""Drift between two data files (CSV or Parquet) with exact statistics, one column at a time.

:func:`compare_files` reads the two files column by column, so memory holds a few columns, never
both tables: Parquet columns are read on their own with pyarrow; a CSV file is first streamed once,
in 1 MB blocks, into temporary Arrow IPC streams, one per column, which are then read back one at a
time (read, not memory-mapped: a map's pages would count in the process's memory). Columns are
compared on up to ``workers`` threads (NumPy's sorts and merges release the GIL). Each side of a
numeric column becomes one float64 array, sorted in place (float32 columns are sorted as float32 and
widened), and :func:`~modelward.drift.detect.compare_sorted_numeric` takes it from there: the exact
statistics, the quantile edges and the histograms (for the HTML report) all come from that one sort,
with the code :func:`~modelward.drift.compare_samples` runs, so the report is the one it would give on
the whole columns. Categorical columns go through ``compare_samples`` itself.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq

from modelward._lazy import scipy_stats
from modelward.drift._profile_base import FloatArray, category_key
from modelward.drift.detect import (
    DriftConfig,
    DriftReport,
    FeatureDrift,
    compare_samples,
    compare_sorted_numeric,
)
from modelward.drift.html import Histogram, numeric_bin_labels
from modelward.drift.profile import ProfileMismatch
from modelward.errors import ConfigError

__all__ = ["FileDrift", "compare_files", "open_table"]

# Small blocks keep the CSV reader's buffers small (about 40 MB at 1 MB, 150 MB at 4 MB, measured);
# types are inferred from a larger first block, as before.
_CSV_BLOCK = 1 << 20
_CSV_INFER_BLOCK = 4 << 20
_BLOCKS_PER_WRITE = 8
_READ_BATCH = 1 << 16  # values per batch when a column is read back
_TOP_CATEGORIES = 50


class _Table:
    """Column-wise access to a Parquet file, or to the Arrow IPC files a CSV was spilled into (one
    file per column, so that reading a column reads that column only)."""

    def __init__(self, source: Path | dict[str, Path], schema: pa.Schema, rows: int) -> None:
        self.source, self.schema, self.rows = source, schema, rows

    @property
    def names(self) -> list[str]:
        return list(self.schema.names)

    def column(self, name: str) -> pa.ChunkedArray:
        if isinstance(self.source, Path):
            return pq.read_table(self.source, columns=[name], use_threads=False).column(0)
        # Read, not memory-mapped: a map's pages would count in the process's memory while it lives.
        with pa.OSFile(str(self.source[name])) as f:
            return pa_ipc.open_stream(f).read_all().column(0)

    def _batches(self, name: str) -> Iterator[pa.Array]:
        if isinstance(self.source, Path):
            parquet = pq.ParquetFile(self.source)
            for batch in parquet.iter_batches(_READ_BATCH, columns=[name], use_threads=False):
                yield batch.column(0)
        else:
            with pa.OSFile(str(self.source[name])) as f:
                for batch in pa_ipc.open_stream(f):
                    yield batch.column(0)

    def sorted_floats(self, name: str) -> tuple[FloatArray, int]:
        """The column's values as float64, sorted, and how many are missing (null or NaN), which the
        sample leaves out. The values are copied batch by batch into one array of the column's size
        (so the column is never held twice) and sorted there; float32 columns are sorted as float32,
        which is faster, and widened after: widening keeps the order, so the floats are the same."""
        kind = self.schema.field(name).type
        narrow = pa.types.is_float32(kind) or pa.types.is_float16(kind)
        x = np.empty(self.rows, dtype=np.float32 if narrow else np.float64)
        at = 0
        for part in self._batches(name):
            if not narrow and part.type != pa.float64():
                part = pc.cast(part, pa.float64())
            values = part.to_numpy(zero_copy_only=False)  # NaN for nulls
            x[at : at + values.size] = values
            at += values.size
        if at != x.size:
            raise ConfigError(f"column '{name}' has {at:,} values, not the {x.size:,} rows announced")
        x.sort()
        wide = np.asarray(x, dtype=np.float64)
        present = int(np.searchsorted(wide, np.nan, side="left"))  # NaN sorts last, here as in searchsorted
        return wide[:present], wide.size - present


def _spill(source: Any, folder: Path, read: Any, convert: Any) -> tuple[dict[str, Path], int]:
    rows = 0
    reader = pa_csv.open_csv(source, read_options=read, convert_options=convert)
    paths = {name: folder / f"{i}.arrow" for i, name in enumerate(reader.schema.names)}
    schemas = [pa.schema([field]) for field in reader.schema]
    with ExitStack() as stack:
        writers = [
            stack.enter_context(pa_ipc.new_stream(str(path), schema))
            for path, schema in zip(paths.values(), schemas, strict=True)
        ]
        pending: list[pa.RecordBatch] = []

        def flush() -> None:
            # A few blocks joined per write: fewer, larger chunks make each column quicker to read back.
            joined = pa.Table.from_batches(pending).combine_chunks()
            pending.clear()
            for i, writer in enumerate(writers):
                for chunk in joined.column(i).chunks:  # one, or none for empty blocks
                    writer.write_batch(pa.record_batch([chunk], schema=schemas[i]))

        for batch in reader:
            pending.append(batch)
            rows += batch.num_rows
            if len(pending) == _BLOCKS_PER_WRITE:
                flush()
        if pending:
            flush()
    return paths, rows


def _spill_csv(path: Path, folder: Path) -> _Table:
    """Stream a CSV into Arrow IPC files, one per column, block by block, on one thread. (Parsing byte
    ranges of the file on two threads at once was measured: no faster on two shared cores, and more
    memory.)

    Integers are read as float64, so that a later block with a decimal point cannot clash with an
    earlier one inferred as ints; types are inferred from the file's first 4 MB.
    """
    read = pa_csv.ReadOptions(block_size=_CSV_BLOCK, use_threads=False)
    try:
        with pa.input_stream(str(path), compression="detect") as probe:
            infer = pa_csv.ReadOptions(block_size=_CSV_INFER_BLOCK, use_threads=False)
            first = pa_csv.open_csv(probe, read_options=infer).schema
        types = {
            f.name: pa.float64() if pa.types.is_integer(f.type) or pa.types.is_null(f.type) else f.type
            for f in first
        }
        convert = pa_csv.ConvertOptions(column_types=types)
        with pa.input_stream(str(path), compression="detect") as stream:
            paths, rows = _spill(stream, folder, read, convert)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ConfigError(f"cannot read {path} as CSV: {exc}") from exc
    pa.default_memory_pool().release_unused()  # the parse buffers: give them back before the columns
    schema = pa.schema([pa.field(n, t) for n, t in types.items()])
    return _Table(paths, schema, rows)


@contextmanager
def open_table(path: str | os.PathLike[str]) -> Iterator[_Table]:
    """A CSV (optionally compressed) or Parquet file, ready to be read one column at a time."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"data file {p} does not exist")
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        try:
            meta = pq.ParquetFile(p)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ConfigError(f"cannot read {p} as Parquet: {exc}") from exc
        yield _Table(p, meta.schema_arrow, meta.metadata.num_rows)
        return
    if ".csv" in suffixes[-2:]:
        folder = Path(tempfile.mkdtemp(prefix="modelward-drift-"))
        try:
            yield _spill_csv(p, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    raise ConfigError(f"cannot read {p}: use a .csv (or .csv.gz) or a .parquet file")


@dataclass(frozen=True, slots=True)
class FileDrift:
    """The drift report of two files, the histograms behind it, and what was read."""

    reference: str
    current: str
    reference_rows: int
    current_rows: int
    report: DriftReport
    histograms: dict[str, Histogram]
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return {
            "reference": {"path": self.reference, "rows": self.reference_rows},
            "current": {"path": self.current, "rows": self.current_rows},
            "seconds": round(self.seconds, 3),
            "drift": self.report.to_dict(),
        }


def _is_numeric(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def _numeric(name: str, ref: _Table, cur: _Table, cfg: DriftConfig) -> tuple[FeatureDrift, Histogram]:
    a, missing_a = ref.sorted_floats(name)
    b, missing_b = cur.sorted_floats(name)
    # The same verdict as compare_samples on the whole columns, from the sorted samples: one sort per
    # side serves the exact statistics and the histograms.
    s = compare_sorted_numeric(name, a, b, missing=(missing_a, missing_b), config=cfg)
    labels = numeric_bin_labels(s.edges)
    return s.verdict, Histogram(name, "numeric", labels, s.reference_counts, s.current_counts)


def _tally(col: pa.ChunkedArray) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in pc.value_counts(col.drop_null()).to_pylist():
        key = category_key(item["values"])
        out[key] = out.get(key, 0) + int(item["counts"])
    return out


def _categorical(
    name: str, ref: pa.ChunkedArray, cur: pa.ChunkedArray, cfg: DriftConfig
) -> tuple[FeatureDrift, Histogram]:
    verdict = compare_samples(
        {name: ref.to_pandas()}, {name: cur.to_pandas()}, config=cfg, categorical=[name]
    ).features[0]
    r, c = _tally(ref), _tally(cur)
    keys = sorted(r, key=lambda k: (-r[k], k))[:_TOP_CATEGORIES]
    unseen = sum(v for k, v in c.items() if k not in r)
    rest_r = sum(r.values()) - sum(r[k] for k in keys)
    rest_c = sum(c.values()) - sum(c.get(k, 0) for k in keys) - unseen
    hist = Histogram(
        name,
        "categorical",
        (*keys, "(other reference categories)", "(not in the reference)"),
        (*(r[k] for k in keys), rest_r, 0),
        (*(c.get(k, 0) for k in keys), rest_c, unseen),
    )
    return verdict, hist


def _import_statistics() -> None:
    from scipy.spatial import distance  # noqa: F401

    scipy_stats()


def compare_files(
    reference: str | os.PathLike[str],
    current: str | os.PathLike[str],
    *,
    config: DriftConfig | None = None,
    categorical: Collection[str] = (),
    columns: Sequence[str] | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> FileDrift:
    """Drift of every column of ``reference`` (or of ``columns``) in ``current``, exactly as
    :func:`~modelward.drift.compare_samples` computes it on the whole columns.

    Numeric columns (ints, floats, decimals) are numeric unless named in ``categorical``; the others
    are categorical. A column of the reference that ``current`` lacks raises
    :class:`~modelward.drift.ProfileMismatch`. ``progress(done, total)`` is called after each column.
    """
    cfg = config or DriftConfig()
    started = time.perf_counter()
    with ExitStack() as stack:
        threads = max(1, workers if workers is not None else min(2, os.cpu_count() or 1))
        pool = stack.enter_context(
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="modelward-drift")
        )
        # SciPy's statistics take a second or more to import: on a worker, while this thread parses.
        warm = pool.submit(_import_statistics)
        ref = stack.enter_context(open_table(reference))
        cur = stack.enter_context(open_table(current))
        names = list(columns) if columns is not None else ref.names
        unknown = [n for n in names if n not in ref.names]
        if unknown:
            raise ConfigError(f"the reference has no column(s) {', '.join(unknown)}")
        absent = [n for n in names if n not in cur.names]
        if absent:
            raise ProfileMismatch(f"the current data lacks column(s) {', '.join(absent)}", absent[0])
        wanted = {categorical} if isinstance(categorical, str) else set(categorical)
        unused = sorted(wanted - set(names))
        if unused:
            raise ConfigError(f"categorical names unknown column(s) {', '.join(unused)}")
        cfg.check_features(names)

        def one(name: str) -> tuple[FeatureDrift, Histogram]:
            rule = {name: cfg.features[name]} if name in cfg.features else {}
            own = replace(cfg, features=rule)
            try:
                if _is_numeric(ref.schema.field(name).type) and name not in wanted:
                    return _numeric(name, ref, cur, own)
                return _categorical(name, ref.column(name), cur.column(name), own)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                kinds = f"{ref.schema.field(name).type} in the reference, {cur.schema.field(name).type} now"
                raise ConfigError(f"column '{name}' cannot be compared ({kinds}): {exc}") from exc
            finally:
                pa.default_memory_pool().release_unused()

        results: list[tuple[FeatureDrift, Histogram]] = []
        warm.result()
        for done, result in enumerate(pool.map(one, names), start=1):
            results.append(result)
            if progress is not None:
                progress(done, len(names))
        report = DriftReport.of(tuple(v for v, _ in results), (), cfg.drift_share)
        return FileDrift(
            str(reference),
            str(current),
            ref.rows,
            cur.rows,
            report,
            {h.feature: h for _, h in results},
            time.perf_counter() - started,
        )
