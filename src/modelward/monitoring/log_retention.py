"""Retention of the prediction log: rows older than an age, and the oldest rows beyond a size, are
deleted by the controller in small batches that never stall the server.

``MODELWARD_LOG_RETENTION`` gives the limits (``7d``, ``20GB``, ``7d,20GB``;
:func:`modelward.config.parse_log_retention`). The controller (inside ``modelward serve``, under its
store lease, or ``modelward controller``) runs :class:`RetentionTask` every tick. Each run deletes
at most ``batch_rows`` rows per transaction, oldest first by ``id`` (the primary key: no scan, no
index on time alone to keep up on every insert), pauses ``pause`` seconds between batches so that
the log writer and the request path get the database lock and the interpreter back, and stops after
``budget`` seconds; what is left goes at the next tick. The deleted counts are kept in the store
(``modelward_log_state``, in the transaction of each delete) and reported through ``on_deleted``
(the Prometheus counter ``modelward_prediction_log_retention_deleted_total{reason}``).

The size counted (:func:`measure`):

- SQLite: the database's pages in use, ``(page_count - freelist_count) * page_size``: the log and
  modelward's other, small, tables; free pages and the WAL are not counted. Deleting rows frees pages
  at once. A database created by this version uses ``auto_vacuum=INCREMENTAL``, and each run returns
  free pages to the file system (``PRAGMA incremental_vacuum``, ``vacuum_pages`` at a time); an older
  database reuses its free pages for new rows (the file stops growing) until ``modelward predictions
  vacuum`` converts it, once, while no server runs.
- PostgreSQL: ``pg_total_relation_size`` of the log's table (with its indexes and TOAST). Deleted
  rows' space is made reusable by autovacuum, not given back, so the table's size does not drop
  after a delete. The live part is estimated as ``size * rows / peak_rows``, ``peak_rows`` being the
  most rows the table has held (kept in ``modelward_log_state``; reset when the table shrinks, after
  a ``VACUUM FULL``): deleting rows lowers the estimate at once, and new rows that fill the freed
  space raise it again without the table growing.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from modelward.config import parse_log_retention
from modelward.store.store import Store
from modelward.store.tables import log_state, predictions

__all__ = ["LogSize", "RetentionPolicy", "RetentionTask", "measure", "retention_totals"]

log = logging.getLogger("modelward.prediction_log")

_DELETED = "retention.deleted."  # + reason: rows deleted by retention, ever
_LAST_RUN = "retention.last_run"
_PEAK_ROWS = "retention.peak_rows"  # PostgreSQL: the most rows the table held
_LAST_BYTES = "retention.last_bytes"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    max_age: float | None = None  # seconds
    max_bytes: int | None = None

    @classmethod
    def from_spec(cls, text: str) -> RetentionPolicy:
        """``"7d"``, ``"20GB"``, ``"7d,20GB"``; empty: keep everything. Raises ValueError."""
        age, size = parse_log_retention(text)
        return cls(age, size)

    @property
    def enabled(self) -> bool:
        return self.max_age is not None or self.max_bytes is not None


@dataclass(frozen=True, slots=True)
class LogSize:
    """The log as retention sees it: the size counted against the limit, and the rows by id range."""

    bytes: int  # counted against the limit (SQLite: pages in use; PostgreSQL: the live estimate)
    rows: int  # last id - first id + 1
    first_id: int | None
    last_id: int | None
    how: str  # what ``bytes`` measures, in words
    file_bytes: int | None = None  # SQLite: the database file (pages in use and free)
    free_bytes: int | None = None  # SQLite: free pages, returned by incremental vacuum
    table_bytes: int | None = None  # PostgreSQL: pg_total_relation_size
    auto_vacuum: str | None = None  # SQLite: none | full | incremental

    def to_dict(self) -> dict[str, Any]:
        return {
            "bytes": self.bytes,
            "rows": self.rows,
            "how": self.how,
            "file_bytes": self.file_bytes,
            "free_bytes": self.free_bytes,
            "table_bytes": self.table_bytes,
            "auto_vacuum": self.auto_vacuum,
        }


def _ids(conn: Any) -> tuple[int | None, int | None]:
    first, last = conn.execute(select(func.min(predictions.c.id), func.max(predictions.c.id))).one()
    return (None if first is None else int(first)), (None if last is None else int(last))


def _state(conn: Any, name: str) -> float | None:
    value = conn.execute(select(log_state.c.value).where(log_state.c.name == name)).scalar()
    return None if value is None else float(value)


def _set_state(conn: Any, name: str, value: float, *, add: bool = False) -> None:
    now = time.time()
    column = log_state.c.value
    done = conn.execute(
        update(log_state)
        .where(log_state.c.name == name)
        .values(value=column + value if add else value, updated_at=now)
    )
    if done.rowcount == 0:
        conn.execute(insert(log_state).values(name=name, value=value, updated_at=now))


def measure(store: Store) -> LogSize:
    """The log's size as retention counts it (see the module's docstring), and its rows."""
    with store.read() as conn:
        first, last = _ids(conn)
        rows = 0 if first is None or last is None else last - first + 1
        if conn.dialect.name == "sqlite":
            pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())
            free = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar_one())
            page = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
            mode = int(conn.exec_driver_sql("PRAGMA auto_vacuum").scalar_one())
            return LogSize(
                (pages - free) * page,
                rows,
                first,
                last,
                "database pages in use",
                file_bytes=pages * page,
                free_bytes=free * page,
                auto_vacuum={0: "none", 1: "full", 2: "incremental"}.get(mode, str(mode)),
            )
        table = int(
            conn.exec_driver_sql("SELECT pg_total_relation_size('modelward_predictions')").scalar_one()
        )
        peak = _state(conn, _PEAK_ROWS)
        last_bytes = _state(conn, _LAST_BYTES)
    if peak is None or peak < rows or (last_bytes is not None and table < last_bytes):
        peak = float(rows)  # the table grew past its peak, or shrank (VACUUM FULL): measured anew
    live = 0 if not rows else table if not peak else int(table * min(1.0, rows / peak))
    return LogSize(live, rows, first, last, "table size x rows / most rows held", table_bytes=table)


def retention_totals(store: Store) -> dict[str, Any]:
    """Rows deleted by retention, ever, by reason, and when it last ran (ISO time or None)."""
    with store.read() as conn:
        found = {
            r.name: float(r.value)
            for r in conn.execute(
                select(log_state.c.name, log_state.c.value).where(log_state.c.name.like("retention.%"))
            )
        }
    last = found.get(_LAST_RUN)
    return {
        "deleted": {reason: int(found.get(_DELETED + reason, 0)) for reason in ("age", "size")},
        "last_run": None if last is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last)),
    }


class RetentionTask:
    """The controller task applying ``policy`` to the log in ``store`` (see the module's docstring).

    ``run(now)`` returns what it did: rows deleted by reason, the size after, and whether it stopped
    on its time budget with work left. ``on_deleted(reason, n)`` and ``on_size(bytes)`` feed metrics.
    ``sleep`` and ``clock`` are the pauses and the budget's clock (tests replace them).
    """

    name = "retention"

    def __init__(
        self,
        store: Store,
        policy: RetentionPolicy,
        *,
        batch_rows: int = 5_000,
        pause: float = 0.05,
        budget: float = 2.0,
        vacuum_pages: int = 2_048,
        on_deleted: Callable[[str, int], None] | None = None,
        on_size: Callable[[int], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch_rows < 1 or vacuum_pages < 1 or pause < 0 or not budget > 0:
            raise ValueError("retention needs batch_rows >= 1, vacuum_pages >= 1, pause >= 0, budget > 0")
        self.store = store
        self.policy = policy
        self.batch_rows = batch_rows
        self.pause = pause
        self.budget = budget
        self.vacuum_pages = vacuum_pages
        self.on_deleted = on_deleted
        self.on_size = on_size
        self.sleep = sleep
        self.clock = clock

    def run(self, now: float) -> dict[str, Any]:
        deadline = self.clock() + self.budget
        deleted = {"age": 0, "size": 0}
        more = False
        size = measure(self.store)
        self._remember(now, size)  # before any deletion lowers the rows: the peak (PostgreSQL)
        if self.policy.max_age is not None:
            n, more = self._by_age(now - self.policy.max_age, deadline)
            deleted["age"] = n
            if n:
                size = measure(self.store)
        limit = self.policy.max_bytes
        while limit is not None and not more and size.bytes > limit and size.rows:
            # Rows in proportion to the excess, measured again: index and other tables' pages do not
            # shrink in proportion, so a second pass may be needed (each within the budget).
            n, more = self._by_size(size, limit, deadline)
            deleted["size"] += n
            size = measure(self.store)
            if not n:
                break
        if size.free_bytes and size.auto_vacuum == "incremental" and not more:
            more = self._vacuum(deadline)
            size = measure(self.store)
        self._remember(now, size)
        if self.on_size is not None:
            try:
                self.on_size(size.bytes)
            except Exception:
                log.debug("retention size hook failed", exc_info=True)
        if deleted["age"] or deleted["size"]:
            log.info(
                "prediction log retention: deleted %d rows older than the age limit and %d beyond the size "
                "limit; the log now counts %d bytes",
                deleted["age"],
                deleted["size"],
                size.bytes,
            )
        return {"deleted": deleted, "bytes": size.bytes, "rows": size.rows, "more": more}

    # -- deleting --------------------------------------------------------------------------------

    def _delete_batch(self, reason: str, upper: int, cutoff: float | None) -> int:
        """Delete rows with id <= ``upper`` (and ts < ``cutoff``) in one transaction, counted there."""
        c = predictions.c
        where = [c.id <= upper] if cutoff is None else [c.id <= upper, c.ts < cutoff]
        with self.store.write() as conn:
            n = int(conn.execute(delete(predictions).where(*where)).rowcount or 0)
            if n:
                _set_state(conn, _DELETED + reason, n, add=True)
        if n and self.on_deleted is not None:
            try:
                self.on_deleted(reason, n)
            except Exception:
                log.debug("retention metrics hook failed", exc_info=True)
        return n

    def _window(self, after: int) -> tuple[int, float] | None:
        """The id and time of the last of the next ``batch_rows`` rows after id ``after``."""
        c = predictions.c
        inner = select(c.id, c.ts).where(c.id > after).order_by(c.id).limit(self.batch_rows).subquery()
        with self.store.read() as conn:
            row = conn.execute(select(inner.c.id, inner.c.ts).order_by(inner.c.id.desc()).limit(1)).first()
        return None if row is None else (int(row.id), float(row.ts))

    def _by_age(self, cutoff: float, deadline: float) -> tuple[int, bool]:
        """Delete rows older than ``cutoff``, window by window from the oldest id, until a window
        ends on a newer row (rows come in nearly in time order; a row written late among newer ones
        goes once its time is past the cutoff). Returns (rows deleted, stopped on the budget)."""
        total, after = 0, 0
        while True:
            window = self._window(after)
            if window is None:
                return total, False
            upper, last_ts = window
            total += self._delete_batch("age", upper, cutoff)
            if last_ts >= cutoff:
                return total, False
            after = upper
            if self.clock() >= deadline:
                return total, True
            self.sleep(self.pause)

    def _by_size(self, size: LogSize, limit: int, deadline: float) -> tuple[int, bool]:
        """Delete the oldest rows until the log is estimated to fit ``limit``: rows in proportion to
        the excess (the average row's share of the size), a little more than needed rather than less."""
        if not size.rows or size.first_id is None:
            return 0, False
        target = math.ceil(size.rows * (size.bytes - limit) / size.bytes * 1.01)
        total, after = 0, size.first_id - 1
        while total < target:
            window = self._window(after)
            if window is None:
                return total, False
            upper = window[0]
            if upper - after > target - total:  # the last window: only what is still needed
                upper = after + (target - total)
            total += self._delete_batch("size", upper, None)
            after = upper
            if total >= target:
                break
            if self.clock() >= deadline:
                return total, True
            self.sleep(self.pause)
        return total, False

    def _vacuum(self, deadline: float) -> bool:
        """Return free pages to the file system, ``vacuum_pages`` per transaction (SQLite with
        incremental vacuum). Returns True when stopped on the budget with pages left."""
        while True:
            with self.store.engine.connect() as conn:
                raw = conn.connection.driver_connection
                if raw is None:  # pragma: no cover - a pooled SQLite connection always has one
                    return False
                try:
                    # One script: Python's sqlite3 steps a statement that returns no rows once, and
                    # each step of this one frees one page; a script runs each statement to its end.
                    raw.executescript(
                        f"BEGIN IMMEDIATE; PRAGMA incremental_vacuum({int(self.vacuum_pages)}); COMMIT;"
                    )
                finally:
                    if raw.in_transaction:
                        raw.execute("ROLLBACK")
                free = int(raw.execute("PRAGMA freelist_count").fetchone()[0])
            if not free:
                return False
            if self.clock() >= deadline:
                return True
            self.sleep(self.pause)

    def _remember(self, now: float, size: LogSize) -> None:
        with self.store.write() as conn:
            _set_state(conn, _LAST_RUN, now)
            if size.table_bytes is not None:
                peak = _state(conn, _PEAK_ROWS)
                last = _state(conn, _LAST_BYTES)
                if peak is None or peak < size.rows or (last is not None and size.table_bytes < last):
                    _set_state(conn, _PEAK_ROWS, size.rows)
                _set_state(conn, _LAST_BYTES, size.table_bytes)
