"""A new version under an active alert is a new incident: the monitor, on a registry with two
versions of churn, notifies a real webhook receiver when a promoted version is as bad as the one it
replaced, and closes the old version's alert as superseded once the rule no longer judges it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import delete

from modelward.config import Settings
from modelward.control.monitor import MonitorTask
from modelward.feedback import FeedbackItem, FeedbackStore
from modelward.monitoring.alert_rules import (
    AlertRule,
    ErrorRateRule,
    EstimatedDropRule,
    LatencyRule,
    PerformanceRule,
)
from modelward.monitoring.alerts import AlertCenter
from modelward.monitoring.notifiers import WebhookNotifier
from modelward.registry import Registry, register_model
from modelward.store.tables import alert_events, alerts, feedback, predictions
from tests.control.webhook_receiver import Receiver, running_receiver

T0 = 1_900_000_000.0


@pytest.fixture(scope="module")
def two_versions(
    tmp_path_factory: pytest.TempPathFactory, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> Iterator[Registry]:
    home = tmp_path_factory.mktemp("new-version-home")
    settings = Settings(home=home, actor="tester", tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    registry = Registry.from_settings(settings).open()
    register_model(registry, churn_models["logreg"], "churn", train_data=churn_frame, target="churn")
    register_model(registry, churn_models["forest"], "churn", train_data=churn_frame, target="churn")
    yield registry
    registry.close()


@pytest.fixture
def registry(two_versions: Registry) -> Registry:
    """Version 1 the champion; an empty log, labels and alerts."""
    with two_versions.store.write() as conn:
        for table in (alerts, alert_events, predictions, feedback):
            conn.execute(delete(table))
    two_versions.promote("churn", 1)
    return two_versions


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


def _task(registry: Registry, receiver: Receiver, rules: list[AlertRule]) -> tuple[MonitorTask, AlertCenter]:
    hook = WebhookNotifier(receiver.url, allowed_hosts=["127.0.0.1"])
    center = AlertCenter(registry.store, [hook])
    return MonitorTask(registry, center, rules=rules, models=["churn"], window_seconds=3600), center


def _serve(registry: Registry, version: str, start: float, n: int, *, errors: int = 0, seed: int = 0) -> None:
    """``n`` requests of ``version`` from ``start``, one a second, the first ``errors`` failed, slow
    (900 ms) and labelled at random (ROC AUC near 0.5)."""
    rng = np.random.default_rng(seed)
    p, labels = rng.random(n), rng.integers(0, 2, n)
    rows = []
    for i in range(n):
        outputs = {"prediction": int(p[i] > 0.5), "probabilities": {"0": 1 - p[i], "1": p[i]}}
        rows.append(
            {
                "request_id": f"v{version}-{start}-{i}",
                "ts": start + i,
                "model": "churn",
                "version": version,
                "arm": None,
                "routing_key": None,
                "inputs": "{}",
                "outputs": "{}" if i < errors else json.dumps(outputs),
                "latency_ms": 900.0,
                "error": "boom" if i < errors else None,
            }
        )
    with registry.store.write() as conn:
        conn.execute(predictions.insert(), rows)
    items = [FeedbackItem(r["request_id"], int(labels[i])) for i, r in enumerate(rows) if i >= errors]
    FeedbackStore(registry.store).record(items)


def _posts(receiver: Receiver) -> list[tuple[str, str, str]]:
    """(kind, rule, message) of each webhook received, in order."""
    return [
        (p["modelward"]["kind"], p["modelward"]["rule"], p["modelward"]["message"]) for p in receiver.posts
    ]


def test_a_promoted_version_below_the_floor_is_a_new_incident(registry: Registry, receiver: Receiver) -> None:
    rules: list[AlertRule] = [
        PerformanceRule(name="auc-floor", metric="roc_auc", op="<", threshold=0.8, min_labels=100),
        EstimatedDropRule(reference=0.99, max_drop=0.05, min_rows=100, require_trusted=False),
    ]
    task, center = _task(registry, receiver, rules)
    _serve(registry, "1", T0, 300)
    task.run(T0 + 400)
    fired = _posts(receiver)
    assert sorted((k, r) for k, r, _ in fired) == [("fire", "auc-floor"), ("fire", "estimated_drop")]
    assert all(m.startswith("churn:1: ") for _, _, m in fired)

    registry.promote("churn", 2)  # as bad as version 1
    _serve(registry, "2", T0 + 500, 300, seed=1)
    result = task.run(T0 + 1000)
    assert result is not None and result.checks[0].version == "2"
    later = _posts(receiver)[len(fired) :]
    new = [(r, m) for k, r, m in later if k == "fire"]
    assert sorted(r for r, _ in new) == ["auc-floor", "estimated_drop"]
    assert all(m.startswith("churn:2: ") for _, m in new)
    assert all(
        p["modelward"]["version"] == "2"
        for p in receiver.posts[len(fired) :]
        if p["modelward"]["kind"] == "fire"
    )
    closed = [(r, m) for k, r, m in later if k == "supersede"]
    assert sorted(r for r, _ in closed) == ["auc-floor", "estimated_drop"]
    assert all("churn:2" in m and "churn:1: " in m for _, m in closed)
    assert sorted(kind for kind, _, _ in later) == ["fire", "fire", "supersede", "supersede"]
    active = center.active("churn")
    assert sorted(a.rule for a in active) == ["auc-floor", "estimated_drop"]
    assert all(a.message.startswith("churn:2: ") for a in active)

    task.run(T0 + 1100)  # still firing for version 2: silent until the cool-down
    assert len(receiver.posts) == len(fired) + len(later)


def test_error_rate_and_latency_are_judged_per_version(registry: Registry, receiver: Receiver) -> None:
    rules: list[AlertRule] = [ErrorRateRule(max_rate=0.05, min_requests=100), LatencyRule(p95_ms=500)]
    task, center = _task(registry, receiver, rules)
    _serve(registry, "1", T0, 300, errors=60)
    task.run(T0 + 400)
    first = _posts(receiver)
    assert sorted((k, r) for k, r, _ in first) == [("fire", "error_rate"), ("fire", "latency")]
    assert all(m.startswith("churn:1: ") for _, _, m in first)

    registry.promote("churn", 2)
    _serve(registry, "2", T0 + 500, 300, errors=30, seed=1)
    task.run(T0 + 1000)  # version 1's requests are still in the window: both versions fire
    second = _posts(receiver)[len(first) :]
    assert sorted((k, r) for k, r, _ in second) == [("fire", "error_rate"), ("fire", "latency")]
    assert all(m.startswith("churn:2: ") for _, _, m in second)
    assert any("error rate 10.0% (30 of 300" in m for _, _, m in second)  # version 2's own requests
    assert len(center.active("churn")) == 4

    task.run(T0 + 300 + 3600 + 60)  # version 1's requests have left the window
    third = _posts(receiver)[len(first) + len(second) :]
    assert sorted((k, r) for k, r, _ in third) == [("supersede", "error_rate"), ("supersede", "latency")]
    assert all(m.startswith("superseded") and "churn:1: " in m for _, _, m in third)
    assert all(a.message.startswith("churn:2: ") for a in center.active("churn"))
    assert len(center.active("churn")) == 2
