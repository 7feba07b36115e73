"""Reading the prediction log back: tail it, page through it as DataFrames, export it to a file.

Rows are read by keyset pagination on ``id`` (never OFFSET), so an export of millions of rows holds one
chunk in memory at a time. Inputs and outputs are flattened into columns: ``input.<field>`` per input
field and ``output.<member>`` per output member, with class probabilities as
``output.probability.<class>``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

import orjson
import pandas as pd
from sqlalchemy import func, or_, select, true

from modelward import files
from modelward.durations import duration_seconds
from modelward.errors import ConfigError
from modelward.monitoring.prediction_log import canonical_json
from modelward.store.store import Store
from modelward.store.tables import feedback, log_writers, predictions

__all__ = [
    "BASE_COLUMNS",
    "count_predictions",
    "export",
    "iter_predictions",
    "log_summary",
    "parse_since",
    "resolve_format",
    "tail",
]

log = logging.getLogger("modelward.prediction_log")

BASE_COLUMNS = ("request_id", "ts", "model", "version", "arm", "routing_key", "latency_ms")
_SUFFIXES: dict[str, Literal["parquet", "csv"]] = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def parse_since(text: str, *, now: float | None = None) -> float:
    """``"30s"``, ``"15m"``, ``"2h"``, ``"7d"``, ``"1w"`` ago, or an ISO-8601 date or datetime (naive
    means UTC), as UNIX epoch seconds."""
    seconds = duration_seconds(text, bare=False)
    if seconds is not None:
        return (datetime.now(UTC).timestamp() if now is None else now) - seconds
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"cannot read {text!r} as a time: use a duration ago such as 30s, 15m, 2h or 7d, or an "
            "ISO-8601 date or datetime such as 2026-01-31 or 2026-01-31T12:00:00Z (naive means UTC)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_COLUMNS = (
    predictions.c.id,
    predictions.c.request_id,
    predictions.c.ts,
    predictions.c.model,
    predictions.c.version,
    predictions.c.arm,
    predictions.c.routing_key,
    predictions.c.inputs,
    predictions.c.outputs,
    predictions.c.latency_ms,
    predictions.c.consent,
)
# A labelled export's columns besides: the label as sent (JSON) and its numeric form.
_LABEL_COLUMNS = (feedback.c.label.label("label_json"), feedback.c.value.label("label_value"))


def tail(store: Store, model: str, *, limit: int = 20, after_id: int | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` rows of ``model``, oldest first; with ``after_id``, the oldest ``limit`` rows
    whose id is greater (call again with the last id to follow the log without missing rows)."""
    query = select(*_COLUMNS).where(predictions.c.model == model)
    if after_id is None:
        query = query.order_by(predictions.c.id.desc()).limit(limit)
    else:
        query = query.where(predictions.c.id > after_id).order_by(predictions.c.id).limit(limit)
    with store.read() as conn:
        rows = list(conn.execute(query).all())
    if after_id is None:
        rows.reverse()
    return [
        {
            "id": int(r.id),
            "request_id": r.request_id,
            "ts": _iso(r.ts),
            "model": r.model,
            "version": r.version,
            "arm": r.arm,
            "routing_key": r.routing_key,
            "inputs": orjson.loads(r.inputs),
            "outputs": orjson.loads(r.outputs),
            "latency_ms": r.latency_ms,
            "consent": bool(r.consent),
        }
        for r in rows
    ]


def _window(
    query: Any,
    model: str,
    since: float | None,
    until: float | None,
    consented_only: bool = False,
    labeled: bool = False,
) -> Any:
    if labeled:  # the rows with a label, each request once: a shadow's copy answered no client
        query = query.select_from(
            predictions.join(feedback, feedback.c.request_id == predictions.c.request_id)
        ).where(or_(predictions.c.arm.is_(None), predictions.c.arm != "shadow"))
    query = query.where(predictions.c.model == model)
    if consented_only:  # rows of requests without consent are never exported for retraining
        query = query.where(predictions.c.consent.is_(true()))
    if since is not None:
        query = query.where(predictions.c.ts >= since)
    if until is not None:
        query = query.where(predictions.c.ts < until)
    return query


def count_predictions(
    store: Store,
    model: str,
    *,
    since: float | None = None,
    until: float | None = None,
    consented_only: bool = False,
    labeled: bool = False,
) -> int:
    """How many rows of ``model`` fall in ``[since, until)`` (only those with consent, if asked; only
    those with a label and not a shadow's, if ``labeled``)."""
    query = _window(select(func.count()), model, since, until, consented_only, labeled)
    with store.read() as conn:
        return int(conn.execute(query).scalar_one())


def _scalar(value: Any) -> Any:
    return canonical_json(value) if isinstance(value, dict | list) else value


def _flatten_outputs(prefix: str, value: dict[str, Any], out: dict[str, Any]) -> None:
    for key, member in value.items():
        name = "output.probability" if prefix == "output" and key == "probabilities" else f"{prefix}.{key}"
        if isinstance(member, dict):
            _flatten_outputs(name, member, out)
        else:
            out[name] = _scalar(member)


def _flat_row(r: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "request_id": r.request_id,
        "ts": r.ts,
        "model": r.model,
        "version": r.version,
        "arm": r.arm,
        "routing_key": r.routing_key,
        "latency_ms": r.latency_ms,
    }
    for key, value in orjson.loads(r.inputs).items():
        row[f"input.{key}"] = _scalar(value)
    outputs: dict[str, Any] = {}
    _flatten_outputs("output", orjson.loads(r.outputs), outputs)
    row.update(outputs)
    if "label_json" in r._fields:
        row["label"] = _scalar(orjson.loads(r.label_json))
        row["label_value"] = r.label_value
    return row


def iter_predictions(
    store: Store,
    model: str,
    *,
    since: float | None = None,
    until: float | None = None,
    chunk_size: int = 10_000,
    labeled: bool = False,
) -> Iterator[pd.DataFrame]:
    """The rows of ``model`` in ``[since, until)`` in id order, ``chunk_size`` rows per DataFrame;
    rows of requests without consent are left out (they are never exported for retraining).
    ``labeled``: only the rows with a label (feedback, joined by request id), shadow copies left out,
    with the columns ``label`` (as sent) and ``label_value`` (its numeric form, if any) at the end.

    Rows written after the first chunk was read are left out, so one call sees one consistent set.
    Columns: :data:`BASE_COLUMNS` (``ts`` as ``datetime64[ns, UTC]``), then ``input.<field>``, then
    ``output.<member>`` (``output.probability.<class>`` for probabilities). Nested input values and
    lists are JSON text. Each chunk has the columns its own rows use.
    """
    if chunk_size < 1:
        raise ConfigError("chunk_size must be at least 1")
    with store.read() as conn:
        last_id = conn.execute(
            _window(select(func.max(predictions.c.id)), model, since, until, True, labeled)
        ).scalar()
    if last_id is None:
        return
    after = 0
    while True:
        query = (
            _window(
                select(*_COLUMNS, *(_LABEL_COLUMNS if labeled else ())), model, since, until, True, labeled
            )
            .where(predictions.c.id > after, predictions.c.id <= last_id)
            .order_by(predictions.c.id)
            .limit(chunk_size)
        )
        with store.read() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return
        after = int(rows[-1].id)
        frame = pd.DataFrame.from_records([_flat_row(r) for r in rows])
        frame["ts"] = pd.to_datetime(frame["ts"], unit="s", utc=True).astype("datetime64[ns, UTC]")
        yield frame
        if len(rows) < chunk_size or after >= last_id:
            return


def resolve_format(path: Path, fmt: str | None) -> Literal["parquet", "csv"]:
    """``fmt`` checked, or the format named by the suffix of ``path``; ConfigError otherwise."""
    if fmt is not None:
        if fmt not in ("parquet", "csv"):
            raise ConfigError(f"unknown export format {fmt!r}: use parquet or csv")
        return "parquet" if fmt == "parquet" else "csv"
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise ConfigError(
            f"cannot tell the export format of {str(path)!r} from its suffix: name it .parquet or .csv, "
            "or pass the format (--format parquet|csv)"
        )
    return found


def export(
    store: Store,
    model: str,
    path: str | Path,
    *,
    fmt: Literal["parquet", "csv"] | None = None,
    since: float | None = None,
    until: float | None = None,
    chunk_size: int = 10_000,
    progress: Callable[[int], None] | None = None,
    labeled: bool = False,
) -> int:
    """Stream the rows of ``model`` in ``[since, until)`` to a Parquet or CSV file; returns the row count.
    Rows of requests without consent are not exported (:func:`iter_predictions`).

    The format comes from ``fmt`` or the suffix (``.parquet``, ``.pq``, ``.csv``). The first chunk fixes
    the columns: a later chunk's missing columns are written as null, and columns that first appear
    in a later chunk are left out with a warning. In Parquet, numbers are float64 (JSON does not tell
    ``1`` from ``1.0``). The file appears complete or not at all (written aside, then renamed); with no
    rows nothing is written and 0 is returned. ``progress`` is called with each chunk's row count.
    ``labeled``: only labelled rows, with their labels (:func:`iter_predictions`).
    """
    target = files.output_path(path)
    kind = resolve_format(target, fmt)
    total = 0
    with files.atomic_output(target) as out:
        writer = (_ParquetSink if kind == "parquet" else _CsvSink)(out.stream, target.name)
        try:
            chunks = iter_predictions(
                store, model, since=since, until=until, chunk_size=chunk_size, labeled=labeled
            )
            for frame in chunks:
                writer.write(frame)
                total += len(frame)
                if progress is not None:
                    progress(len(frame))
        finally:
            writer.close()
        if total == 0:
            out.discard()
    return total


class _Sink:
    def __init__(self, stream: BinaryIO, name: str) -> None:
        self.stream = stream
        self.name = name
        self.columns: list[str] | None = None
        self._warned: set[str] = set()

    def _align(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.columns is None:
            self.columns = list(frame.columns)
            return frame
        extra = [c for c in frame.columns if c not in self.columns and c not in self._warned]
        if extra:
            self._warned.update(extra)
            log.warning(
                "export to %s: columns %s first appear after the first chunk and are not exported "
                "(export a narrower window, e.g. one version at a time, to get them)",
                self.name,
                ", ".join(extra),
            )
        return frame.reindex(columns=self.columns)

    def write(self, frame: pd.DataFrame) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _CsvSink(_Sink):
    def write(self, frame: pd.DataFrame) -> None:
        first = self.columns is None
        frame = self._align(frame)
        frame.to_csv(self.stream, header=first, index=False)

    def close(self) -> None:
        pass


class _ParquetSink(_Sink):
    def __init__(self, stream: BinaryIO, name: str) -> None:
        super().__init__(stream, name)
        self._writer: Any = None
        self._schema: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = self._align(frame)
        if self._schema is None:
            self._schema = pa.schema([(name, _arrow_type(name, frame[name])) for name in frame.columns])
            self._writer = pq.ParquetWriter(self.stream, self._schema)
        arrays = [_arrow_array(frame[f.name], f.type, f.name, self._warned) for f in self._schema]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._schema))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _arrow_type(name: str, column: pd.Series) -> Any:
    import pyarrow as pa

    fixed = {"ts": pa.timestamp("ns", tz="UTC"), "latency_ms": pa.float64()}
    if name in fixed:
        return fixed[name]
    if name in BASE_COLUMNS:
        return pa.string()
    try:
        inferred = pa.array(column, from_pandas=True).type
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.string()  # mixed kinds (text and numbers): keep every value, as text
    if pa.types.is_integer(inferred) or pa.types.is_floating(inferred):
        return pa.float64()
    if pa.types.is_boolean(inferred):
        return pa.bool_()
    return pa.string()


def _as_text(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value if isinstance(value, str) else canonical_json(value)


def _arrow_array(column: pd.Series, kind: Any, name: str, warned: set[str]) -> Any:
    import pyarrow as pa

    if pa.types.is_timestamp(kind):  # UTC instants, handed over without the deprecated Series.values
        naive = pd.to_datetime(column, utc=True).dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")
        return pa.array(naive, type=pa.timestamp("ns")).cast(kind)
    try:
        return pa.array(column, type=kind, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    if bool(column.isna().all()):
        return pa.nulls(len(column), type=kind)
    if pa.types.is_string(kind):
        return pa.array(column.astype(object).map(_as_text), type=kind, from_pandas=True)
    if name not in warned:
        warned.add(name)
        log.warning("export: column %s holds values that are not %s; they are written as null", name, kind)
    if pa.types.is_boolean(kind):
        cleaned = column.astype(object).map(lambda v: v if isinstance(v, bool) else None)
    else:
        # Integers beyond 2**53 do not convert exactly: cast explicitly (nearest float) rather than fail.
        cleaned = pd.to_numeric(column, errors="coerce").astype("float64")
    return pa.array(cleaned, type=kind, from_pandas=True)


def _extent(store: Store) -> dict[str, Any]:
    """The log's rows, told by the ids at its two ends (index look-ups, not a count: rows written
    in a transaction that rolled back leave gaps on PostgreSQL, so it is an upper bound there)."""
    c = predictions.c
    with store.read() as conn:
        first, last = conn.execute(select(func.min(c.id), func.max(c.id))).one()
        if first is None:
            return {"rows": 0, "oldest": None, "newest": None}
        oldest = conn.execute(select(c.ts).where(c.id == first)).scalar_one()
        newest = conn.execute(select(c.ts).where(c.id == last)).scalar_one()
    return {"rows": int(last) - int(first) + 1, "oldest": _iso(float(oldest)), "newest": _iso(float(newest))}


def _writers(store: Store, marks_dir: Path | None) -> dict[str, Any]:
    with store.read() as conn:
        rows = conn.execute(select(log_writers)).all()
    totals = {
        name: sum(int(getattr(r, name) or 0) for r in rows)
        for name in ("written", "dropped", "repaired", "rejected", "lost")
    }
    states = {state: sum(1 for r in rows if r.state == state) for state in ("running", "closed", "crashed")}
    crashes = sorted((r for r in rows if r.state == "crashed"), key=lambda r: -(r.ended_at or 0.0))
    out: dict[str, Any] = {
        **states,
        **totals,
        "crashes": [
            {
                "writer": r.writer,
                "host": r.host,
                "pid": r.pid,
                "started": _iso(float(r.started_at)),
                "found_dead": _iso(float(r.ended_at)) if r.ended_at is not None else None,
                "lost": int(r.lost or 0),
            }
            for r in crashes[:10]
        ],
        "pending": [],
    }
    if marks_dir is not None:
        from modelward.monitoring.log_marks import pending_losses

        out["pending"] = [
            {"writer": p.writer, "pid": p.pid, "lost": p.lost} for p in pending_losses(store, marks_dir)
        ]
    return out


def log_summary(store: Store, *, marks_dir: Path | None = None) -> dict[str, Any]:
    """What ``modelward predictions stats`` shows: the log's extent and size, its writers' counts
    (summed over every server process that logged: rows written, dropped, repaired, rejected, and
    lost by the ones that died), and the rows retention deleted (docs/prediction-log.md).
    ``marks_dir``: the home's ``log-writers`` folder, whose marks of dead writers not yet settled by
    a restarted server are shown as ``pending``."""
    from modelward.monitoring.log_retention import measure, retention_totals

    return {
        "log": {**_extent(store), "size": measure(store).to_dict()},
        "writers": _writers(store, marks_dir),
        "retention": retention_totals(store),
    }
