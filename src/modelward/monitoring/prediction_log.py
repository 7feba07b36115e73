"""The prediction log writer: records go to the store in batches, from one background thread.

Serving must never wait for, or fail because of, the log. :meth:`PredictionLogger.submit` only samples,
redacts and appends to a bounded in-memory queue; a daemon thread takes batches off the queue and
writes each batch in one transaction, itself or (``process=True``, the server's default) through a
writer process that does the encoding and the insert outside this process's interpreter lock
(:mod:`modelward.monitoring.log_process`). When the queue is full, or a batch cannot be written (store down,
locked, read-only), the records are dropped and counted, never retried and never raised.

Every record that survives sampling is *produced*; at any moment::

    produced == written + dropped + queued

where ``queued`` also counts the batch being written. ``sampled_out`` counts records left out on
purpose by sampling and is not part of ``produced``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import pickle
import random
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from modelward.errors import ConfigError
from modelward.monitoring.log_process import WriterProcess, reason_of
from modelward.monitoring.log_rows import (
    COLUMNS,
    PredictionRecord,
    RecordBatch,
    fits,
    insert_sql,
    record_row,
    storable_rows,
)
from modelward.monitoring.redaction import Redactor, canonical_json
from modelward.store.store import Store
from modelward.store.tables import predictions

__all__ = [
    "LogStats",
    "PredictionLogger",
    "PredictionRecord",
    "RecordBatch",
    "Redactor",
    "WriterProcessError",
    "canonical_json",
    "write_items",
]

Item = PredictionRecord | RecordBatch

log = logging.getLogger("modelward.prediction_log")

_MAX_BACKOFF = 2.0
# SQLite's -> and ->> JSON operators (3.38, 2022): batches go in as one JSON document each.
_JSON_OPERATORS = sqlite3.sqlite_version_info >= (3, 38)


@dataclass(frozen=True, slots=True)
class LogStats:
    produced: int
    written: int
    dropped: int
    queued: int
    sampled_out: int
    repaired: int = 0  # written with text escaped or cut (also in written)
    rejected: int = 0  # rows the store could not take even repaired, dropped alone (also in dropped)


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


def _in_memory(url: str) -> bool:
    try:
        parsed = make_url(url)
    except Exception:  # Store.open says what is wrong with it
        return False
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def _notify(callback: Callable[[int], None] | None, n: int) -> None:
    if callback is None or n <= 0:
        return
    try:
        callback(n)
    except Exception:  # a metrics hook must not break serving or the writer
        log.debug("prediction log callback %r failed", callback, exc_info=True)


class PredictionLogger:
    """Writes prediction records to the store in batches from a background thread. submit() never
    blocks and never raises: when the bounded queue is full, or when a batch cannot be written (store
    down, locked, read-only), the records are dropped and counted.
    Invariant: produced == written + dropped + queued (sampled-out records are not produced).
    """

    def __init__(
        self,
        store: Store,
        *,
        capacity: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.25,
        sample_rate: float = 1.0,
        redactor: Redactor | None = None,
        seed: int | None = None,
        on_written: Callable[[int], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
        on_produced: Callable[[int], None] | None = None,
        on_repaired: Callable[[int], None] | None = None,
        on_rejected: Callable[[int], None] | None = None,
        process: bool = False,
    ) -> None:
        if capacity < 1 or batch_size < 1:
            raise ConfigError("the prediction log needs capacity >= 1 and batch_size >= 1")
        if not flush_interval > 0:
            raise ConfigError("the prediction log flush interval must be positive")
        if not 0.0 <= sample_rate <= 1.0:
            raise ConfigError(f"prediction log sample rate must be between 0 and 1, not {sample_rate}")
        self.store = store
        self.capacity = capacity
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.sample_rate = sample_rate
        self.redactor = redactor
        self._rng = random.Random(seed)  # noqa: S311 - sampling, not security
        self._on_written = on_written
        self._on_dropped = on_dropped
        self._on_produced = on_produced
        self._on_repaired = on_repaired
        self._on_rejected = on_rejected
        self._queue: deque[Item] = deque()
        self._rows = 0  # rows in the queue (a batch holds several)
        self._flushing = 0  # callers waiting in flush(): the writer does not wait for a full batch
        self._cond = threading.Condition(threading.Lock())
        self._produced = self._written = self._dropped = self._queued = self._sampled_out = 0
        self._repaired = self._rejected = 0
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._failing = False
        self._streak_dropped = 0
        # Encode and insert in a writer process (modelward.monitoring.log_process) rather than in
        # this process's writer thread: the rows' Python work then holds another interpreter's lock.
        # An in-memory SQLite database exists in this process only, so it keeps the thread.
        self.process = process and not _in_memory(store.url)
        self._child: WriterProcess | None = None

    # -- producer side ---------------------------------------------------------------------------

    def start(self) -> PredictionLogger:
        with self._cond:
            if self._closed:
                raise ConfigError("this prediction logger is closed; create a new one")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="modelward-prediction-log", daemon=True
                )
                self._thread.start()
        return self

    def submit(self, records: Sequence[PredictionRecord]) -> None:
        """Sample, redact and queue ``records``; returns at once whatever happens to them later."""
        try:
            self._submit(records)
        except Exception:  # pragma: no cover - nothing above should raise; stay silent for the caller
            log.debug("prediction log submit failed", exc_info=True)

    def _submit(self, records: Sequence[PredictionRecord]) -> None:
        kept: list[PredictionRecord] = []
        sampled_out = failed = 0
        rate = self.sample_rate
        for record in records:
            if rate < 1.0 and self._rng.random() >= rate:
                sampled_out += 1
                continue
            if self.redactor is not None:
                try:
                    record = replace(record, inputs=self.redactor.apply(record.inputs))
                except Exception:
                    failed += 1
                    continue
            kept.append(record)
        self._enqueue(kept, sampled_out, failed)

    def _enqueue(self, items: Sequence[Item], sampled_out: int, failed: int) -> None:
        with self._cond:
            room = 0 if self._closed else max(0, self.capacity - self._rows)
            queued = 0
            for item in items:
                if len(item) > room:
                    break
                self._queue.append(item)
                room -= len(item)
                queued += len(item)
            self._rows += queued
            dropped = sum(len(i) for i in items) - queued + failed
            self._sampled_out += sampled_out
            self._produced += queued + dropped
            self._queued += queued
            self._dropped += dropped
            # Wake the writer for a full batch only: it wakes by itself every flush interval, and a
            # wake-up per request would cost a thread switch per request.
            if queued and self._rows >= self.batch_size:
                self._cond.notify_all()
        if failed:
            log.warning(
                "prediction log: %d records dropped because their inputs could not be redacted", failed
            )
        _notify(self._on_produced, queued + dropped)
        _notify(self._on_dropped, dropped)

    def submit_batch(self, batch: RecordBatch) -> None:
        """Like :meth:`submit` for the rows a server answered together (cheaper per row)."""
        try:
            self._submit_batch(batch)
        except Exception:  # pragma: no cover - stay silent for the caller
            log.debug("prediction log submit failed", exc_info=True)

    def _submit_batch(self, batch: RecordBatch) -> None:
        n, rate, sampled_out, failed = len(batch), self.sample_rate, 0, 0
        if rate < 1.0:
            keep = [i for i in range(n) if self._rng.random() < rate]
            sampled_out = n - len(keep)
            if len(keep) < n:
                batch = batch.subset(keep)
        if len(batch):
            try:
                batch = batch.redacted(self.redactor)
            except Exception:
                failed = len(batch)
        self._enqueue([batch] if len(batch) and not failed else [], sampled_out, failed)

    @property
    def stats(self) -> LogStats:
        with self._cond:
            return LogStats(
                self._produced,
                self._written,
                self._dropped,
                self._queued,
                self._sampled_out,
                self._repaired,
                self._rejected,
            )

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued record was written or dropped; False if that took longer than timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._queued:
                    remaining = deadline - time.monotonic()
                    thread = self._thread
                    if remaining <= 0 or thread is None or not thread.is_alive():
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._flushing -= 1

    def close(self, timeout: float = 5.0) -> None:
        """Flush, then stop the writer; idempotent. Records still queued after ``timeout`` are dropped."""
        with self._cond:
            if self._closed:
                return
        deadline = time.monotonic() + timeout
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(max(deadline - time.monotonic(), 0.1))
        with self._cond:
            left = self._rows
            self._queue.clear()
            self._rows = 0
            self._queued -= left
            self._dropped += left
            self._cond.notify_all()
        if left:
            log.warning(
                "prediction log: %d queued records dropped at close (not written within the timeout)", left
            )
            _notify(self._on_dropped, left)

    def __enter__(self) -> PredictionLogger:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writer thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.0
        while True:
            try:
                if backoff:
                    with self._cond:
                        self._cond.wait_for(lambda: self._stopping, backoff)
                batch = self._take()
                if batch is None:
                    self._stop_child(5.0)
                    return
                if not batch:
                    continue
                ok = self._write(batch)
                backoff = 0.0 if ok else min(max(backoff * 2, self.flush_interval, 0.05), _MAX_BACKOFF)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:  # keep the writer alive whatever happens
                log.exception("prediction log writer: unexpected error (the writer keeps running)")
                backoff = max(backoff, self.flush_interval)

    def _take(self) -> list[Item] | None:
        """Items of up to batch_size rows, once batch_size rows are queued or flush_interval has
        passed (or a flush or close asks). None: stop."""
        with self._cond:
            if self._rows < self.batch_size and not self._stopping:
                self._cond.wait_for(
                    lambda: self._rows >= self.batch_size or self._stopping or self._flushing,
                    self.flush_interval,
                )
            if not self._queue:
                return None if self._stopping else []
            taken: list[Item] = []
            rows = 0
            while self._queue and (not taken or rows + len(self._queue[0]) <= self.batch_size):
                item = self._queue.popleft()
                taken.append(item)
                rows += len(item)
            self._rows -= rows
            return taken

    def _write(self, batch: list[Item]) -> bool:
        error: BaseException | None
        if self.process:
            encoded, bad, repaired, error = self._write_in_child(batch)
        else:
            encoded, bad, repaired, error = write_items(self.store, batch)
        written = 0 if error is not None else encoded
        repaired = 0 if error is not None else repaired
        dropped = sum(len(i) for i in batch) - written
        with self._cond:
            self._written += written
            self._dropped += dropped
            self._repaired += repaired
            self._rejected += bad
            self._queued -= sum(len(i) for i in batch)
            self._cond.notify_all()
        if bad:
            log.warning("prediction log: %d records dropped because the store could not take them", bad)
        if error is not None:
            self._streak_dropped += encoded
            if not self._failing:
                self._failing = True
                log.warning(
                    "prediction log: cannot write to the store, dropped %d records: %s "
                    "(further drops are counted, not logged, until a write succeeds)",
                    encoded,
                    reason_of(error),
                )
        elif self._failing:
            log.warning(
                "prediction log: writing again; %d records were dropped while the store was not writable",
                self._streak_dropped,
            )
            self._failing = False
            self._streak_dropped = 0
        _notify(self._on_written, written)
        _notify(self._on_dropped, dropped)
        _notify(self._on_repaired, repaired)
        _notify(self._on_rejected, bad)
        if isinstance(error, SystemExit | KeyboardInterrupt):
            raise error
        return error is None

    def _write_in_child(self, batch: list[Item]) -> tuple[int, int, int, BaseException | None]:
        """The batch through the writer process, started (again) when there is none; a child that
        dies or stops answering loses this batch (counted as dropped) and is replaced next time."""
        n = sum(len(i) for i in batch)
        child = self._child
        try:
            if child is None or not child.alive():
                if child is not None:
                    child.close(0.1)
                store = self.store
                child = self._child = WriterProcess(
                    store.url, busy_timeout_ms=store.busy_timeout_ms, power_safe=store.power_safe
                )
            encoded, bad, repaired, reason = child.write(batch)
        except (OSError, EOFError, pickle.PickleError) as exc:
            why = reason_of(exc)
            if child is not None:
                child.close(0.5)  # reaped: its exit says what happened
                why = child.describe_exit()
            self._child = None
            return n, 0, 0, WriterProcessError(why)
        return encoded, bad, repaired, None if reason is None else WriterProcessError(reason)

    def _stop_child(self, timeout: float) -> None:
        child, self._child = self._child, None
        if child is not None:
            code = child.close(timeout)
            if code:
                log.warning("prediction log: the writer process exited with code %s", code)


class WriterProcessError(RuntimeError):
    """A batch the writer process did not write: its reason, as the child (or its exit) gave it."""


def write_items(store: Store, items: Sequence[Item]) -> tuple[int, int, int, BaseException | None]:
    """Encode ``items`` and insert them in one transaction: the rows encoded, the rows that could
    not be stored at all (left out, each alone), the rows stored repaired, and the error that rolled
    the transaction back (None: committed). What a writer thread, or the writer process, does with
    each batch.

    No row costs another its place: an item whose text the store cannot hold as it is (see
    :mod:`modelward.monitoring.log_rows`) is encoded row by row, each row repaired or left out
    alone; and when the database still refuses the batch for its data (a constraint, a value),
    the batch is written again in halves, each in a savepoint, until the rows it refuses are alone."""
    as_json = store.engine.dialect.name == "sqlite" and _JSON_OPERATORS
    rows, documents, encoded, bad, repaired = _encode(items, as_json)
    if not encoded:
        return 0, bad, repaired, None
    try:
        with store.write() as conn:
            for sql, params in documents:
                conn.exec_driver_sql(sql, params)
            if rows:
                _insert_rows(conn, rows, store.busy_timeout_ms)
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
