"""Prometheus gauges of the latest drift verdicts, kept fresh by the controller.

``modelward_drift_score{model,version,feature,statistic}`` holds every statistic of every feature (and
model output, as ``prediction`` and ``score``) of the latest report; ``modelward_dataset_drift`` is 1
when the data set drifted and ``modelward_drift_share`` the share of drifted features. The gauges use
``multiprocess_mode="mostrecent"``: in prometheus_client's multiprocess mode (see
:mod:`modelward.monitoring.metrics`) a scrape shows the value written last by any process, which is
right for a verdict computed from the shared store (every process would compute the same one), where
summing or averaging over workers would not be. The registry is passed in, never the global one.

Label cardinality is bounded by the reference: features times statistics for each served version.
A feature that leaves a report (a new version with other features) has its series removed.
"""

from __future__ import annotations

import math
import threading
from contextlib import suppress

from prometheus_client import CollectorRegistry, Gauge

from modelward.drift.detect import DriftReport

__all__ = ["DriftGauges"]


class DriftGauges:
    """``update(model, version, report)`` sets the gauges from one :class:`DriftReport`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._score = Gauge(
            "modelward_drift_score",
            "Drift statistics of the latest report, per model, version, feature and statistic.",
            ["model", "version", "feature", "statistic"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self._dataset = Gauge(
            "modelward_dataset_drift",
            "1 when the latest drift report found dataset drift, else 0.",
            ["model", "version"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self._share = Gauge(
            "modelward_drift_share",
            "Share of features that drifted in the latest drift report.",
            ["model", "version"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], set[tuple[str, str]]] = {}

    def update(self, model: str, version: str, report: DriftReport) -> None:
        """Set every gauge of ``model:version`` from ``report``; series it no longer has are removed.

        Non-finite statistics are skipped (a gauge of NaN would read as "no data" in most alerts).
        """
        version = str(version)
        seen: set[tuple[str, str]] = set()
        with self._lock:
            for verdict in (*report.features, *report.prediction):
                for statistic, value in verdict.scores.items():
                    if not math.isfinite(value):
                        continue
                    self._score.labels(model, version, verdict.feature, statistic).set(value)
                    seen.add((verdict.feature, statistic))
            for feature, statistic in self._series.get((model, version), set()) - seen:
                self._score.remove(model, version, feature, statistic)
            self._series[(model, version)] = seen
            self._dataset.labels(model, version).set(1 if report.dataset_drift else 0)
            self._share.labels(model, version).set(report.share_drifted)

    def forget(self, model: str, version: str) -> None:
        """Remove every series of ``model:version`` (a version no longer served)."""
        version = str(version)
        with self._lock:
            for feature, statistic in self._series.pop((model, version), set()):
                self._score.remove(model, version, feature, statistic)
            for gauge in (self._dataset, self._share):
                with suppress(KeyError):  # never updated
                    gauge.remove(model, version)
