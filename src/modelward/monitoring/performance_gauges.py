"""Prometheus gauges of live performance, set from a :class:`~modelward.feedback.PerformanceReport`.

The controller computes a report per model every so often and calls :meth:`PerformanceGauges.update`;
a scrape then reads the last figures. Series (labels ``model``, ``version``, ``arm``, and ``metric``
where there is one; ``version="all", arm="all"`` is the model as a whole):

- ``modelward_performance``: realized metrics from labels (accuracy, precision, recall, f1,
  roc_auc, log_loss, brier; mae, rmse, r2);
- ``modelward_estimated_performance``: label-free estimates (accuracy, precision, recall, f1,
  roc_auc), and ``modelward_estimated_performance_trusted`` (1 when the calibration check passed);
- ``modelward_label_coverage`` (share of the window's predictions with a label) and
  ``modelward_performance_rows{kind="predictions"|"labelled"}``.

The figures of a window are facts about the store, not per-process counts, so every gauge uses
``multiprocess_mode="mostrecent"``: with several workers the scrape shows the value set last,
whichever worker set it (see ``monitoring/metrics.py`` for multiprocess mode). A metric that the
new report cannot compute, or a version that left the window, is removed from the exposition; in
multiprocess mode, where prometheus_client cannot remove series, it is set to NaN instead (a NaN
sample compares false in every alert rule).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge

from modelward.monitoring.metrics import multiprocess_dir

if TYPE_CHECKING:
    from modelward.feedback.performance import GroupPerformance, PerformanceReport

__all__ = ["PerformanceGauges"]

_Key = tuple[str, ...]


class PerformanceGauges:
    """Performance gauges registered in ``registry``; one instance per process and registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        labels = ["model", "version", "arm", "metric"]
        self._realized = Gauge(
            "modelward_performance",
            "Live performance from ground-truth labels over the controller's window.",
            labels,
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self._estimated = Gauge(
            "modelward_estimated_performance",
            "Label-free performance estimated from the logged probabilities (confidence-based).",
            labels,
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self._trusted = Gauge(
            "modelward_estimated_performance_trusted",
            "1 when the estimate passed the calibration check on reference data, else 0.",
            labels,
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self._coverage = Gauge(
            "modelward_label_coverage",
            "Share of the window's predictions that have a ground-truth label.",
            ["model", "version", "arm"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self._rows = Gauge(
            "modelward_performance_rows",
            "Predictions in the controller's window (kind=predictions) and those with a label (labelled).",
            ["model", "version", "arm", "kind"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self._set: dict[tuple[Gauge, str], set[_Key]] = {}

    def update(self, report: PerformanceReport) -> PerformanceGauges:
        """Show ``report``'s figures; series of ``report.model`` that it no longer has are dropped."""
        model = report.model
        fresh: dict[Gauge, dict[_Key, float]] = {
            g: {} for g in (self._realized, self._estimated, self._trusted, self._coverage, self._rows)
        }
        for group in (report.overall, *report.groups):
            self._collect(fresh, model, group)
        for gauge, values in fresh.items():
            for key, value in values.items():
                gauge.labels(*key).set(value)
            previous = self._set.get((gauge, model), set())
            for key in previous - values.keys():
                self._drop(gauge, key)
            self._set[(gauge, model)] = set(values)
        return self

    def _collect(self, fresh: dict[Gauge, dict[_Key, float]], model: str, group: GroupPerformance) -> None:
        base = (model, group.version, group.arm)
        for name, metric in group.metrics.items():
            if metric.value is not None and math.isfinite(metric.value):
                fresh[self._realized][(*base, name)] = metric.value
        for name, estimate in group.estimated.items():
            if estimate.value is not None and math.isfinite(estimate.value):
                fresh[self._estimated][(*base, name)] = estimate.value
                fresh[self._trusted][(*base, name)] = 1.0 if estimate.trusted else 0.0
        if group.coverage is not None:
            fresh[self._coverage][base] = group.coverage
        fresh[self._rows][(*base, "predictions")] = float(group.n_predictions)
        fresh[self._rows][(*base, "labelled")] = float(group.n_labelled)

    @staticmethod
    def _drop(gauge: Gauge, key: _Key) -> None:
        if multiprocess_dir() is not None:
            gauge.labels(*key).set(math.nan)
        else:
            gauge.remove(*key)
