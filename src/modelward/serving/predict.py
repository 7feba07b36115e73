"""One prediction, shared by the REST and Open Inference Protocol routes: route the rows to their arms,
run each arm's rows through its version's batcher, answer, and leave metrics, the prediction log,
live profiles and shadow traffic to work that does not hold the response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelward.monitoring.metrics import ServingMetrics
from modelward.monitoring.prediction_log import PredictionLogger, RecordBatch
from modelward.routing import SHADOW_ARM
from modelward.runtime.batcher import Overloaded
from modelward.serving.middleware import new_request_id
from modelward.serving.models import ModelManager, Routing, Served
from modelward.serving.postprocess import PostProcessor
from modelward.serving.problems import ModelFailed
from modelward.validation import Batch

__all__ = ["Outcome", "Part", "Predictor", "row_ids"]

log = logging.getLogger("modelward.serving")

Keys = str | list[str | None] | None  # one routing key for the request, or one per row
Observer = Callable[..., None]  # LiveProfiler.observe-like: (model, version, arm, reference, columns, ...)


@dataclass(frozen=True, slots=True)
class Part:
    """The rows of a request that one arm answered."""

    served: Served
    arm: str
    rows: np.ndarray | None  # row indices into the request; None: every row
    labels: list[Any]
    probabilities: np.ndarray | None


@dataclass(frozen=True, slots=True)
class Outcome:
    request_ids: list[str]
    parts: list[Part]

    @property
    def served(self) -> Served:
        """The version that answered (the first part's when rows were split across arms)."""
        return self.parts[0].served

    @property
    def arm(self) -> str | None:
        return self.parts[0].arm if len(self.parts) == 1 else None

    @property
    def version(self) -> str | None:
        return self.parts[0].served.version if len(self.parts) == 1 else None

    @property
    def classes(self) -> list[Any]:
        part = self.parts[0]
        return part.served.model.class_values if part.probabilities is not None else []

    def _ordered(self, pick: Callable[[Part], Any]) -> list[Any]:
        if len(self.parts) == 1:
            return list(pick(self.parts[0]))
        out: list[Any] = [None] * len(self.request_ids)
        for part in self.parts:
            assert part.rows is not None  # noqa: S101 - split parts always carry their rows
            for i, v in zip(part.rows.tolist(), pick(part), strict=True):
                out[i] = v
        return out

    @property
    def labels(self) -> list[Any]:
        return self._ordered(lambda p: p.labels)

    @property
    def probabilities(self) -> np.ndarray | None:
        if self.parts[0].probabilities is None:
            return None
        if len(self.parts) == 1:
            return self.parts[0].probabilities
        rows = np.concatenate([p.rows for p in self.parts if p.rows is not None])
        stacked = np.concatenate([p.probabilities for p in self.parts if p.probabilities is not None])
        out = np.empty_like(stacked)
        out[rows] = stacked
        return out

    def row_arms(self) -> list[str]:
        return self._ordered(lambda p: [p.arm] * len(p.labels))

    def row_versions(self) -> list[str]:
        return self._ordered(lambda p: [p.served.version] * len(p.labels))


def row_ids(batch: Batch, header_id: str | None) -> list[str]:
    """Per-row request ids: the body's ``request_ids``; else one id (the body's ``request_id``, the
    ``X-Request-ID`` header, or a new one) for a single row, suffixed ``-<row>`` for several."""
    if batch.request_ids is not None:
        return list(batch.request_ids)
    base = batch.request_id or header_id or new_request_id()
    if batch.n_rows == 1:
        return [base]
    return [f"{base}-{i}" for i in range(batch.n_rows)]


def _plain_labels(values: np.ndarray) -> list[Any]:
    return [v.item() if hasattr(v, "item") else v for v in np.asarray(values).reshape(-1).tolist()]


def _groups(routing: Routing, batch: Batch, key: str | None) -> list[tuple[str, np.ndarray | None]]:
    """(arm, row indices or None for all rows) per arm that gets rows of this request."""
    if key is not None or batch.row_keys is None or len(routing.arms) == 1:
        return [(routing.assign(key), None)]
    keyless = routing.assign(None)  # keyless rows of one request share one draw
    arms = [routing.assign(k) if k is not None else keyless for k in batch.row_keys]
    if len(set(arms)) == 1:
        return [(arms[0], None)]
    names = np.asarray(arms, dtype=object)
    return [(arm, np.flatnonzero(names == arm)) for arm in dict.fromkeys(arms)]


class Predictor:
    def __init__(
        self,
        manager: ModelManager,
        metrics: ServingMetrics,
        logger: PredictionLogger | None,
        *,
        post: PostProcessor | None = None,
        observer: Observer | None = None,
        shadow_capacity: int = 1000,
    ) -> None:
        self.manager = manager
        self.metrics = metrics
        self.logger = logger
        self.post = post or PostProcessor()
        self.observer = observer
        self.shadow_capacity = shadow_capacity
        self._shadow: asyncio.Queue[tuple[Served, Batch, list[str], Keys]] | None = None
        # What was answered since the post-processing thread's last burst, per served version and
        # arm: metrics, live profiles and log rows are made from it once per burst (flush).
        self._answered: dict[tuple[int, str], tuple[Served, list[_Answer]]] = {}
        self._shadow_task: asyncio.Task[None] | None = None

    async def predict(
        self,
        name: str,
        batch: Batch,
        *,
        header_id: str | None,
        routing_key: str | None,
        endpoint: str,
        routing: Routing | None = None,
        arm: str | None = None,
    ) -> Outcome:
        """Answer ``batch``; ``arm`` forces one arm (a version asked for by the client)."""
        routing = routing or self.manager.routing(name)
        ids = row_ids(batch, header_id)
        groups = [(arm, None)] if arm is not None else _groups(routing, batch, routing_key)
        started = time.perf_counter()
        gauge = self.metrics.in_flight_gauge(name)
        gauge.inc()
        try:
            if len(groups) == 1:
                parts = [await self._part(name, routing, batch, ids, groups[0], routing_key, started)]
            else:
                parts = list(
                    await asyncio.gather(
                        *(self._part(name, routing, batch, ids, g, routing_key, started) for g in groups)
                    )
                )
        finally:
            gauge.dec()
        if routing.shadow is not None and routing.rng.random() < routing.spec.shadow_rate:
            keys: Keys = (
                routing_key if routing_key is not None or batch.row_keys is None else list(batch.row_keys)
            )
            self._mirror(routing.shadow, batch, ids, keys)
        return Outcome(ids, parts)

    async def _part(
        self,
        name: str,
        routing: Routing,
        batch: Batch,
        ids: list[str],
        group: tuple[str, np.ndarray | None],
        key: str | None,
        started: float,
    ) -> Part:
        arm, rows = group
        served = routing.arms[arm]
        columns = batch.columns if rows is None else {n: c[rows] for n, c in batch.columns.items()}
        n = batch.n_rows if rows is None else len(rows)
        part_ids = ids if rows is None else [ids[i] for i in rows.tolist()]
        keys: Keys = key
        if key is None and batch.row_keys is not None:
            keys = list(batch.row_keys) if rows is None else [batch.row_keys[i] for i in rows.tolist()]
        try:
            (labels, proba), seconds = await served.batcher.run(columns, n)
        except Overloaded:
            raise
        except Exception as exc:  # the model's own failure, not the client's
            latency = (time.perf_counter() - started) * 1000
            self.post.submit(self._record_failure, served, arm, columns, part_ids, latency, keys, repr(exc))
            raise ModelFailed(name, served.version, exc) from exc
        latency = (time.perf_counter() - started) * 1000
        self.post.submit(self._record, served, arm, columns, part_ids, labels, proba, seconds, latency, keys)
        return Part(served, arm, rows, _plain_labels(labels), proba)

    # -- after the response: metrics, log, profiles ------------------------------------------------

    def _record(
        self,
        served: Served,
        arm: str,
        columns: dict[str, np.ndarray],
        ids: list[str],
        labels: np.ndarray,
        proba: np.ndarray | None,
        seconds: float,
        latency_ms: float,
        key: Keys,
    ) -> None:
        answer = _Answer(columns, ids, labels, proba, seconds, latency_ms, key, time.time())
        self._answered.setdefault((id(served), arm), (served, []))[1].append(answer)

    def _record_failure(
        self,
        served: Served,
        arm: str,
        columns: Any,
        ids: list[str],
        latency_ms: float,
        key: Keys,
        error: str,
    ) -> None:
        if self.logger is not None:
            self.logger.submit_batch(
                _batch(served, arm, columns, ids, None, None, latency_ms, key, error=error)
            )

    def flush(self) -> None:
        """Everything answered since the last call, per version and arm, concatenated once: the
        prediction metrics (one count per class, one pass over the scores), one live profile update
        and one prediction log batch per burst, not one of each per request. Shadow answers are
        logged only."""
        answered, self._answered = self._answered, {}
        for (_, arm), (served, answers) in answered.items():
            model, name, version = served.model, served.model.name, served.version
            columns = {n: np.concatenate([a.columns[n] for a in answers]) for n in answers[0].columns}
            labels = np.concatenate([np.asarray(a.labels).reshape(-1) for a in answers])
            probas = [a.proba for a in answers if a.proba is not None]
            proba = np.concatenate(probas) if probas and len(probas) == len(answers) else None
            if arm != SHADOW_ARM:
                self._count(name, version, answers, labels, proba)
                if self.observer is not None:
                    kw = {"labels": labels} if model.is_classifier else {"values": labels}
                    if proba is not None:
                        kw["probabilities"] = proba
                    self.observer(name, version, arm, model.profile, columns, **kw)
            if self.logger is not None:
                self.logger.submit_batch(_log_batch(served, arm, answers, columns, labels, proba))

    def _count(
        self, name: str, version: str, answers: list[_Answer], labels: np.ndarray, proba: np.ndarray | None
    ) -> None:
        for a in answers:
            self.metrics.observe_inference(model=name, version=version, seconds=a.seconds)
        if proba is not None:
            scores = proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)
            text = np.asarray([str(v) for v in labels.tolist()])
            self.metrics.observe_predictions(model=name, version=version, labels=text, scores=scores)
        else:
            values = np.asarray(labels, dtype=np.float64)
            self.metrics.observe_predictions(model=name, version=version, values=values)

    # -- shadow traffic -----------------------------------------------------------------------------

    def _mirror(self, shadow: Served, batch: Batch, ids: list[str], key: Keys) -> None:
        if self._shadow is None:
            self._shadow = asyncio.Queue(self.shadow_capacity)
            self._shadow_task = asyncio.get_running_loop().create_task(self._shadow_worker())
        try:
            self._shadow.put_nowait((shadow, batch, ids, key))
        except asyncio.QueueFull:
            self.metrics.shadow_dropped(shadow.model.name)

    async def _shadow_worker(self) -> None:
        assert self._shadow is not None  # noqa: S101 - created with the task
        while True:
            shadow, batch, ids, key = await self._shadow.get()
            try:
                await self._shadow_one(shadow, batch, ids, key)
            finally:
                self._shadow.task_done()

    async def _shadow_one(self, shadow: Served, batch: Batch, ids: list[str], key: Keys) -> None:
        started = time.perf_counter()
        try:
            (labels, proba), seconds = await shadow.batcher.run(batch.columns, batch.n_rows)
        except Exception as exc:  # a failing shadow is recorded, never seen by clients
            latency = (time.perf_counter() - started) * 1000
            self.metrics.shadow_failed(shadow.model.name)
            self.post.submit(
                self._record_failure, shadow, SHADOW_ARM, batch.columns, ids, latency, key, repr(exc)
            )
            return
        latency = (time.perf_counter() - started) * 1000
        self.metrics.shadow_served(shadow.model.name)
        self.post.submit(
            self._record, shadow, SHADOW_ARM, batch.columns, ids, labels, proba, seconds, latency, key
        )

    async def close(self, timeout: float = 5.0) -> None:
        """Finish the mirrored requests still queued (within ``timeout``), then stop."""
        if self._shadow is not None and self._shadow_task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._shadow.join(), timeout)
            self._shadow_task.cancel()


@dataclass(frozen=True, slots=True)
class _Answer:
    """One part of a request, as answered: what post-processing makes metrics, profiles and log rows of."""

    columns: dict[str, np.ndarray]
    ids: list[str]
    labels: np.ndarray
    proba: np.ndarray | None
    seconds: float  # the predict call's
    latency_ms: float  # the request's, so far
    keys: Keys
    ts: float


def _log_batch(
    served: Served,
    arm: str,
    answers: list[_Answer],
    columns: dict[str, np.ndarray],
    labels: np.ndarray,
    proba: np.ndarray | None,
) -> RecordBatch:
    ids = [rid for a in answers for rid in a.ids]
    keys: Keys = None
    if any(a.keys is not None for a in answers):
        keys = [k for a in answers for k in (a.keys if isinstance(a.keys, list) else [a.keys] * len(a.ids))]
    latencies = [a.latency_ms for a in answers for _ in a.ids]
    times = [a.ts for a in answers for _ in a.ids]
    return _batch(served, arm, columns, ids, labels, proba, latencies, keys, ts=times)


def _batch(
    served: Served,
    arm: str,
    columns: Any,
    ids: list[str],
    labels: np.ndarray | None,
    proba: np.ndarray | None,
    latency_ms: float | Sequence[float],
    key: Keys,
    *,
    error: str | None = None,
    ts: float | Sequence[float] | None = None,
) -> RecordBatch:
    model = served.model
    return RecordBatch(
        model=model.name,
        version=served.version,
        arm=arm,
        ts=time.time() if ts is None else ts,
        latency_ms=latency_ms,
        request_ids=ids,
        inputs={n: np.asarray(c).tolist() for n, c in columns.items()},
        predictions=_plain_labels(labels) if labels is not None else None,
        probabilities=proba.tolist() if proba is not None else None,
        classes=[str(c) for c in model.class_values] if proba is not None else (),
        routing_keys=key,
        error=error,
    )
