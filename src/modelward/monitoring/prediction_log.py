"""The prediction log writer: records go to the store in batches, from one background thread.

Serving must never wait for, or fail because of, the log. :meth:`PredictionLogger.submit` only samples,
redacts and appends to a bounded in-memory queue; a daemon thread takes batches off the queue and
writes each batch in one transaction. When the queue is full, or a batch cannot be written (store down,
locked, read-only), the records are dropped and counted, never retried and never raised.

Every record that survives sampling is *produced*; at any moment::

    produced == written + dropped + queued

where ``queued`` also counts the batch being written. ``sampled_out`` counts records left out on
purpose by sampling and is not part of ``produced``.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson

from modelward.errors import ConfigError
from modelward.store.store import Store
from modelward.store.tables import predictions

__all__ = ["LogStats", "PredictionLogger", "PredictionRecord", "Redactor", "canonical_json"]

log = logging.getLogger("modelward.prediction_log")

RedactAction = Literal["drop", "hash"]
_ACTIONS: frozenset[str] = frozenset({"drop", "hash"})
_JSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
_MAX_BACKOFF = 2.0


def _fallback(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars orjson does not know (float16)
        return value.item()
    if hasattr(value, "tolist") and callable(value.tolist):
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return str(value)


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8; NaN and infinities become null, unknown types their str()."""
    return orjson.dumps(value, default=_fallback, option=_JSON_OPTIONS).decode()


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One prediction as served: what went in, what came out, which version answered and how fast."""

    request_id: str
    ts: float  # UNIX epoch seconds, UTC
    model: str
    version: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    latency_ms: float
    routing_key: str | None = None
    arm: str | None = None
    error: str | None = None  # the model's failure message when it raised (outputs then empty)


class Redactor:
    """Per-field redaction of inputs, applied in :meth:`PredictionLogger.submit` before queueing.

    ``"drop"`` removes the field; ``"hash"`` replaces its value by ``"sha256:"`` and the first 16 hex
    digits of ``sha256(salt + canonical_json(value))``: equal values stay equal (joins, counts still
    work) but cannot be read back without guessing them. Use a secret salt for guessable values.
    """

    def __init__(self, rules: Mapping[str, RedactAction], *, salt: str = "") -> None:
        unknown = {field: action for field, action in rules.items() if action not in _ACTIONS}
        if unknown:
            field, action = next(iter(unknown.items()))
            raise ConfigError(f"unknown redaction {action!r} for field {field!r}: use 'drop' or 'hash'")
        self.rules: dict[str, RedactAction] = dict(rules)
        self._salt = salt

    @classmethod
    def from_spec(cls, spec: str, *, salt: str = "") -> Redactor:
        """Parse ``"email=drop,phone=hash"`` (the settings and CLI form); an empty string means no rules."""
        rules: dict[str, RedactAction] = {}
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            field, sep, action = item.partition("=")
            field, action = field.strip(), action.strip()
            if not sep or not field:
                raise ConfigError(f"invalid redaction {item!r}: expected FIELD=drop or FIELD=hash")
            if action not in _ACTIONS:
                raise ConfigError(f"unknown redaction {action!r} for field {field!r}: use 'drop' or 'hash'")
            rules[field] = "drop" if action == "drop" else "hash"
        return cls(rules, salt=salt)

    def hash_value(self, value: Any) -> str:
        digest = hashlib.sha256((self._salt + canonical_json(value)).encode()).hexdigest()
        return "sha256:" + digest[:16]

    def apply(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """A redacted copy of ``inputs``; the argument is left untouched."""
        if not self.rules:
            return inputs
        out: dict[str, Any] = {}
        for field, value in inputs.items():
            action = self.rules.get(field)
            if action is None:
                out[field] = value
            elif action == "hash":
                out[field] = self.hash_value(value)
        return out

    def __repr__(self) -> str:  # never shows the salt
        return f"Redactor({self.rules!r})"


@dataclass(frozen=True, slots=True)
class LogStats:
    produced: int
    written: int
    dropped: int
    queued: int
    sampled_out: int


def _notify(callback: Callable[[int], None] | None, n: int) -> None:
    if callback is None or n <= 0:
        return
    try:
        callback(n)
    except Exception:  # a metrics hook must not break serving or the writer
        log.debug("prediction log callback %r failed", callback, exc_info=True)


def _row(record: PredictionRecord) -> dict[str, Any]:
    return {
        "request_id": str(record.request_id),
        "ts": float(record.ts),
        "model": record.model,
        "version": str(record.version),
        "arm": record.arm,
        "routing_key": record.routing_key,
        "inputs": canonical_json(record.inputs),
        "outputs": canonical_json(record.outputs),
        "latency_ms": float(record.latency_ms),
        "error": record.error,
    }


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
        self._queue: deque[PredictionRecord] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._produced = self._written = self._dropped = self._queued = self._sampled_out = 0
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._failing = False
        self._streak_dropped = 0

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
        with self._cond:
            room = 0 if self._closed else max(0, self.capacity - len(self._queue))
            queued = min(room, len(kept))
            self._queue.extend(kept[:queued])
            dropped = len(kept) - queued + failed
            self._sampled_out += sampled_out
            self._produced += queued + dropped
            self._queued += queued
            self._dropped += dropped
            if queued:
                self._cond.notify_all()
        if failed:
            log.warning(
                "prediction log: %d records dropped because their inputs could not be redacted", failed
            )
        _notify(self._on_produced, queued + dropped)
        _notify(self._on_dropped, dropped)

    @property
    def stats(self) -> LogStats:
        with self._cond:
            return LogStats(self._produced, self._written, self._dropped, self._queued, self._sampled_out)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued record was written or dropped; False if that took longer than timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queued:
                remaining = deadline - time.monotonic()
                thread = self._thread
                if remaining <= 0 or thread is None or not thread.is_alive():
                    return False
                self._cond.wait(remaining)
            return True

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
            left = len(self._queue)
            self._queue.clear()
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

    def _take(self) -> list[PredictionRecord] | None:
        """Up to batch_size records; waits at most flush_interval for the first. None: stop."""
        with self._cond:
            if not self._queue:
                if self._stopping:
                    return None
                self._cond.wait_for(lambda: self._queue or self._stopping, self.flush_interval)
                if not self._queue:
                    return None if self._stopping else []
            n = min(self.batch_size, len(self._queue))
            return [self._queue.popleft() for _ in range(n)]

    def _write(self, batch: list[PredictionRecord]) -> bool:
        rows: list[dict[str, Any]] = []
        bad = 0
        for record in batch:
            try:
                rows.append(_row(record))
            except Exception:
                bad += 1
        error: BaseException | None = None
        if rows:
            try:
                with self.store.write() as conn:
                    if conn.dialect.name == "postgresql":
                        # Wait for a locked table no longer than SQLite would (the store's busy timeout).
                        timeout_ms = max(1, int(self.store.busy_timeout_ms))
                        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {timeout_ms}")
                    conn.execute(predictions.insert(), rows)
            except BaseException as exc:  # counted below, whatever it is
                error = exc
        written = 0 if error is not None else len(rows)
        dropped = len(batch) - written
        with self._cond:
            self._written += written
            self._dropped += dropped
            self._queued -= len(batch)
            self._cond.notify_all()
        if bad:
            log.warning("prediction log: %d records dropped because they could not be encoded as JSON", bad)
        if error is not None:
            self._streak_dropped += len(rows)
            if not self._failing:
                self._failing = True
                log.warning(
                    "prediction log: cannot write to the store, dropped %d records: %s "
                    "(further drops are counted, not logged, until a write succeeds)",
                    len(rows),
                    _reason(error),
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
        if isinstance(error, SystemExit | KeyboardInterrupt):
            raise error
        return error is None


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
