"""Prometheus metrics of automatic rollouts and of rollbacks on live performance.

``modelward_rollouts_total{model,outcome}`` counts each step a rollout reached (``started``: the
gates passed and the canary began; ``rejected``, ``promoted``, ``rolled_back``, ``failed``);
``modelward_live_breach{model,version}`` is 1 while the champion's live metric is below its policy's
floor and 0 once it is not (or no longer judged); ``modelward_live_rollbacks_total{model}`` counts
the champions rolled back for it. The registry is passed in, never the global one.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["RolloutMetrics"]


class RolloutMetrics:
    """``rollout(model, outcome)``, ``breach(model, version, firing)``, ``live_rollback(model)``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._rollouts = Counter(
            "modelward_rollouts",
            "Automatic rollout steps reached, by outcome (started, rejected, promoted, rolled_back, failed).",
            ["model", "outcome"],
            registry=registry,
        )
        self._breach = Gauge(
            "modelward_live_breach",
            "1 while the champion's live metric is beyond its policy's floor, else 0.",
            ["model", "version"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self._rollbacks = Counter(
            "modelward_live_rollbacks",
            "Champions rolled back because their live metric stayed beyond its floor.",
            ["model"],
            registry=registry,
        )

    def rollout(self, model: str, outcome: str) -> None:
        self._rollouts.labels(model, outcome).inc()

    def breach(self, model: str, version: str, firing: bool) -> None:
        self._breach.labels(model, version).set(1 if firing else 0)

    def live_rollback(self, model: str) -> None:
        self._rollbacks.labels(model).inc()
