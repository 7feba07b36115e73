"""The monitor task on a registered churn model: live drift from the live profiles, traffic from the
prediction log and performance from joined labels go through the alert center to a real webhook."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from modelward.control.monitor import MonitorTask, traffic_stats
from modelward.feedback import FeedbackItem, FeedbackStore
from modelward.monitoring.alert_rules import (
    DatasetDriftRule,
    ErrorRateRule,
    LatencyRule,
    PerformanceRule,
    TrafficStats,
)
from modelward.monitoring.alerts import AlertCenter
from modelward.monitoring.drift_gauges import DriftGauges
from modelward.monitoring.live_drift import load_reference
from modelward.monitoring.live_profiles import LiveProfiler
from modelward.monitoring.notifiers import WebhookNotifier
from modelward.monitoring.performance_gauges import PerformanceGauges
from modelward.registry import Registry
from modelward.store import Store
from modelward.store.tables import predictions
from tests.control.monitor_fixtures import hook, profile_columns, two_versions, versions
from tests.control.webhook_receiver import Receiver

__all__ = ["hook", "two_versions", "versions"]  # fixtures: imported so that pytest finds them

T0 = 1_900_000_000.0


@pytest.fixture
def registry(versions: Registry) -> Registry:
    """Churn with version 1 the champion, an empty log, profiles, labels and alerts."""
    return versions


@pytest.fixture
def receiver(hook: Receiver) -> Receiver:
    return hook


def _center(registry: Registry, receiver: Receiver, **kw: float) -> AlertCenter:
    hook = WebhookNotifier(receiver.url, allowed_hosts=["127.0.0.1"])
    return AlertCenter(registry.store, [hook], **kw)  # type: ignore[arg-type]


def _drifted(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["age"] = out["age"] + 20
    out["balance"] = out["balance"] * 3 + 50_000
    out["tenure"] = 10
    out["estimated_salary"] = out["estimated_salary"] * 2
    out["geography"] = "Germany"
    out["num_products"] = 4
    return out


def test_drift_reaches_the_webhook_once_and_resolves_once(
    registry: Registry, receiver: Receiver, churn_frame: pd.DataFrame
) -> None:
    reference = load_reference(registry, "churn", "1")
    features = churn_frame.drop(columns=["churn"])
    clock = [T0]
    profiler = LiveProfiler(registry.store, writer="server:1", clock=lambda: clock[0], bucket_seconds=60)
    center = _center(registry, receiver, cooldown=3600, resolve_after=120)
    gauges = DriftGauges(CollectorRegistry())
    task = MonitorTask(
        registry,
        center,
        rules=[DatasetDriftRule()],
        models=["churn"],
        window_seconds=300,
        interval=60,
        drift_gauges=gauges,
    )
    dataset_drift = lambda: gauges.registry.get_sample_value(  # noqa: E731
        "modelward_dataset_drift", {"model": "churn", "version": "1"}
    )
    rng = np.random.default_rng(5)
    runs = []

    def serve(minutes: int, drift: bool) -> None:
        for _ in range(minutes):
            for _ in range(5):  # five requests of 40 rows a minute
                clock[0] += 12
                batch = features.sample(40, random_state=int(rng.integers(1 << 30)))
                profiler.observe(
                    "churn", "1", None, reference, profile_columns(_drifted(batch) if drift else batch)
                )
            profiler.flush()
            result = task.run(clock[0])
            assert result is not None and result.checks[0].problems == {}
            runs.append(result)

    serve(8, drift=False)
    assert receiver.posts == []
    assert runs[-1].checks[0].version == "1" and runs[-1].checks[0].inputs.drift is not None
    assert dataset_drift() == 0
    serve(8, drift=True)
    assert dataset_drift() == 1
    (alert,) = receiver.texts()
    assert alert.startswith("[FIRING] warning: dataset_drift on churn: churn:1: dataset drift")
    serve(12, drift=False)
    fired, resolved = receiver.texts()
    assert fired == alert and resolved.startswith("[RESOLVED] warning: dataset_drift on churn")
    assert task.run(clock[0] + 10) is None  # within the interval: no second round
    assert center.active() == []
    assert sum(len(r.transitions) for r in runs) == 2
    json.dumps([r.to_dict() for r in runs])


def _log(registry: Registry | Store, rows: list[dict[str, Any]]) -> None:
    base = {"routing_key": None, "inputs": "{}", "error": None, "arm": None, "model": "churn", "version": "1"}
    store = registry.store if isinstance(registry, Registry) else registry
    with store.write() as conn:
        conn.execute(predictions.insert(), [{**base, **r} for r in rows])


def _classifier_row(i: int, ts: float, p: float, latency: float, **extra: Any) -> dict[str, Any]:
    outputs = {"prediction": int(p > 0.5), "probabilities": {"0": 1 - p, "1": p}}
    return {"request_id": f"r{i}", "ts": ts, "outputs": json.dumps(outputs), "latency_ms": latency, **extra}


def test_traffic_comes_from_the_prediction_log_without_shadow_rows(store: Store) -> None:
    rng = np.random.default_rng(1)
    latency = rng.gamma(2.0, 20.0, 300)
    failed = {"error": "boom", "outputs": "{}"}
    rows = [
        _classifier_row(i, T0 + i, 0.7, float(latency[i]), **(failed if i % 10 == 0 else {}))
        for i in range(300)
    ]
    rows += [_classifier_row(1000 + i, T0 + i, 0.7, 5000.0, arm="shadow", error="x") for i in range(100)]
    rows += [_classifier_row(2000, T0 - 10_000, 0.7, 9000.0)]  # outside the window
    rows += [_classifier_row(3000, T0 + 7000, 0.7, 42.0)]  # alone in a later window
    _log(store, rows)
    stats = traffic_stats(store, "churn", T0, T0 + 3600)
    assert (stats.requests, stats.errors) == (300, 30)
    assert stats.p95_ms == pytest.approx(float(np.percentile(latency, 95)), rel=1e-12)
    assert traffic_stats(store, "churn", T0 + 5000, T0 + 6000) == TrafficStats(0, 0, None, 1000)
    assert traffic_stats(store, "churn", T0 + 6000, T0 + 8000).p95_ms == 42.0


def test_error_rate_latency_and_performance_alerts(registry: Registry, receiver: Receiver) -> None:
    rng = np.random.default_rng(2)
    n = 400
    p = rng.random(n)
    rows = [
        _classifier_row(
            i,
            T0 + i,
            float(p[i]),
            900.0 if i % 2 else 20.0,
            **({"error": "boom", "outputs": "{}"} if i < 40 else {}),
        )
        for i in range(n)
    ]
    _log(registry, rows)
    labels = rng.integers(0, 2, n)  # labels unrelated to the scores: ROC AUC near 0.5
    FeedbackStore(registry.store).record([FeedbackItem(f"r{i}", int(labels[i])) for i in range(40, n)])
    gauges = PerformanceGauges(CollectorRegistry())
    rules = [
        ErrorRateRule(max_rate=0.05, min_requests=100),
        LatencyRule(p95_ms=500, min_requests=20),
        PerformanceRule(name="auc-floor", metric="roc_auc", op="<", threshold=0.8, min_labels=100),
    ]
    center = _center(registry, receiver)
    task = MonitorTask(
        registry,
        center,
        rules=rules,
        models=["churn", "ghost"],
        window_seconds=3600,
        performance_gauges=gauges,
    )
    result = task.run(T0 + 1000)
    assert result is not None
    churn, ghost = result.checks
    assert churn.problems == {}
    assert churn.inputs.traffic is not None and churn.inputs.traffic.errors == 40
    assert churn.inputs.performance is not None and churn.inputs.performance.labels == n - 40
    assert sorted(t.notification.rule for t in churn.transitions) == ["auc-floor", "error_rate", "latency"]
    texts = receiver.texts()
    assert len(texts) == 3
    assert any(
        "[FIRING] critical: error_rate on churn: churn:1: error rate 10.0% (40 of 400" in t for t in texts
    )
    assert any("latency on churn" in t and "p95 latency 900.0 ms" in t for t in texts)
    assert any("auc-floor on churn" in t and "roc_auc" in t for t in texts)
    assert "version" in ghost.problems and ghost.transitions == ()  # an unknown model is reported, not fatal
    sample = gauges.registry.get_sample_value(
        "modelward_performance", {"model": "churn", "version": "all", "arm": "all", "metric": "roc_auc"}
    )
    assert sample is not None and sample < 0.8
    assert task.run(T0 + 1030) is None  # within the interval
    again = task.run(T0 + 1090)
    assert again is not None and again.transitions == ()  # still firing: silent until the cool-down
    assert len(receiver.posts) == 3


def test_the_monitor_plugs_into_the_controller(
    registry: Registry, receiver: Receiver, tmp_path: Path
) -> None:
    from modelward.control.controller import Controller, ControllerTask

    center = _center(registry, receiver)
    task = MonitorTask(registry, center, rules=[ErrorRateRule(min_requests=10)], models=["churn"])
    assert isinstance(task, ControllerTask)
    _log(registry, [_classifier_row(i, T0 + i, 0.5, 1.0, error="boom", outputs="{}") for i in range(20)])
    controller = Controller(registry, tasks=[task], canary=False, alert=center.event, holder="test:1")
    report = controller.tick(T0 + 100)
    assert report.acting and report.errors == {}
    assert report.results["monitor"].checks[0].transitions[0].kind == "fire"
    line = json.loads(orjson.dumps(report.to_dict()))  # what `modelward controller --json` prints
    assert line["results"]["monitor"]["models"][0]["traffic"]["errors"] == 20
    assert line["results"]["monitor"]["models"][0]["sent"][0]["kind"] == "fire"
    assert len(receiver.posts) == 1
