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
from typing import Any, Literal

import numpy as np

from modelward.monitoring.metrics import ServingMetrics
from modelward.monitoring.prediction_log import PredictionLogger, RecordBatch
from modelward.routing import DIRECT_ARM, SHADOW_ARM
from modelward.runtime.batcher import Columns, Outputs, Overloaded, Pending
from modelward.serving.models import ModelManager, Routing, Served
from modelward.serving.outcome import Outcome, Part, plain_labels, row_ids
from modelward.serving.postprocess import PostProcessor
from modelward.serving.problems import ModelFailed
from modelward.validation import Batch

__all__ = ["Outcome", "Part", "Predictor", "Tag", "plain_labels", "row_ids"]  # the first: from outcome.py

log = logging.getLogger("modelward.serving")

Keys = str | list[str | None] | None  # one routing key for the request, or one per row
Observer = Callable[..., None]  # LiveProfiler.observe-like: (model, version, arm, reference, columns, ...)


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
        without_consent: Literal["skip", "redact"] = "skip",
    ) -> None:
        self.manager = manager
        self.metrics = metrics
        self.logger = logger
        self.post = post or PostProcessor()
        self.observer = observer
        self.shadow_capacity = shadow_capacity
        # What the log keeps of a request without consent: no inputs ("skip"), or its inputs through
        # the logger's redaction ("redact"). Either way the live profiles do not see them.
        self.without_consent = without_consent
        self._shadow: asyncio.Queue[tuple[Served, Batch, list[str], Keys, bool]] | None = None
        # What was answered since the post-processing thread's last burst, per served version and
        # arm: metrics, live profiles and log rows are made from it once per burst (flush).
        self._answered: dict[tuple[int, str, bool], tuple[Served, list[_Answer]]] = {}
        self._shadow_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # split requests in flight

    async def predict(
        self,
        name: str,
        batch: Batch,
        *,
        header_id: str | None,
        routing_key: str | None,
        endpoint: str,
        routing: Routing | None = None,
        direct: Served | None = None,
        consent: bool = True,
    ) -> Outcome:
        """Answer ``batch`` with the arms the deployment picks. ``direct`` is a loaded version the
        client named (``.../versions/{v}/...``) instead: it answers outside the split, logged under
        :data:`~modelward.routing.DIRECT_ARM` and not mirrored to the shadow, so neither the arms'
        statistics nor the shadow's agreement count it. ``consent``: whether the request consented
        to keeping its inputs (False: logged without them, or redacted, and not profiled)."""
        routing = routing or self.manager.routing(name)
        ids = row_ids(batch, header_id)
        groups = [(DIRECT_ARM, None)] if direct is not None else _groups(routing, batch, routing_key)
        started = time.perf_counter()
        gauge = self.metrics.in_flight_gauge(name)
        gauge.inc()
        try:
            if len(groups) == 1:
                parts = [
                    await self._part(
                        name, routing, batch, ids, groups[0], routing_key, started, direct, consent
                    )
                ]
            else:
                parts = list(
                    await asyncio.gather(
                        *(
                            self._part(name, routing, batch, ids, g, routing_key, started, None, consent)
                            for g in groups
                        )
                    )
                )
        finally:
            gauge.dec()
        if direct is None and routing.shadow is not None and routing.rng.random() < routing.spec.shadow_rate:
            keys: Keys = (
                routing_key if routing_key is not None or batch.row_keys is None else list(batch.row_keys)
            )
            self._mirror(routing.shadow, batch, ids, keys, consent)
        return Outcome(ids, parts)

    def submit(
        self,
        name: str,
        batch: Batch,
        *,
        header_id: str | None,
        routing_key: str | None,
        done: Callable[[Outcome | None, BaseException | None], None],
        routing: Routing | None = None,
        arm: str | None = None,
        started: float | None = None,
        consent: bool = True,
    ) -> Pending | None:
        """:meth:`predict` for the HTTP fast lane, without a task or a future per request: ``done``
        gets the outcome (or the error) on the event loop thread. Returns a handle to cancel the
        request when its client goes away. Rows split across arms take :meth:`predict` in a task.
        ``arm`` forces one arm (a request run again after its batch failed stays on its arm).
        ``started`` is when the request arrived (``time.perf_counter``): its latency budget counts
        from then."""
        routing = routing or self.manager.routing(name)
        groups = [(arm, None)] if arm is not None else _groups(routing, batch, routing_key)
        if len(groups) > 1:
            self._in_task(name, batch, header_id, routing_key, routing, done, consent)
            return None
        arm = groups[0][0]
        served = routing.arms[arm]
        ids = row_ids(batch, header_id)
        keys: Keys = (
            routing_key if routing_key is not None or batch.row_keys is None else list(batch.row_keys)
        )
        started = time.perf_counter() if started is None else started
        gauge = self.metrics.in_flight_gauge(name)
        tag = Tag(served, arm, ids, keys, started, consent=consent)

        def finished(out: Outputs | None, seconds: float, exc: BaseException | None) -> None:
            gauge.dec()
            latency = (time.perf_counter() - started) * 1000
            if exc is not None or out is None:
                if not isinstance(exc, Overloaded):
                    failure = repr(exc)
                    self._post_failure(served, arm, batch.columns, ids, latency, keys, failure, consent)
                    failed = ModelFailed(name, served.version, exc or RuntimeError("no outputs"))
                    failed.__cause__ = exc
                    exc = failed
                done(None, exc)
                return
            labels, proba = out
            if routing.shadow is not None and routing.rng.random() < routing.spec.shadow_rate:
                self._mirror(routing.shadow, batch, ids, keys, consent)
            if self.logger is not None:  # counted before the answer goes out (a crash may follow)
                self.logger.announce(len(ids))
                tag.announced = True
            done(Outcome(ids, [Part(served, arm, None, plain_labels(labels), proba)]), None)

        gauge.inc()
        try:
            return served.batcher.submit(batch.columns, batch.n_rows, finished, tag, started=started)
        except BaseException:
            gauge.dec()
            raise

    def _in_task(
        self,
        name: str,
        batch: Batch,
        header_id: str | None,
        routing_key: str | None,
        routing: Routing,
        done: Callable[[Outcome | None, BaseException | None], None],
        consent: bool,
    ) -> None:
        async def run() -> None:
            try:
                outcome = await self.predict(
                    name,
                    batch,
                    header_id=header_id,
                    routing_key=routing_key,
                    endpoint="predict",
                    routing=routing,
                    consent=consent,
                )
            except Exception as exc:  # handed to the caller, like every other failure
                done(None, exc)
                return
            done(outcome, None)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _part(
        self,
        name: str,
        routing: Routing,
        batch: Batch,
        ids: list[str],
        group: tuple[str, np.ndarray | None],
        key: str | None,
        started: float,
        direct: Served | None = None,
        consent: bool = True,
    ) -> Part:
        arm, rows = group
        served = direct if direct is not None else routing.arms[arm]
        columns = batch.columns if rows is None else {n: c[rows] for n, c in batch.columns.items()}
        n = batch.n_rows if rows is None else len(rows)
        part_ids = ids if rows is None else [ids[i] for i in rows.tolist()]
        keys: Keys = key
        if key is None and batch.row_keys is not None:
            keys = list(batch.row_keys) if rows is None else [batch.row_keys[i] for i in rows.tolist()]
        try:
            tag = Tag(served, arm, part_ids, keys, started, consent=consent)
            (labels, proba), _ = await served.batcher.run(columns, n, tag, started=started)
        except Overloaded:
            raise
        except Exception as exc:  # the model's own failure, not the client's
            latency = (time.perf_counter() - started) * 1000
            self._post_failure(served, arm, columns, part_ids, latency, keys, repr(exc), consent)
            raise ModelFailed(name, served.version, exc) from exc
        return Part(served, arm, rows, plain_labels(labels), proba)

    # -- after the response: metrics, log, profiles ------------------------------------------------

    def record_batch(self, items: list[Pending], columns: Columns, out: Outputs, seconds: float) -> None:
        """The batchers' ``on_batch``: one model call's requests, handed to post-processing at once
        (their metrics, live profiles and log rows are made there, per burst). Their log rows are
        announced to the logger first, those of the fast lane already when answered."""
        logger = self.logger
        if logger is not None:
            late = sum(it.rows for it in items if isinstance(it.tag, Tag) and not it.tag.announced)
            if late:
                logger.announce(late)
        now = time.perf_counter()
        queued = self.post.submit(self._record_batch, items, columns, out, seconds, now, time.time())
        if not queued and logger is not None:
            logger.withdraw(sum(it.rows for it in items if isinstance(it.tag, Tag)))

    def _post_failure(
        self,
        served: Served,
        arm: str,
        columns: Any,
        ids: list[str],
        latency_ms: float,
        key: Keys,
        error: str,
        consent: bool = True,
    ) -> None:
        """Hand a failed prediction's log rows to post-processing, announced to the logger."""
        logger = self.logger
        if logger is not None:
            logger.announce(len(ids))
        queued = self.post.submit(
            self._record_failure, served, arm, columns, ids, latency_ms, key, error, consent
        )
        if not queued and logger is not None:
            logger.withdraw(len(ids))

    def _record_batch(
        self, items: list[Pending], columns: Columns, out: Outputs, seconds: float, done: float, ts: float
    ) -> None:
        labels, proba = out
        groups: dict[tuple[int, str, bool], list[tuple[int, Pending]]] = {}
        offset = 0
        for it in items:
            tag = it.tag
            if isinstance(tag, Tag):
                groups.setdefault((id(tag.served), tag.arm, tag.consent), []).append((offset, it))
            offset += it.rows
        for key, group in groups.items():
            if len(group) == len(items):  # every request of the call: its arrays as they are
                cols, lab, pr = dict(columns), labels, proba
            else:
                index = np.concatenate([np.arange(o, o + it.rows) for o, it in group])
                cols = {n: np.asarray(c)[index] for n, c in columns.items()}
                lab, pr = labels[index], (proba[index] if proba is not None else None)
            tags: list[Tag] = [it.tag for _, it in group]  # type: ignore[misc]
            ids = [rid for t in tags for rid in t.ids]
            latencies = [
                (done - s) * 1000
                for t in tags
                for s in (t.started if isinstance(t.started, list) else [t.started] * len(t.ids))
            ]
            keys: Keys = None
            if any(t.keys is not None for t in tags):
                keys = [
                    k for t in tags for k in (t.keys if isinstance(t.keys, list) else [t.keys] * len(t.ids))
                ]
            answer = _Answer(cols, ids, lab, pr, seconds, latencies, keys, ts)
            self._answered.setdefault(key, (tags[0].served, []))[1].append(answer)

    def _record_failure(
        self,
        served: Served,
        arm: str,
        columns: Any,
        ids: list[str],
        latency_ms: float,
        key: Keys,
        error: str,
        consent: bool = True,
    ) -> None:
        if self.logger is not None:
            columns = columns if consent or self.without_consent == "redact" else {}
            self.logger.submit_batch(
                _batch(served, arm, columns, ids, None, None, latency_ms, key, error=error, consent=consent)
            )

    def flush(self) -> None:
        """Everything answered since the last call, per version and arm, concatenated once: the
        prediction metrics (one count per class, one pass over the scores), one live profile update
        and one prediction log batch per burst, not one of each per request. Shadow answers are
        logged only."""
        answered, self._answered = self._answered, {}
        for (_, arm, consent), (served, answers) in answered.items():
            model, name, version = served.model, served.model.name, served.version
            columns = {n: np.concatenate([a.columns[n] for a in answers]) for n in answers[0].columns}
            labels = np.concatenate([np.asarray(a.labels).reshape(-1) for a in answers])
            probas = [a.proba for a in answers if a.proba is not None]
            proba = np.concatenate(probas) if probas and len(probas) == len(answers) else None
            if arm != SHADOW_ARM:
                self._count(name, version, answers, labels, proba)
                if self.observer is not None and consent:  # no profile sees inputs without consent
                    kw = {"labels": labels} if model.is_classifier else {"values": labels}
                    if proba is not None:
                        kw["probabilities"] = proba
                    self.observer(name, version, arm, model.profile, columns, **kw)
            if self.logger is not None:
                logged = columns if consent or self.without_consent == "redact" else {}
                self.logger.submit_batch(_log_batch(served, arm, answers, logged, labels, proba, consent))

    def _count(
        self, name: str, version: str, answers: list[_Answer], labels: np.ndarray, proba: np.ndarray | None
    ) -> None:
        for a in answers:
            self.metrics.observe_inference(model=name, version=version, seconds=a.seconds)
        if proba is not None:
            scores = proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)
            text = np.asarray([str(v) for v in labels.tolist()])
            self.metrics.observe_predictions(model=name, version=version, labels=text, scores=scores)
        elif labels.dtype != object:  # an object array holds a list (or tensor) per row: no histogram
            values = np.asarray(labels, dtype=np.float64)
            self.metrics.observe_predictions(model=name, version=version, values=values)

    # -- shadow traffic -----------------------------------------------------------------------------

    def _mirror(self, shadow: Served, batch: Batch, ids: list[str], key: Keys, consent: bool) -> None:
        if self._shadow is None:
            self._shadow = asyncio.Queue(self.shadow_capacity)
            self._shadow_task = asyncio.get_running_loop().create_task(self._shadow_worker())
        try:
            self._shadow.put_nowait((shadow, batch, ids, key, consent))
        except asyncio.QueueFull:
            self.metrics.shadow_dropped(shadow.model.name)

    async def _shadow_worker(self) -> None:
        assert self._shadow is not None  # noqa: S101 - created with the task
        while True:
            shadow, batch, ids, key, consent = await self._shadow.get()
            try:
                await self._shadow_one(shadow, batch, ids, key, consent)
            finally:
                self._shadow.task_done()

    async def _shadow_one(
        self, shadow: Served, batch: Batch, ids: list[str], key: Keys, consent: bool = True
    ) -> None:
        started = time.perf_counter()
        try:
            tag = Tag(shadow, SHADOW_ARM, ids, key, started, consent=consent)
            await shadow.batcher.run(batch.columns, batch.n_rows, tag)  # recorded by record_batch
        except Exception as exc:  # a failing shadow is recorded, never seen by clients
            latency = (time.perf_counter() - started) * 1000
            self.metrics.shadow_failed(shadow.model.name)
            self._post_failure(shadow, SHADOW_ARM, batch.columns, ids, latency, key, repr(exc), consent)
            return
        self.metrics.shadow_served(shadow.model.name)

    async def close(self, timeout: float = 5.0) -> None:
        """Finish the mirrored requests still queued (within ``timeout``), then stop."""
        if self._shadow is not None and self._shadow_task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._shadow.join(), timeout)
            self._shadow_task.cancel()


@dataclass(slots=True)
class Tag:
    """What recording needs of one request's part, carried through the batcher with its rows."""

    served: Served
    arm: str
    ids: list[str]
    keys: Keys
    started: float | list[float]  # when the request (or each request of a hot batch) was taken
    announced: bool = False  # its log rows were announced to the logger when it was answered
    consent: bool = True  # False: the request did not consent to keeping its inputs


@dataclass(frozen=True, slots=True)
class _Answer:
    """One part of a request, as answered: what post-processing makes metrics, profiles and log rows of."""

    columns: dict[str, np.ndarray]
    ids: list[str]
    labels: np.ndarray
    proba: np.ndarray | None
    seconds: float  # the predict call's
    latency_ms: list[float]  # each row's request's, so far
    keys: Keys  # one key for every row, or one per row
    ts: float


def _log_batch(
    served: Served,
    arm: str,
    answers: list[_Answer],
    columns: dict[str, np.ndarray],
    labels: np.ndarray,
    proba: np.ndarray | None,
    consent: bool = True,
) -> RecordBatch:
    ids = [rid for a in answers for rid in a.ids]
    keys: Keys = None
    if any(a.keys is not None for a in answers):
        keys = [k for a in answers for k in (a.keys if isinstance(a.keys, list) else [a.keys] * len(a.ids))]
    latencies = [x for a in answers for x in a.latency_ms]
    times = [a.ts for a in answers for _ in a.ids]
    return _batch(served, arm, columns, ids, labels, proba, latencies, keys, ts=times, consent=consent)


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
    consent: bool = True,
) -> RecordBatch:
    model = served.model
    return RecordBatch(
        model=model.name,
        version=served.version,
        arm=arm,
        ts=time.time() if ts is None else ts,
        latency_ms=latency_ms,
        request_ids=ids,
        # Arrays as they are: the log writer makes plain values of them (RecordBatch.plain).
        inputs={n: np.asarray(c) for n, c in columns.items()},
        predictions=np.asarray(labels).reshape(-1) if labels is not None else None,
        probabilities=proba,
        classes=[str(c) for c in model.class_values] if proba is not None else (),
        routing_keys=key,
        error=error,
        consent=consent,
    )
