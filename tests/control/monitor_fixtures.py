"""Monitor test fixtures: a registry with two versions of churn (version 1 the champion), logged and
labelled predictions, and a webhook receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import delete

from modelward.config import Settings
from modelward.control.monitor import MonitorTask
from modelward.feedback import FeedbackItem, FeedbackStore
from modelward.monitoring.alert_rules import AlertRule
from modelward.monitoring.alerts import AlertCenter
from modelward.monitoring.notifiers import WebhookNotifier
from modelward.registry import Registry, register_model
from modelward.store.tables import alert_events, alerts, feedback, live_profiles, predictions
from tests.control.webhook_receiver import Receiver, running_receiver


@pytest.fixture(scope="module")
def two_versions(
    tmp_path_factory: pytest.TempPathFactory, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> Iterator[Registry]:
    home = tmp_path_factory.mktemp("two-versions-home")
    settings = Settings(home=home, actor="tester", tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    registry = Registry.from_settings(settings).open()
    register_model(registry, churn_models["logreg"], "churn", train_data=churn_frame, target="churn")
    register_model(registry, churn_models["forest"], "churn", train_data=churn_frame, target="churn")
    yield registry
    registry.close()


@pytest.fixture
def versions(two_versions: Registry) -> Registry:
    """Version 1 the champion; an empty log, labels, live profiles and alerts."""
    with two_versions.store.write() as conn:
        for table in (alerts, alert_events, live_profiles, predictions, feedback):
            conn.execute(delete(table))
    two_versions.promote("churn", 1)
    return two_versions


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


def serve_rows(
    registry: Registry,
    version: str,
    start: float,
    n: int,
    *,
    errors: int = 0,
    seed: int = 0,
    labelled: bool = True,
) -> None:
    """``n`` requests of ``version`` from ``start``, one a second, the first ``errors`` failed, slow
    (900 ms) and, when ``labelled``, labelled at random (ROC AUC near 0.5)."""
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
    if labelled:
        items = [FeedbackItem(r["request_id"], int(labels[i])) for i, r in enumerate(rows) if i >= errors]
        FeedbackStore(registry.store).record(items)


def monitor_for(
    registry: Registry, receiver: Receiver, rules: Sequence[AlertRule]
) -> tuple[MonitorTask, AlertCenter]:
    """A monitor of churn over an hour's window, alerting ``receiver``'s webhook."""
    notifier = WebhookNotifier(receiver.url, allowed_hosts=["127.0.0.1"])
    center = AlertCenter(registry.store, [notifier])
    return MonitorTask(registry, center, rules=rules, models=["churn"], window_seconds=3600), center


def posts(receiver: Receiver) -> list[tuple[str, str, str]]:
    """(kind, rule, message) of each webhook received, in order."""
    return [
        (p["modelward"]["kind"], p["modelward"]["rule"], p["modelward"]["message"]) for p in receiver.posts
    ]


STRING_FEATURES = ("geography", "gender")


def profile_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """A churn frame as the live profiler takes it: strings as objects, numbers as float64."""
    out: dict[str, np.ndarray] = {}
    for name in frame.columns:
        if name in STRING_FEATURES:
            out[name] = np.asarray([str(v) for v in frame[name]], dtype=object)
        else:
            out[name] = frame[name].to_numpy(dtype=np.float64)
    return out
