"""Retraining test fixtures: churn v1 (the champion) registered once per module, a clean slate of
runs, policies, log, labels and profiles per test, a retrainer whose notifications go to a webhook
receiver, and helpers that serve labelled or drifted traffic at chosen moments."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import delete

from modelward.config import Settings
from modelward.control.retrain import Retrainer, RetrainTask, settings_env
from modelward.feedback import FeedbackItem, FeedbackStore
from modelward.governance.reports import VersionReports
from modelward.monitoring.alerts import AlertCenter
from modelward.monitoring.live_drift import load_reference
from modelward.monitoring.live_profiles import LiveProfiler
from modelward.monitoring.notifiers import WebhookNotifier
from modelward.monitoring.retrain_metrics import RetrainMetrics
from modelward.registry import Registry, register_model
from modelward.store.tables import (
    alert_events,
    alerts,
    feedback,
    live_profiles,
    model_policies,
    predictions,
    retrain_runs,
)
from tests.control.monitor_fixtures import profile_columns
from tests.control.webhook_receiver import Receiver, running_receiver

PY = sys.executable


@pytest.fixture(scope="module")
def churn_home(
    tmp_path_factory: pytest.TempPathFactory, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> Iterator[tuple[Registry, Settings]]:
    home = tmp_path_factory.mktemp("retrain-home")
    settings = Settings(home=home, actor="tester", tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    registry = Registry.from_settings(settings).open()
    register_model(registry, churn_models["logreg"], "churn", train_data=churn_frame, target="churn")
    registry.promote("churn", 1)
    yield registry, settings
    registry.close()


@pytest.fixture
def churn(churn_home: tuple[Registry, Settings]) -> Registry:
    """churn v1 the champion; no runs, policies, predictions, labels, profiles or alerts."""
    registry = churn_home[0]
    with registry.store.write() as conn:
        for table in (
            retrain_runs,
            model_policies,
            alerts,
            alert_events,
            live_profiles,
            predictions,
            feedback,
        ):
            conn.execute(delete(table))
    return registry


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


def set_policy(registry: Registry, body: str) -> float:
    """Store ``body`` as churn's policy; when it was set."""
    return VersionReports(registry.store).set_policy("churn", body, actor="tester").updated_at


def retrainer_for(
    registry: Registry,
    settings: Settings,
    receiver: Receiver | None = None,
    *,
    actor: str = "controller:test",
) -> Retrainer:
    notifiers = [] if receiver is None else [WebhookNotifier(receiver.url, allowed_hosts=["127.0.0.1"])]
    center = AlertCenter(registry.store, notifiers)  # type: ignore[arg-type]
    return Retrainer(
        registry,
        env=settings_env(settings),
        export_dir=settings.home / "retrain",
        alert=center.event,
        metrics=RetrainMetrics(CollectorRegistry()),
        actor=actor,
    )


def task_for(retrainer: Retrainer, **kw: Any) -> RetrainTask:
    return RetrainTask(retrainer, models=["churn"], interval=kw.pop("interval", 0), **kw)


def script(path: Path, body: str) -> str:
    """A Python script at ``path``; the command that runs it."""
    path.write_text(body)
    return f"{PY} {path}"


def serve_labelled(registry: Registry, start: float, n: int, *, seed: int = 0) -> None:
    """``n`` logged requests of churn v1 from ``start`` (one a second) with real inputs, labelled at
    random against their predicted probabilities (ROC AUC near 0.5)."""
    rng = np.random.default_rng(seed)
    p, labels = rng.random(n), rng.integers(0, 2, n)
    rows = []
    for i in range(n):
        outputs = {"prediction": int(p[i] > 0.5), "probabilities": {"0": 1 - p[i], "1": p[i]}}
        inputs = {"age": 30 + i % 40, "tenure": i % 10, "geography": "France", "gender": "Male"}
        rows.append(
            {
                "request_id": f"r-{start}-{i}",
                "ts": start + i,
                "model": "churn",
                "version": "1",
                "arm": None,
                "routing_key": None,
                "inputs": json.dumps(inputs),
                "outputs": json.dumps(outputs),
                "latency_ms": 5.0,
                "error": None,
            }
        )
    with registry.store.write() as conn:
        conn.execute(predictions.insert(), rows)
    FeedbackStore(registry.store).record(
        [FeedbackItem(r["request_id"], int(labels[i])) for i, r in enumerate(rows)]
    )


def _drifted(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["age"] = out["age"] + 20
    out["balance"] = out["balance"] * 3 + 50_000
    out["tenure"] = 10
    out["geography"] = "Germany"
    out["num_products"] = 4
    return out


def profile_traffic(
    registry: Registry, frame: pd.DataFrame, start: float, minutes: int, *, drift: bool, seed: int = 0
) -> float:
    """Live profiles of churn v1, 100 rows a minute from ``start`` for ``minutes``; the end time."""
    reference = load_reference(registry, "churn", "1")
    features = frame.drop(columns=["churn"])
    clock = [start]
    profiler = LiveProfiler(registry.store, writer="server:1", clock=lambda: clock[0], bucket_seconds=60)
    rng = np.random.default_rng(seed)
    for _ in range(minutes):
        clock[0] += 60
        batch = features.sample(100, random_state=int(rng.integers(1 << 30)))
        profiler.observe("churn", "1", None, reference, profile_columns(_drifted(batch) if drift else batch))
        profiler.flush()
    return clock[0]


@pytest.fixture
def light(tmp_path: Path) -> Iterator[tuple[Registry, Settings]]:
    """A registry whose store is fresh and whose MLflow side is never touched (no model registered):
    enough for runs, actions and schedules."""
    from modelward.store import Store

    home = tmp_path / "home"
    settings = Settings(home=home, actor="tester", tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    store = Store(settings.resolved_database_url)
    registry = Registry(tracking_uri=settings.resolved_tracking_uri, store=store, actor="tester").open()
    yield registry, settings
    registry.close()
