"""Live profiles: every served batch is counted on its version's reference profile, per time bucket.

The server calls :meth:`LiveProfiler.observe` for each batch of served rows (from a worker thread,
never on the event loop). A batch becomes counts on the reference's bin edges and categories (numeric
bins, moments, categories, missing values, predicted labels and scores) and is added to the state of
its (model, version, arm, time bucket): a few small arrays whose size depends on the reference only,
so memory stays bounded whatever the traffic. :meth:`LiveProfiler.flush` writes each finished bucket
as one row of ``modelward_live_profiles`` per writer (``host:pid``), holding a
:class:`~modelward.drift.DatasetProfile` observed on the reference. Any window is then the merge of
its buckets' rows over every worker and replica (:func:`modelward.monitoring.live_drift.window_profile`).

Categorical values that the reference never had (unseen in training) are reported per feature to
``on_unseen`` as they are counted (the server's ``modelward_unseen_category_total``); the stored
profiles hold them in each feature's ``other`` count, which the drift view reads back.

Serving must never fail because of monitoring: ``observe`` never raises (failures are counted and
logged, rate-limited), and a bucket that cannot be written (store locked or down) is kept and
retried at the next flush, up to ``max_buckets`` buckets in memory; beyond that the oldest are
dropped and counted.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from modelward.drift.profile import DatasetProfile, ProfileMismatch
from modelward.errors import ConfigError
from modelward.monitoring._live_counts import Counts, Plan
from modelward.monitoring.redaction import Redactor
from modelward.store.store import Store
from modelward.store.tables import live_profiles

__all__ = ["LiveProfiler", "ProfilerStats", "default_writer"]

log = logging.getLogger("modelward.live_profiles")

_MAX_PLANS = 64


def default_writer() -> str:
    """``host:pid``: one writer per process, so rows of several workers and replicas never clash."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class ProfilerStats:
    """What a profiler did since it was created."""

    observed_rows: int
    observe_failures: int
    buckets_written: int
    rows_written: int
    flush_failures: int
    buckets_dropped: int
    open_buckets: int


# (model, version, arm, bucket start, plan number): a reference reloaded mid-bucket gets a state of its own.
_Key = tuple[str, str, str | None, float, int]


@dataclass(slots=True)
class _Bucket:
    plan: Plan
    start: float
    seconds: float
    counts: Counts


def _powers_of_two(n: int) -> bool:
    return n & (n - 1) == 0


class LiveProfiler:
    """Counts served rows per (model, version, arm, time bucket) and flushes buckets to the store.

    ``LiveProfiler(store)`` stores its arguments; :meth:`start` runs a daemon thread that flushes
    finished buckets every ``flush_interval`` seconds and :meth:`close` writes everything left.
    Thread-safe: ``observe`` may be called from many threads at once.
    """

    def __init__(
        self,
        store: Store,
        *,
        bucket_seconds: float = 60.0,
        writer: str | None = None,
        clock: Callable[[], float] = time.time,
        flush_interval: float = 5.0,
        max_buckets: int = 2_000,
        on_unseen: Callable[[str, str, Mapping[str, int]], None] | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        if not bucket_seconds > 0 or not flush_interval > 0:
            raise ConfigError("live profiles need bucket_seconds > 0 and flush_interval > 0")
        if max_buckets < 1:
            raise ConfigError("live profiles need max_buckets >= 1")
        self.store = store
        self.bucket_seconds = float(bucket_seconds)
        self.writer = writer or default_writer()
        self.clock = clock
        self.flush_interval = flush_interval
        self.max_buckets = max_buckets
        self.on_unseen = on_unseen  # (model, version, {feature: values unseen in training})
        self.redactor = redactor  # the prediction log's: profiles count what the log may keep, no more
        self._lock = threading.Lock()  # guards the state below; held for additions only
        self._flushing = threading.Lock()  # one flush at a time
        self._plans: dict[tuple[str, str], tuple[DatasetProfile, Plan, int]] = {}
        self._plan_serial = 0
        self._buckets: dict[_Key, _Bucket] = {}
        self._observed = self._observe_failures = 0
        self._written = self._rows_written = self._flush_failures = self._dropped = 0
        self._failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- observing -------------------------------------------------------------------------------

    def observe(
        self,
        model: str,
        version: str,
        arm: str | None,
        reference: DatasetProfile,
        columns: Mapping[str, np.ndarray],
        *,
        labels: np.ndarray | None = None,
        probabilities: np.ndarray | None = None,
        values: np.ndarray | None = None,
    ) -> None:
        """Count one batch of served rows; never raises (a failure is counted and logged).

        ``columns`` are validated request columns by feature name (float arrays with NaN for missing
        numbers, object arrays of str or None, bools); features of the reference missing from them
        count as missing values. ``labels`` are the predicted classes (compared as str with the
        reference's classes), ``probabilities`` rows x classes in the model's class order, ``values``
        a regressor's predictions.
        """
        try:
            self._observe(model, version, arm, reference, columns, labels, probabilities, values)
        except Exception:
            with self._lock:
                self._observe_failures += 1
                failures = self._observe_failures
            if _powers_of_two(failures):  # 1st, 2nd, 4th, 8th ...: visible, never a flood
                log.warning(
                    "live profiles: a batch of %s:%s could not be counted (%d failures so far)",
                    model,
                    version,
                    failures,
                    exc_info=True,
                )

    def _observe(
        self,
        model: str,
        version: str,
        arm: str | None,
        reference: DatasetProfile,
        columns: Mapping[str, np.ndarray],
        labels: np.ndarray | None,
        probabilities: np.ndarray | None,
        values: np.ndarray | None,
    ) -> None:
        if self.redactor is not None and self.redactor.active:
            columns = {
                k: v if isinstance(v, np.ndarray) else np.asarray(v, dtype=object)
                for k, v in self.redactor.apply_columns(cast(Mapping[str, Sequence[Any]], columns)).items()
            }
        plan, serial = self._plan(model, version, reference)
        counts = plan.count(columns, labels, probabilities, values)  # outside the lock: pure numpy
        if not counts.rows:
            return
        if self.on_unseen is not None:
            unseen = plan.unseen(counts)
            if unseen:
                self.on_unseen(model, str(version), unseen)
        now = self.clock()
        start = (now // self.bucket_seconds) * self.bucket_seconds
        key: _Key = (model, str(version), arm, start, serial)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                self._make_room()
                self._buckets[key] = _Bucket(plan, start, self.bucket_seconds, counts)
            else:
                bucket.counts.add(counts)
            self._observed += counts.rows

    def _plan(self, model: str, version: str, reference: DatasetProfile) -> tuple[Plan, int]:
        key = (model, str(version))
        cached = self._plans.get(key)
        if cached is not None and cached[0] is reference:
            return cached[1], cached[2]
        plan = Plan(reference)
        with self._lock:
            self._plan_serial += 1
            serial = self._plan_serial
            self._plans.pop(key, None)
            self._plans[key] = (reference, plan, serial)
            while len(self._plans) > _MAX_PLANS:  # versions come and go over a long life
                self._plans.pop(next(iter(self._plans)))
        return plan, serial

    def _make_room(self) -> None:
        """Keep at most max_buckets states (called with the lock held): drop the oldest buckets."""
        excess = len(self._buckets) + 1 - self.max_buckets
        if excess <= 0:
            return
        oldest = sorted(self._buckets, key=lambda k: k[3])[:excess]
        for k in oldest:
            del self._buckets[k]
        self._dropped += len(oldest)
        log.warning("live profiles: %d unwritten buckets dropped to stay within memory", len(oldest))

    # -- flushing --------------------------------------------------------------------------------

    def flush(self, now: float | None = None, *, everything: bool = False) -> int:
        """Write the finished buckets (all of them with ``everything``); returns the rows written.

        Never raises: when the store cannot be written, the buckets are kept for the next flush and
        the failure is counted (and logged once per streak of failures).
        """
        with self._flushing:
            moment = self.clock() if now is None else now
            with self._lock:
                keys = [k for k, b in self._buckets.items() if everything or b.start + b.seconds <= moment]
                taken = {k: self._buckets.pop(k) for k in keys}
            if not taken:
                return 0
            rows = self._rows(taken)
            try:
                self._write(rows)
            except Exception as exc:
                self._put_back(taken)
                with self._lock:
                    self._flush_failures += 1
                if not self._failing:
                    self._failing = True
                    log.warning(
                        "live profiles: cannot write %d buckets to the store, keeping them for the next "
                        "flush: %s (further failures are counted, not logged, until a write succeeds)",
                        len(rows),
                        _reason(exc),
                    )
                return 0
            if self._failing:
                self._failing = False
                log.warning("live profiles: writing to the store again")
            with self._lock:
                self._written += len(rows)
                self._rows_written += sum(int(r["rows"]) for r in rows)
            return len(rows)

    def _rows(self, taken: dict[_Key, _Bucket]) -> list[dict[str, Any]]:
        """One row per (model, version, arm, bucket): states of one bucket under two plans merge."""
        grouped: dict[tuple[str, str, str | None, float], list[DatasetProfile]] = {}
        for key, bucket in taken.items():
            try:
                profile = bucket.plan.profile(bucket.counts)
            except Exception:
                with self._lock:
                    self._dropped += 1
                log.exception("live profiles: a bucket of %s:%s could not be turned into a profile", *key[:2])
                continue
            grouped.setdefault(key[:4], []).append(profile)
        rows = []
        for (model, version, arm, start), parts in grouped.items():
            merged: list[DatasetProfile] = []
            for profile in parts:
                for i, done in enumerate(merged):
                    try:
                        merged[i] = done.merge(profile)
                        break
                    except ProfileMismatch:  # another reference for the same version: a row of its own
                        continue
                else:
                    merged.append(profile)
            for profile in merged:
                rows.append(
                    {
                        "model": model,
                        "version": version,
                        "arm": arm,
                        "bucket": start,
                        "seconds": self.bucket_seconds,
                        "writer": self.writer,
                        "rows": profile.n_rows,
                        "profile": profile.to_json().decode("utf-8"),
                    }
                )
        return rows

    def _write(self, rows: list[dict[str, Any]]) -> None:
        with self.store.write() as conn:
            if conn.dialect.name == "postgresql":
                # Wait for a locked table no longer than SQLite would (the store's busy timeout).
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, int(self.store.busy_timeout_ms))}")
            conn.execute(live_profiles.insert(), rows)

    def _put_back(self, taken: dict[_Key, _Bucket]) -> None:
        with self._lock:
            for key, bucket in taken.items():
                current = self._buckets.get(key)
                if current is None:
                    self._make_room()
                    self._buckets[key] = bucket
                else:  # the current bucket got more rows meanwhile (an ``everything`` flush)
                    current.counts.add(bucket.counts)

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def stats(self) -> ProfilerStats:
        with self._lock:
            return ProfilerStats(
                self._observed,
                self._observe_failures,
                self._written,
                self._rows_written,
                self._flush_failures,
                self._dropped,
                len(self._buckets),
            )

    @property
    def state_bytes(self) -> int:
        """Bytes of counts held in memory: depends on the references and buckets, never on the rows."""
        with self._lock:
            return sum(b.counts.nbytes for b in self._buckets.values())

    def start(self) -> LiveProfiler:
        """Flush finished buckets every ``flush_interval`` seconds from a daemon thread."""
        with self._lock:
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="modelward-live-profiles", daemon=True)
                self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.flush()
            except Exception:  # pragma: no cover - flush does not raise; keep the thread alive anyway
                log.exception("live profiles: flush failed")

    def close(self) -> int:
        """Stop the flushing thread and write every bucket, the current ones included."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(max(self.flush_interval, 1.0) + 5.0)
        return self.flush(everything=True)

    def __enter__(self) -> LiveProfiler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
