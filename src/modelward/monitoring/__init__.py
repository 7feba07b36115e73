"""Monitoring: Prometheus metrics for the server, and the prediction log (writer and queries).

Alerts, drift gauges and live performance come with the monitoring issue.
"""

from __future__ import annotations

from modelward.monitoring.metrics import ServingMetrics, mark_worker_dead, prepare_multiprocess_dir
from modelward.monitoring.prediction_log import LogStats, PredictionLogger, PredictionRecord, Redactor
from modelward.monitoring.prediction_query import export, iter_predictions, parse_since, tail

__all__ = [
    "LogStats",
    "PredictionLogger",
    "PredictionRecord",
    "Redactor",
    "ServingMetrics",
    "export",
    "iter_predictions",
    "mark_worker_dead",
    "parse_since",
    "prepare_multiprocess_dir",
    "tail",
]
