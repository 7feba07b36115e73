"""Inserting a batch of prediction log items: one transaction, and no row costs another its place.

What the writer thread, or the writer process (:mod:`modelward.monitoring.log_process`), does with
each batch the :class:`~modelward.monitoring.prediction_log.PredictionLogger` takes off its queue.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from modelward.monitoring.log_marks import Checkpoint
from modelward.monitoring.log_rows import (
    COLUMNS,
    PredictionRecord,
    RecordBatch,
    fits,
    insert_sql,
    record_row,
    storable_rows,
)
from modelward.store.store import Store
from modelward.store.tables import predictions

__all__ = ["write_items"]

Item = PredictionRecord | RecordBatch

# SQLite's -> and ->> JSON operators (3.38, 2022): batches go in as one JSON document each.
_JSON_OPERATORS = sqlite3.sqlite_version_info >= (3, 38)


def _rows_per_statement(conn: Any) -> int:
    """Rows per multi-row INSERT: as many as the database takes parameters for, at most 500."""
    limit = 999  # SQLite's smallest limit (before 3.32)
    if conn.dialect.name == "postgresql":
        limit = 65_535
    else:
        raw = getattr(conn.connection, "dbapi_connection", None)
        getlimit = getattr(raw, "getlimit", None)
        if getlimit is not None:
            with contextlib.suppress(Exception):
                limit = int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    return max(1, min(500, limit // len(COLUMNS)))


def write_items(
    store: Store, items: Sequence[Item], checkpoint: Checkpoint | None = None
) -> tuple[int, int, int, BaseException | None]:
    """Encode ``items`` and insert them in one transaction: the rows encoded, the rows that could
    not be stored at all (left out, each alone), the rows stored repaired, and the error that rolled
    the transaction back (None: committed). What a writer thread, or the writer process, does with
    each batch.

    No row costs another its place: an item whose text the store cannot hold as it is (see
    :mod:`modelward.monitoring.log_rows`) is encoded row by row, each row repaired or left out
    alone; and when the database still refuses the batch for its data (a constraint, a value),
    the batch is written again in halves, each in a savepoint, until the rows it refuses are alone.

    ``checkpoint``: the writer's row in ``log_writers``, updated in the same transaction (so its
    ``written`` is exact whatever happens to the writer afterwards)."""
    as_json = store.engine.dialect.name == "sqlite" and _JSON_OPERATORS
    rows, documents, encoded, bad, repaired = _encode(items, as_json)
    if not encoded:
        if checkpoint is not None and bad:
            with contextlib.suppress(Exception), store.write() as conn:
                checkpoint.apply(conn, 0, 0, bad)
        return 0, bad, repaired, None
    try:
        with store.write() as conn:
            for sql, params in documents:
                conn.exec_driver_sql(sql, params)
            if rows:
                _insert_rows(conn, rows, store.busy_timeout_ms)
            if checkpoint is not None:
                checkpoint.apply(conn, encoded, repaired, bad)
    except BaseException as exc:  # the caller counts it, whatever it is
        if not _refused_data(exc):
            return encoded, bad, repaired, exc
    else:
        return encoded, bad, repaired, None
    # The database refused some row's data: every row again, one by one, then in halves.
    rows, repaired, bad = [], 0, 0
    for item in items:
        got, fixed, failed = storable_rows(item)
        rows.extend(got)
        repaired += fixed
        bad += failed
    try:
        with store.write() as conn:
            refused = _insert_isolating(conn, rows, store.busy_timeout_ms)
            if checkpoint is not None:
                checkpoint.apply(conn, len(rows) - refused, repaired, bad + refused)
    except BaseException as exc:
        return len(rows), bad, repaired, exc
    return len(rows) - refused, bad + refused, repaired, None


def _encode(
    items: Sequence[Item], as_json: bool
) -> tuple[list[tuple[Any, ...]], list[tuple[str, tuple[Any, ...]]], int, int, int]:
    """Row tuples, JSON documents (whole batches through SQLite's json_each), and the counts:
    rows encoded, rows left out, rows repaired."""
    rows: list[tuple[Any, ...]] = []
    documents: list[tuple[str, tuple[Any, ...]]] = []
    encoded = bad = repaired = 0
    for item in items:
        try:
            if not fits(item):
                raise ValueError("text the store cannot hold as it is")
            statement = item.json_insert() if as_json and isinstance(item, RecordBatch) else None
            if statement is not None:
                documents.append(statement)
            elif isinstance(item, RecordBatch):
                rows.extend(item.rows())
            else:
                rows.append(record_row(item))
            encoded += len(item)
        except Exception:  # row by row: each stored, repaired or left out alone
            got, fixed, failed = storable_rows(item)
            rows.extend(got)
            encoded += len(got)
            repaired += fixed
            bad += failed
    return rows, documents, encoded, bad, repaired


def _refused_data(exc: BaseException) -> bool:
    """The database (or its driver, binding a value) refused a row's data, not the write itself:
    a constraint, a value out of range, text it cannot encode. A locked or unreachable store is
    not such a refusal (that batch is dropped whole, as any row of it would be)."""
    if isinstance(exc, DataError | IntegrityError):
        return True
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        return isinstance(exc.orig, ValueError | TypeError | OverflowError)
    return isinstance(exc, ValueError | TypeError | OverflowError)


def _insert_isolating(conn: Any, rows: list[tuple[Any, ...]], busy_timeout_ms: int) -> int:
    """Insert ``rows`` in a savepoint; when the database refuses their data, each half in its own,
    down to single rows, which are left out. Returns how many rows were left out."""
    if not rows:
        return 0
    try:
        with conn.begin_nested():
            _insert_rows(conn, rows, busy_timeout_ms)
    except Exception as exc:
        if not _refused_data(exc):
            raise
        if len(rows) == 1:
            return 1
        mid = len(rows) // 2
        return _insert_isolating(conn, rows[:mid], busy_timeout_ms) + _insert_isolating(
            conn, rows[mid:], busy_timeout_ms
        )
    return 0


def _insert_rows(conn: Any, rows: list[tuple[Any, ...]], busy_timeout_ms: int) -> None:
    if conn.dialect.name == "postgresql":
        # Wait for a locked table no longer than SQLite would (the store's busy timeout).
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, int(busy_timeout_ms))}")
    style = conn.dialect.paramstyle
    if insert_sql(style) is None:  # a driver whose placeholders we do not know: SQLAlchemy's insert
        conn.execute(predictions.insert(), [dict(zip(COLUMNS, r, strict=True)) for r in rows])
        return
    step = _rows_per_statement(conn)
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        conn.exec_driver_sql(insert_sql(style, len(chunk)) or "", tuple(itertools.chain.from_iterable(chunk)))
