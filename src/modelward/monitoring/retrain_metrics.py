"""Prometheus metrics of retraining runs (docs/loop.md, "Metrics").

``modelward_retrain_runs_total{model,trigger,outcome}`` counts finished runs (outcome: succeeded,
failed, timed_out), ``modelward_retrain_triggers_total{model,trigger}`` counts runs started,
``modelward_retrain_duration_seconds{model,trigger}`` is a histogram of their durations and
``modelward_retrain_in_progress{model}`` is 1 while a run this process started is in progress
(``livesum`` over workers). The registry is passed in, never the global one.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["RetrainMetrics"]

_BUCKETS = (1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14_400.0, 43_200.0)


class RetrainMetrics:
    """``started(model, trigger)`` when a run starts, ``finished(...)`` when it ends."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._triggers = Counter(
            "modelward_retrain_triggers",
            "Retraining runs started, by model and trigger.",
            ["model", "trigger"],
            registry=registry,
        )
        self._runs = Counter(
            "modelward_retrain_runs",
            "Retraining runs finished, by model, trigger and outcome.",
            ["model", "trigger", "outcome"],
            registry=registry,
        )
        self._duration = Histogram(
            "modelward_retrain_duration_seconds",
            "Duration of finished retraining runs.",
            ["model", "trigger"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self._in_progress = Gauge(
            "modelward_retrain_in_progress",
            "1 while a retraining run of the model started by this process is in progress.",
            ["model"],
            registry=registry,
            multiprocess_mode="livesum",
        )

    def started(self, model: str, trigger: str) -> None:
        self._triggers.labels(model, trigger).inc()
        self._in_progress.labels(model).set(1)

    def finished(self, model: str, trigger: str, outcome: str, duration: float) -> None:
        self._runs.labels(model, trigger, outcome).inc()
        self._duration.labels(model, trigger).observe(max(0.0, duration))
        self._in_progress.labels(model).set(0)
