"""One prediction, shared by the REST and Open Inference Protocol routes: run the model off the event
loop, then record metrics and the prediction log without holding the response."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from modelward.monitoring.metrics import ServingMetrics
from modelward.monitoring.prediction_log import PredictionLogger, PredictionRecord
from modelward.runtime import LoadedModel
from modelward.serving.models import ModelManager, Served
from modelward.serving.problems import ModelFailed
from modelward.validation import Batch

__all__ = ["Outcome", "Predictor", "row_ids"]


@dataclass(frozen=True, slots=True)
class Outcome:
    served: Served
    request_ids: list[str]
    labels: list[Any]  # predicted class values (classifiers) or values (regressors), as Python scalars
    probabilities: np.ndarray | None  # rows x classes
    classes: list[Any]


def row_ids(batch: Batch, header_id: str | None) -> list[str]:
    """Per-row request ids: the body's ``request_ids``; else one id (the body's ``request_id``, the
    ``X-Request-ID`` header, or a new one) for a single row, suffixed ``-<row>`` for several."""
    if batch.request_ids is not None:
        return list(batch.request_ids)
    base = batch.request_id or header_id or uuid.uuid4().hex
    if batch.n_rows == 1:
        return [base]
    return [f"{base}-{i}" for i in range(batch.n_rows)]


def _infer(model: LoadedModel, batch: Batch) -> tuple[np.ndarray, np.ndarray | None, float]:
    frame = batch.to_frame()
    started = time.perf_counter()
    if model.is_classifier and hasattr(model.native, "predict_proba"):
        probabilities = np.asarray(model.predict_proba(frame), dtype=np.float64)
        # scikit-learn's own rule for predict(): the most probable class.
        labels = np.asarray(model.class_values, dtype=object)[np.argmax(probabilities, axis=1)]
        return labels, probabilities, time.perf_counter() - started
    values = model.predict(frame)
    return values, None, time.perf_counter() - started


class Predictor:
    def __init__(
        self, manager: ModelManager, metrics: ServingMetrics, logger: PredictionLogger | None
    ) -> None:
        self.manager = manager
        self.metrics = metrics
        self.logger = logger

    async def predict(
        self, name: str, batch: Batch, *, header_id: str | None, routing_key: str | None, endpoint: str
    ) -> Outcome:
        served = self.manager.get(name)
        model = served.model
        ids = row_ids(batch, header_id)
        started = time.perf_counter()
        with self.metrics.in_flight(name):
            try:
                labels_arr, probabilities, seconds = await run_in_threadpool(_infer, model, batch)
            except Exception as exc:  # the model's own failure, not the client's
                raise ModelFailed(name, served.version, exc) from exc
        labels = [v.item() if hasattr(v, "item") else v for v in labels_arr.tolist()]
        self.metrics.observe_inference(model=name, version=served.version, seconds=seconds)
        if probabilities is not None:
            scores = probabilities[:, 1] if probabilities.shape[1] == 2 else probabilities.max(axis=1)
            self.metrics.observe_predictions(
                model=name, version=served.version, labels=np.asarray([str(v) for v in labels]), scores=scores
            )
        else:
            self.metrics.observe_predictions(
                model=name, version=served.version, values=np.asarray(labels_arr, dtype=np.float64)
            )
        if self.logger is not None:
            self._log(
                served, batch, ids, labels, probabilities, (time.perf_counter() - started) * 1000, routing_key
            )
        return Outcome(
            served, ids, labels, probabilities, model.class_values if probabilities is not None else []
        )

    def _log(
        self,
        served: Served,
        batch: Batch,
        ids: list[str],
        labels: list[Any],
        probabilities: np.ndarray | None,
        latency_ms: float,
        routing_key: str | None,
    ) -> None:
        now = time.time()
        names = list(batch.columns)
        columns = [batch.columns[n].tolist() for n in names]
        classes = [str(c) for c in served.model.class_values] if probabilities is not None else []
        probs = probabilities.tolist() if probabilities is not None else None
        records = []
        for i in range(batch.n_rows):
            inputs = {n: _plain(col[i]) for n, col in zip(names, columns, strict=True)}
            outputs: dict[str, Any] = {"prediction": labels[i]}
            if probs is not None:
                outputs["probabilities"] = dict(zip(classes, probs[i], strict=True))
            records.append(
                PredictionRecord(
                    request_id=ids[i],
                    ts=now,
                    model=served.model.name,
                    version=served.version,
                    inputs=inputs,
                    outputs=outputs,
                    latency_ms=latency_ms,
                    routing_key=routing_key,
                )
            )
        if self.logger is not None:
            self.logger.submit(records)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value != value:  # NaN: an optional field left empty
        return None
    return value
