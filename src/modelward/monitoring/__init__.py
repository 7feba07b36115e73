"""Monitoring: Prometheus metrics for the server, and the prediction log (writer and queries).

Live drift: per-bucket live profiles (:class:`LiveProfiler`), windows and reports
(:func:`live_report`), drift gauges; two-file drift is in :mod:`modelward.monitoring.drift_files`
(not imported here: it loads pyarrow).
"""

from __future__ import annotations

from modelward.monitoring.alert_config import AlertConfig, load_alert_config
from modelward.monitoring.alerts import AlertCenter
from modelward.monitoring.drift_gauges import DriftGauges
from modelward.monitoring.live_drift import LiveDriftReport, live_report, load_reference, window_profile
from modelward.monitoring.live_profiles import LiveProfiler
from modelward.monitoring.metrics import ServingMetrics, mark_worker_dead, prepare_multiprocess_dir
from modelward.monitoring.notifiers import LogNotifier, Notifier, WebhookNotifier
from modelward.monitoring.performance_gauges import PerformanceGauges
from modelward.monitoring.prediction_log import LogStats, PredictionLogger, PredictionRecord, Redactor
from modelward.monitoring.prediction_query import export, iter_predictions, parse_since, tail

__all__ = [
    "AlertCenter",
    "AlertConfig",
    "DriftGauges",
    "LiveDriftReport",
    "LiveProfiler",
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
    "live_report",
    "load_alert_config",
    "load_reference",
    "mark_worker_dead",
    "parse_since",
    "prepare_multiprocess_dir",
    "tail",
    "window_profile",
]
