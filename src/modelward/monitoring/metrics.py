"""Prometheus metrics of the model server, correct with one process or with many uvicorn workers.

Every metric lives in an explicit :class:`~prometheus_client.CollectorRegistry` owned by a
:class:`ServingMetrics` (never the global default registry), and nothing is created at import time.
The table of metrics, their labels and example queries is in ``docs/metrics.md``.

Multiprocess mode. prometheus_client decides once, *when it is imported*, whether values live in
memory or in per-pid mmap files under ``PROMETHEUS_MULTIPROC_DIR``; the CLI calls
:func:`prepare_multiprocess_dir` and sets the variable before starting the workers. :meth:`render`
then aggregates every worker's files with ``MultiProcessCollector``: counters and histograms summed
over all workers (dead ones included), ``in_flight_requests`` summed over live workers, ``model_info``
the max and ``model_ready`` the min over live workers. The supervisor calls :func:`mark_worker_dead`
when a worker exits, so that its live gauges disappear. Use one :class:`ServingMetrics` per process.

Many values at once (the scores of a batch, the latencies of the requests answered in one turn of
the event loop) are observed in bulk by :func:`observe_many`: NumPy finds each value's bucket, and
each bucket that got values takes one ``inc(count)``, the sum one ``inc(total)``. prometheus_client
has no public bulk update, so this writes the histogram child's value objects (``_buckets``,
``_sum``; in multiprocess mode mmap entries) exactly as ``Histogram.observe`` would, one call per
bucket instead of per value; a test checks the exposition equals that of ``observe`` in a loop, and a
histogram without those fields is observed value by value. Class counts are vectorised the same way.

Label cardinality stays bounded: ``model`` is one of the served models, ``version`` one of the few
versions a model serves over a process's life, ``endpoint`` a fixed route name, ``status`` an HTTP
status code and ``class`` one of a classifier's classes.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from modelward.errors import ConfigError

__all__ = [
    "LATENCY_BUCKETS",
    "LOAD_BUCKETS",
    "ROW_BUCKETS",
    "SCORE_BUCKETS",
    "ServingMetrics",
    "mark_worker_dead",
    "multiprocess_dir",
    "observe_many",
    "prepare_multiprocess_dir",
]

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"

SCORE_BUCKETS: tuple[float, ...] = (
    0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5,
    0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0,
)  # fmt: skip
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
)  # fmt: skip
ROW_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
LOAD_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)

# The body is the classic text format with legacy names (escaping=underscores), i.e. version 0.0.4;
# prometheus_client's own encoder answers a scrape without an Accept header with this content type.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

_Family = TypeVar("_Family", Counter, Gauge, Histogram)


def multiprocess_dir() -> str | None:
    """The multiprocess directory from ``PROMETHEUS_MULTIPROC_DIR``, or None (single-process mode)."""
    return os.environ.get(ENV_VAR) or None


def prepare_multiprocess_dir(path: str | Path) -> None:
    """Create ``path``, or empty it of the ``*.db`` files a previous server left behind.

    Call it before starting the workers (and before setting ``PROMETHEUS_MULTIPROC_DIR`` for them):
    stale files would add the last run's counts and the dead pids' gauges to this run's.
    Other files in the directory are left alone.
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for db in directory.glob("*.db"):
        db.unlink(missing_ok=True)


def mark_worker_dead(pid: int) -> None:
    """Drop the live gauges (in-flight, info, ready) of an exited worker; a no-op in single-process mode.

    Counters and histograms of the dead worker are kept: what it counted happened.
    """
    path = multiprocess_dir()
    if path is not None:
        mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def _check_mode() -> None:
    """Refuse a process whose prometheus_client mode disagrees with the environment."""
    in_files = bool(getattr(prometheus_values.ValueClass, "_multiprocess", False))
    wanted = multiprocess_dir() is not None
    if wanted and not in_files:
        raise ConfigError(
            f"{ENV_VAR} is set but prometheus_client was imported before it was: this process keeps "
            "its metrics in memory and /metrics would not show them; set it before the worker starts"
        )
    if in_files and not wanted:
        raise ConfigError(
            f"prometheus_client was imported in multiprocess mode but {ENV_VAR} is no longer set"
        )


def _finite(array: np.ndarray, what: str) -> np.ndarray:
    flat = np.asarray(array, dtype=np.float64)
    if flat.ndim > 1:
        raise ValueError(
            f"{what} must be one value per row (1-D), got shape {flat.shape}; for classifiers pass "
            "P(positive) (binary) or the max probability (multiclass)"
        )
    flat = flat.reshape(-1)
    # NaN would poison the histogram's _sum forever (and fall in no bucket): leave it out.
    return flat[np.isfinite(flat)]


def observe_many(histogram: Histogram, values: np.ndarray | list[float]) -> None:
    """Observe every value of ``values`` (finite floats) in ``histogram`` (a labelled child, or a
    histogram without labels), as ``observe`` in a loop would, with one update per bucket."""
    buckets = getattr(histogram, "_buckets", None)
    bounds = getattr(histogram, "_upper_bounds", None)
    total = getattr(histogram, "_sum", None)
    if buckets is None or bounds is None or total is None or len(buckets) != len(bounds):
        for value in np.asarray(values, dtype=np.float64).reshape(-1).tolist():
            histogram.observe(value)
        return
    # observe() puts a value in the first bucket whose upper bound is >= the value.
    if isinstance(values, list) and len(values) <= 64:  # a few values: cheaper without NumPy
        if not values:
            return
        counts: dict[int, int] = {}
        for value in values:
            i = bisect_left(bounds, value)
            counts[i] = counts.get(i, 0) + 1
        for i, n in counts.items():
            buckets[i].inc(n)
        total.inc(float(sum(values)))
        return
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if not array.size:
        return
    found = np.bincount(np.searchsorted(np.asarray(bounds, dtype=np.float64), array, side="left"))
    for i in np.flatnonzero(found[: len(buckets)]).tolist():
        buckets[i].inc(int(found[i]))
    total.inc(float(array.sum()))


class ServingMetrics:
    """The server's metrics, registered in ``registry`` (a new private one when None)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        _check_mode()
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        # Labelled children, cached: ``family.labels(...)`` validates and locks on every call.
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}
        self._requests = Counter(
            "modelward_requests_total",
            "Requests answered, by model, version, endpoint and HTTP status.",
            ["model", "version", "endpoint", "status"],
            registry=reg,
        )
        self._request_seconds = Histogram(
            "modelward_request_duration_seconds",
            "Whole-request latency in seconds (parsing, validation, inference, response).",
            ["model", "endpoint"],
            registry=reg,
            buckets=LATENCY_BUCKETS,
        )
        self._inference_seconds = Histogram(
            "modelward_inference_duration_seconds",
            "Latency of the model call alone, in seconds.",
            ["model", "version"],
            registry=reg,
            buckets=LATENCY_BUCKETS,
        )
        self._rows = Histogram(
            "modelward_rows_per_request",
            "Rows (instances) per prediction request.",
            ["model"],
            registry=reg,
            buckets=ROW_BUCKETS,
        )
        self._predictions = Counter(
            "modelward_predictions_total",
            "Predicted classes of classifiers, one count per row.",
            ["model", "version", "class"],
            registry=reg,
        )
        self._scores = Histogram(
            "modelward_prediction_score",
            "Classifier scores: P(positive) for binary models, the max class probability for multiclass.",
            ["model", "version"],
            registry=reg,
            buckets=SCORE_BUCKETS,
        )
        self._values = Histogram(
            "modelward_prediction_value",
            "Predicted values of regressors (prometheus_client's default buckets).",
            ["model", "version"],
            registry=reg,
        )
        self._in_flight = Gauge(
            "modelward_in_flight_requests",
            "Requests being processed now (summed over live workers).",
            ["model"],
            registry=reg,
            multiprocess_mode="livesum",
        )
        self._info = Gauge(
            "modelward_model_info",
            "1 for the version (and alias) a model serves, 0 for one it replaced (max over live workers).",
            ["model", "version", "alias"],
            registry=reg,
            multiprocess_mode="livemax",
        )
        self._ready = Gauge(
            "modelward_model_ready",
            "1 when the model is loaded and warmed up (min over live workers: 1 only if all are ready).",
            ["model"],
            registry=reg,
            multiprocess_mode="livemin",
        )
        self._reload_failures = Counter(
            "modelward_model_reload_failures_total",
            "Failed attempts to load or reload a model.",
            ["model"],
            registry=reg,
        )
        self._load_seconds = Histogram(
            "modelward_model_load_seconds",
            "Time to load and warm up a model, in seconds.",
            ["model"],
            registry=reg,
            buckets=LOAD_BUCKETS,
        )
        self._shadow = Counter(
            "modelward_shadow_requests_total",
            "Requests mirrored to a shadow version, by outcome (served, failed, dropped: queue full).",
            ["model", "outcome"],
            registry=reg,
        )
        self._shed = Counter(
            "modelward_shed_requests_total",
            "Requests refused with 503 because they would wait beyond the latency budget.",
            ["model"],
            registry=reg,
        )
        self._post_dropped = Counter(
            "modelward_postprocess_dropped_total",
            "Served predictions whose metrics, log records and profiles were dropped (queue full).",
            registry=reg,
        )
        self._log_produced = Counter(
            "modelward_prediction_log_produced_total",
            "Prediction log records handed to the log writer.",
            registry=reg,
        )
        self._log_written = Counter(
            "modelward_prediction_log_written_total",
            "Prediction log records written to storage.",
            registry=reg,
        )
        self._log_dropped = Counter(
            "modelward_prediction_log_dropped_total",
            "Prediction log records dropped (queue full or write failed).",
            registry=reg,
        )
        # -- prediction log: repaired and rejected rows, crash losses, retention -----------------
        self._log_repaired = Counter(
            "modelward_prediction_log_repaired_total",
            "Prediction log records written with text the store cannot hold escaped or cut (also written).",
            registry=reg,
        )
        self._log_rejected = Counter(
            "modelward_prediction_log_rejected_total",
            "Prediction log records the store refused even repaired, dropped alone (also dropped).",
            registry=reg,
        )
        self._log_lost = Counter(
            "modelward_prediction_log_lost_total",
            "Answered predictions a server that died (kill -9, out of memory) had not logged, "
            "found by the server that started after it.",
            registry=reg,
        )
        self._log_retention_deleted = Counter(
            "modelward_prediction_log_retention_deleted_total",
            "Prediction log rows deleted by retention, by reason (age, size).",
            ["reason"],
            registry=reg,
        )
        self._log_size = Gauge(
            "modelward_prediction_log_size_bytes",
            "Size of the prediction log as retention last measured it (docs/prediction-log.md).",
            registry=reg,
            multiprocess_mode="mostrecent",
        )

    def _child(self, family: _Family, *labelvalues: str) -> _Family:
        key = (family, labelvalues)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*labelvalues)
        return cast("_Family", child)

    # -- requests and predictions ---------------------------------------------------------------

    def observe_request(
        self,
        *,
        model: str,
        version: str,
        endpoint: str,
        status: int,
        seconds: float,
        rows: int | None = None,
    ) -> None:
        """Count one answered request and its latency (and its rows, for prediction requests)."""
        self._child(self._requests, model, version, endpoint, str(status)).inc()
        self._child(self._request_seconds, model, endpoint).observe(seconds)
        if rows is not None:
            self._child(self._rows, model).observe(rows)

    def observe_requests(
        self, answered: list[tuple[str, str, str, int, list[float], list[int] | None]]
    ) -> None:
        """:meth:`observe_request` for many requests at once: ``(model, version, endpoint, status,
        latencies, rows)`` entries, each for one or more requests (``rows`` one per latency, or
        None); one counter update per distinct label set, histograms in bulk."""
        counts: dict[tuple[str, str, str, int], int] = {}
        seconds: dict[tuple[str, str], list[float]] = {}
        rows: dict[str, list[int]] = {}
        for model, version, endpoint, status, elapsed, n in answered:
            key = (model, version, endpoint, status)
            counts[key] = counts.get(key, 0) + len(elapsed)
            seconds.setdefault((model, endpoint), []).extend(elapsed)
            if n is not None:
                rows.setdefault(model, []).extend(n)
        for (model, version, endpoint, status), count in counts.items():
            self._child(self._requests, model, version, endpoint, str(status)).inc(count)
        for (model, endpoint), values in seconds.items():
            observe_many(self._child(self._request_seconds, model, endpoint), values)
        for model, sizes in rows.items():
            observe_many(self._child(self._rows, model), [float(n) for n in sizes])

    def observe_inference(self, *, model: str, version: str, seconds: float) -> None:
        self._child(self._inference_seconds, model, version).observe(seconds)

    def observe_predictions(
        self,
        *,
        model: str,
        version: str,
        labels: np.ndarray | None = None,
        scores: np.ndarray | None = None,
        values: np.ndarray | None = None,
    ) -> None:
        """Record a batch's predicted classes, classifier scores and/or regression values.

        ``labels`` are counted per distinct class (as ``str``); ``scores`` must be 1-D, one per row
        (a probability matrix raises ValueError); ``values`` are flattened (a multi-output regressor
        observes every output). Non-finite scores and values are skipped.
        """
        # Validate first, so that a refused call records nothing.
        none = np.empty(0)
        score_list = _finite(scores, "scores") if scores is not None else none
        value_list = _finite(np.ravel(values), "values") if values is not None else none  # multi-output
        if labels is not None and np.size(labels):
            classes, counts = np.unique(np.asarray(labels).astype(str).reshape(-1), return_counts=True)
            for cls, n in zip(classes.tolist(), counts.tolist(), strict=True):
                self._child(self._predictions, model, version, cls).inc(n)
        if score_list.size:
            observe_many(self._child(self._scores, model, version), score_list)
        if value_list.size:
            observe_many(self._child(self._values, model, version), value_list)

    def in_flight_gauge(self, model: str) -> Gauge:
        """The in-flight gauge of ``model``: ``inc()`` when a request starts, ``dec()`` when it ends."""
        return self._child(self._in_flight, model)

    @contextmanager
    def in_flight(self, model: str) -> Iterator[None]:
        """Count the enclosed block as one request in flight for ``model``."""
        gauge = self._child(self._in_flight, model)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    # -- model lifecycle -------------------------------------------------------------------------

    def set_model(
        self,
        *,
        model: str,
        version: str,
        alias: str | None,
        previous_version: str | None = None,
        previous_alias: str | None = None,
    ) -> None:
        """Mark ``version`` (under ``alias``) as served: info 1 for it, 0 for the previous labels.

        A missing alias is the empty string. The previous labels are set first, so passing the same
        labels as previous and new leaves 1.
        """
        if previous_version is not None:
            self._child(self._info, model, previous_version, previous_alias or "").set(0)
        self._child(self._info, model, version, alias or "").set(1)

    def unset_model(self, *, model: str, version: str, alias: str | None) -> None:
        """Mark ``version`` (under ``alias``) as no longer served: info 0."""
        self._child(self._info, model, version, alias or "").set(0)

    def set_ready(self, model: str, ready: bool) -> None:
        self._child(self._ready, model).set(1 if ready else 0)

    def reload_failed(self, model: str) -> None:
        self._child(self._reload_failures, model).inc()

    def observe_load(self, model: str, seconds: float) -> None:
        self._child(self._load_seconds, model).observe(seconds)

    # -- shadow traffic, shedding ---------------------------------------------------------------

    def shadow_served(self, model: str) -> None:
        self._child(self._shadow, model, "served").inc()

    def shadow_failed(self, model: str) -> None:
        self._child(self._shadow, model, "failed").inc()

    def shadow_dropped(self, model: str) -> None:
        self._child(self._shadow, model, "dropped").inc()

    def request_shed(self, model: str) -> None:
        self._child(self._shed, model).inc()

    def postprocess_dropped(self, n: int) -> None:
        self._post_dropped.inc(n)

    # -- prediction log --------------------------------------------------------------------------

    def log_produced(self, n: int) -> None:
        self._log_produced.inc(n)

    def log_written(self, n: int) -> None:
        self._log_written.inc(n)

    def log_dropped(self, n: int) -> None:
        self._log_dropped.inc(n)

    def log_repaired(self, n: int) -> None:
        self._log_repaired.inc(n)

    def log_rejected(self, n: int) -> None:
        self._log_rejected.inc(n)

    def log_lost(self, n: int) -> None:
        self._log_lost.inc(n)

    def log_retention_deleted(self, reason: str, n: int) -> None:
        self._child(self._log_retention_deleted, reason).inc(n)

    def log_size(self, size: int) -> None:
        self._log_size.set(size)

    # -- exposition ------------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type, for ``GET /metrics``.

        In multiprocess mode the body aggregates every worker's files through a fresh registry (this
        instance's registry would only hold this worker's values); otherwise it is this registry.
        """
        path = multiprocess_dir()
        if path is None:
            return generate_latest(self.registry), CONTENT_TYPE
        collecting = CollectorRegistry()
        MultiProcessCollector(collecting, path=path)  # type: ignore[no-untyped-call]
        return generate_latest(collecting), CONTENT_TYPE
