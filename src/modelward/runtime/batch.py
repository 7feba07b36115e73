"""Batch scoring: a CSV or Parquet file in, predictions out, in chunks, through the same validation
as the server."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelward import files
from modelward.drift.profile import nested_columns
from modelward.errors import ConfigError, SchemaError
from modelward.runtime.model import LoadedModel
from modelward.validation import FieldProblem, RequestInvalid, validate_columns

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["count_rows", "score_file", "score_frame"]


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    if suffix == ".csv":
        return "csv"
    raise ConfigError(f"{path}: use a .csv or .parquet file")


def count_rows(path: str | os.PathLike[str]) -> int | None:
    """Rows in the file when cheap to know (Parquet metadata); None for CSV."""
    p = Path(path)
    if _format(p) == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(p).metadata.num_rows)
    return None


def _chunks(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    import pandas as pd
    import pyarrow as pa

    try:
        if _format(path) == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size):
                yield batch.to_pandas()
        else:
            yield from pd.read_csv(path, chunksize=chunk_size)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, pa.ArrowException) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


def _numeric_columns(model: LoadedModel, chunk: pd.DataFrame, start: int) -> dict[str, Any]:
    """Columns for validation. A CSV column with one bad cell arrives as text; convert it to
    numbers here so the bad cells, not every row, are the ones reported."""
    import pandas as pd

    columns: dict[str, Any] = {}
    problems: list[str] = []
    for f in model.schema.fields:
        if f.name not in chunk.columns:
            continue
        values = chunk[f.name]
        if f.numeric and (values.dtype == object or pd.api.types.is_string_dtype(values.dtype)):
            converted = pd.to_numeric(values, errors="coerce")
            bad = values.notna() & converted.isna()
            for i in bad.to_numpy().nonzero()[0][:20]:
                cell = str(values.iloc[i])[:40]
                problems.append(f"row {start + int(i) + 1}, field '{f.name}': {cell!r} is not a number")
            values = converted
        columns[f.name] = values.to_numpy()
    if problems:
        raise SchemaError(problems)
    return columns


def _file_message(problem: FieldProblem, start: int) -> str:
    """Name rows as they are numbered in the file (1 = the first data row), not within the chunk."""
    if problem.row is None:
        return problem.message
    detail = problem.message
    if detail.startswith("row ") and ": " in detail:
        detail = detail.split(": ", 1)[1]
    where = f"row {start + problem.row + 1}" + (f", field '{problem.field}'" if problem.field else "")
    return f"{where}: {detail}"


def _score(model: LoadedModel, chunk: pd.DataFrame, start: int, keep: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    missing = [c for c in keep if c not in chunk.columns]
    if missing:
        raise ConfigError(f"--keep column(s) not in the input: {', '.join(missing)}")
    columns = _numeric_columns(model, chunk, start)
    try:
        batch = validate_columns(columns, model.schema)
    except RequestInvalid as exc:
        raise SchemaError([_file_message(p, start) for p in exc.field_problems]) from exc
    frame = batch.to_frame()
    out = pd.DataFrame({c: chunk[c].to_numpy() for c in keep})
    if model.is_classifier and hasattr(model.native, "predict_proba"):
        probabilities = np.asarray(model.predict_proba(frame), dtype=np.float64)
        out["prediction"] = np.asarray(model.class_values, dtype=object)[np.argmax(probabilities, axis=1)]
        if all(isinstance(v, (int, np.integer)) for v in model.class_values):
            out["prediction"] = out["prediction"].astype("int64")
        for i, cls in enumerate(model.classes):
            out[f"probability_{cls}"] = probabilities[:, i]
    else:
        out["prediction"] = model.predict(frame)
    return out


def score_frame(model: LoadedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Score a DataFrame as :func:`score_file` scores each chunk (the server's validation first):
    ``prediction``, and ``probability_<class>`` per class for classifiers; columns beyond the
    model's schema are ignored. SchemaError names the rows that do not validate."""
    return _score(model, frame, 0, ())


def _as_json_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A CSV cell holds a list (a prediction per item, a tensor) as its JSON text, which the
    validation reads back; parquet keeps lists as lists."""
    import orjson

    nested = nested_columns(frame)
    if not nested:
        return frame
    opt = orjson.OPT_SERIALIZE_NUMPY
    out = frame.copy(deep=False)
    for c in nested:
        out[c] = [v if v is None else orjson.dumps(v, option=opt).decode() for v in frame[c]]
    return out


def score_file(
    model: LoadedModel,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    chunk_size: int = 10_000,
    keep: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
) -> int:
    """Score every row of ``input_path`` into ``output_path`` (.parquet or .csv); returns the row count.

    The output has the ``keep`` columns, ``prediction``, and ``probability_<class>`` per class for
    classifiers. Nothing is written when a row fails validation: the error names the file's rows.
    """
    source = Path(input_path).expanduser()
    if not source.is_file():
        raise ConfigError(f"input file {source} does not exist")
    target = files.output_path(output_path)
    out_format = _format(target)
    if target.resolve() == source.resolve():
        raise ConfigError(f"the output {target} is the input file; choose another path")
    if chunk_size < 1:
        raise ConfigError("chunk size must be at least 1")
    writer: Any = None
    rows = 0
    # The output appears whole or not at all; a failure leaves no part of it (modelward.files).
    with files.atomic_output(target) as out:
        try:
            for chunk in _chunks(source, chunk_size):
                scored = _score(model, chunk, rows, keep)
                if out_format == "parquet":
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    table = pa.Table.from_pandas(scored, preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(out.stream, table.schema)
                    writer.write_table(table)
                else:
                    _as_json_text(scored).to_csv(out.stream, header=rows == 0, index=False)
                rows += len(chunk)
                if progress is not None:
                    progress(len(chunk))
        finally:
            if writer is not None:
                writer.close()
        if rows == 0:
            raise ConfigError(f"{source} has no rows")
    return rows
