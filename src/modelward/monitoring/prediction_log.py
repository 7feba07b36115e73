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

What a crash costs is counted too: given ``marks_dir`` (the server's ``<home>/log-writers``), the
logger keeps its counters in a memory-mapped mark that outlives the process, every batch's
transaction updates the writer's row in the store, and the next logger started there settles the
marks of dead writers into a ``lost`` count (:mod:`modelward.monitoring.log_marks`). The writer takes
a batch at least every ``flush_interval`` (0.1 s) or as soon as ``batch_size`` rows are queued.
"""

from __future__ import annotations

import logging
import pickle
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from modelward.errors import (
    ConfigError,
    WriterProcessError,  # importable here as before
)
from modelward.monitoring.log_insert import write_items
from modelward.monitoring.log_marks import ANNOUNCED_AT, Checkpoint, Ledger, pack_announced
from modelward.monitoring.log_process import WriterProcess, reason_of
from modelward.monitoring.log_rows import PredictionRecord, RecordBatch
from modelward.monitoring.redaction import Redactor, canonical_json
from modelward.store.store import Store

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


@dataclass(frozen=True, slots=True)
class LogStats:
    produced: int
    written: int
    dropped: int
    queued: int
    sampled_out: int
    repaired: int = 0  # written with text escaped or cut (also in written)
    rejected: int = 0  # rows the store could not take even repaired, dropped alone (also in dropped)


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
        flush_interval: float = 0.1,
        sample_rate: float = 1.0,
        redactor: Redactor | None = None,
        seed: int | None = None,
        on_written: Callable[[int], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
        on_produced: Callable[[int], None] | None = None,
        on_repaired: Callable[[int], None] | None = None,
        on_rejected: Callable[[int], None] | None = None,
        on_lost: Callable[[int], None] | None = None,
        process: bool = False,
        marks_dir: str | Path | None = None,
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
        # Crash accounting (log_marks): the mark, the batches' checkpoints, settling dead writers.
        self.ledger: Ledger | None = None
        if marks_dir is not None and not _in_memory(store.url):
            self.ledger = Ledger(store, Path(marks_dir), on_lost=on_lost)
        self._mark_map: Any = None  # the mark's memory, for announce()
        self._announced = self._withdrawn = 0

    # -- producer side ---------------------------------------------------------------------------

    def start(self) -> PredictionLogger:
        with self._cond:
            if self._closed:
                raise ConfigError("this prediction logger is closed; create a new one")
            if self._thread is None and self.ledger is not None:
                self.ledger.open()
                self._mark_map = self.ledger.map
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="modelward-prediction-log", daemon=True
                )
                self._thread.start()
        return self

    def announce(self, n: int) -> None:
        """``n`` rows answered, to be submitted after their answers are written (post-processing):
        counted before the answers go out, so that the rows a crash catches between the two are
        counted as lost. Called from the event loop's thread only (no lock: about 0.15 us of CPU)."""
        self._announced += n
        if self._mark_map is not None:
            try:  # noqa: SIM105 - contextlib.suppress would cost more than the store it guards
                pack_announced(self._mark_map, ANNOUNCED_AT, self._announced, self._withdrawn)
            except (ValueError, TypeError):  # closed meanwhile (the server is stopping)
                pass

    def withdraw(self, n: int) -> None:
        """``n`` announced rows that will never be submitted (post-processing dropped them)."""
        self._withdrawn += n
        self.announce(0)  # writes both counts

    def _marked(self, closed: bool = False) -> None:
        """Copy the counters into the mark (under ``self._cond``)."""
        mark = None if self.ledger is None else self.ledger.mark
        if mark is not None:
            mark.counts(self._produced, self._sampled_out, self._dropped, self._written, closed)

    def _checkpoint(self) -> Checkpoint | None:
        if self.ledger is None:
            return None
        with self._cond:
            return self.ledger.checkpoint(self._announced, self._produced, self._dropped, self._sampled_out)

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
            self._marked()
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
            self._marked(closed=True)
            self._cond.notify_all()
        if left:
            log.warning(
                "prediction log: %d queued records dropped at close (not written within the timeout)", left
            )
            _notify(self._on_dropped, left)
        if self.ledger is not None:
            checkpoint = self._checkpoint()
            self._mark_map = None
            self.ledger.close(checkpoint, self.stats.written)

    def __enter__(self) -> PredictionLogger:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writer thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.0
        while True:
            try:
                if self.ledger is not None:
                    self.ledger.settle_if_due()
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
        checkpoint = self._checkpoint()
        if self.process:
            encoded, bad, repaired, error = self._write_in_child(batch, checkpoint)
        else:
            encoded, bad, repaired, error = write_items(self.store, batch, checkpoint)
        written = 0 if error is not None else encoded
        repaired = 0 if error is not None else repaired
        dropped = sum(len(i) for i in batch) - written
        with self._cond:
            self._written += written
            self._dropped += dropped
            self._repaired += repaired
            self._rejected += bad
            self._queued -= sum(len(i) for i in batch)
            self._marked()
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

    def _write_in_child(
        self, batch: list[Item], checkpoint: Checkpoint | None
    ) -> tuple[int, int, int, BaseException | None]:
        """The batch through the writer process, started (again) when there is none; a child that
        dies or stops answering loses this batch (counted as dropped) and is replaced next time."""
        n = sum(len(i) for i in batch)
        child = self._child
        try:
            if child is None or not child.alive():
                if child is not None:
                    child.close(0.1)
                store = self.store
                mark = None if self.ledger is None else self.ledger.mark
                child = self._child = WriterProcess(
                    store.url,
                    busy_timeout_ms=store.busy_timeout_ms,
                    power_safe=store.power_safe,
                    hold=() if mark is None else (mark.fd,),  # the mark stays held until it exits
                )
            encoded, bad, repaired, reason = child.write(batch, checkpoint)
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
