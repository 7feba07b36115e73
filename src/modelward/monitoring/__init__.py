"""Monitoring: Prometheus metrics for the server, and the prediction log (writer and queries).

Live drift: per-bucket live profiles (:class:`LiveProfiler`), windows and reports
(:func:`live_report`), drift gauges; two-file drift is in :mod:`modelward.monitoring.drift_files`
(not imported here: it loads pyarrow).

The names below load on first use (PEP 562): a process that needs one module of this package,
such as the prediction log's writer process, does not pay for importing the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelward.monitoring.alert_config import AlertConfig, load_alert_config
    from modelward.monitoring.alerts import AlertCenter
    from modelward.monitoring.controller_gauges import ControllerGauges
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
    "ControllerGauges",
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

# Where each name above lives; imported on first access.
_WHERE = {
    "AlertCenter": "modelward.monitoring.alerts",
    "AlertConfig": "modelward.monitoring.alert_config",
    "ControllerGauges": "modelward.monitoring.controller_gauges",
    "DriftGauges": "modelward.monitoring.drift_gauges",
    "LiveDriftReport": "modelward.monitoring.live_drift",
    "LiveProfiler": "modelward.monitoring.live_profiles",
    "LogNotifier": "modelward.monitoring.notifiers",
    "LogStats": "modelward.monitoring.prediction_log",
    "Notifier": "modelward.monitoring.notifiers",
    "PerformanceGauges": "modelward.monitoring.performance_gauges",
    "PredictionLogger": "modelward.monitoring.prediction_log",
    "PredictionRecord": "modelward.monitoring.prediction_log",
    "Redactor": "modelward.monitoring.prediction_log",
    "ServingMetrics": "modelward.monitoring.metrics",
    "WebhookNotifier": "modelward.monitoring.notifiers",
    "export": "modelward.monitoring.prediction_query",
    "iter_predictions": "modelward.monitoring.prediction_query",
    "live_report": "modelward.monitoring.live_drift",
    "load_alert_config": "modelward.monitoring.alert_config",
    "load_reference": "modelward.monitoring.live_drift",
    "mark_worker_dead": "modelward.monitoring.metrics",
    "parse_since": "modelward.monitoring.prediction_query",
    "prepare_multiprocess_dir": "modelward.monitoring.metrics",
    "tail": "modelward.monitoring.prediction_query",
    "window_profile": "modelward.monitoring.live_drift",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
