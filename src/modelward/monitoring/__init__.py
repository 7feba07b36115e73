"""Monitoring: Prometheus metrics for the server, and the prediction log (writer and queries).

Alerts, drift gauges and live performance come with the monitoring issue.
"""

from __future__ import annotations

from modelward.monitoring.alert_config import AlertConfig, load_alert_config
from modelward.monitoring.alerts import AlertCenter
from modelward.monitoring.metrics import ServingMetrics, mark_worker_dead, prepare_multiprocess_dir
from modelward.monitoring.notifiers import LogNotifier, Notifier, WebhookNotifier
from modelward.monitoring.performance_gauges import PerformanceGauges
from modelward.monitoring.prediction_log import LogStats, PredictionLogger, PredictionRecord, Redactor
from modelward.monitoring.prediction_query import export, iter_predictions, parse_since, tail

__all__ = [
    "AlertCenter",
    "AlertConfig",
    "LogNotifier",
    "LogStats",
    "Notifier",
    "PerformanceGauges",
    "PredictionLogger",
    "PredictionRecord",
    "Redactor",
    "ServingMetrics",
    "WebhookNotifier",
    "export",
    "iter_predictions",
    "load_alert_config",
    "mark_worker_dead",
    "parse_since",
    "prepare_multiprocess_dir",
    "tail",
]
