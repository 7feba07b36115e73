"""Rollback on live performance on a real registry and store: the champion's live AUC under its policy's
floor fires the alert; with ``on_breach: rollback`` a breach that lasts ``sustain`` moves the alias back
once; without a previous champion nothing moves and the alert says so; the default only alerts."""

from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd
import pytest

from modelward.control.breach import RULE, BreachTask
from modelward.feedback.ingest import FeedbackStore
from modelward.governance import VersionReports
from modelward.monitoring.alerts import AlertCenter
from modelward.monitoring.notifiers import Delivery, Notification
from modelward.registry import Registry, register_model
from modelward.store.tables import predictions


class Recorder:
    """A notifier that keeps what it is sent."""

    name = "recorder"

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> Delivery:
        self.sent.append(notification)
        return Delivery(self.name, True, "kept")


@pytest.fixture
def two_champions(registry: Registry, churn_models: dict, churn_frame: pd.DataFrame) -> Registry:
    """churn:1 then churn:2 promoted: 2 is the champion, 1 the previous one."""
    for kind in ("logreg", "forest"):
        register_model(registry, churn_models[kind], "churn", train_data=churn_frame, target="churn")
    registry.promote("churn", 1, reason="first")
    registry.promote("churn", 2, reason="second")
    return registry


def serve_badly(registry: Registry, version: str, n: int = 300) -> float:
    """``n`` logged predictions of ``version`` from now on, labelled against them (AUC 0); returns the
    time after the last one."""
    start = time.time()
    rows: list[dict[str, Any]] = []
    labels = []
    for i in range(n):
        p1 = (i + 0.5) / n
        rid = f"bad-{version}-{i}"
        outputs = {"prediction": int(p1 > 0.5), "probabilities": {"0": 1 - p1, "1": p1}}
        rows.append(
            {
                "request_id": rid,
                "ts": start + 0.001 * i,
                "model": "churn",
                "version": version,
                "arm": "main",
                "routing_key": None,
                "inputs": "{}",
                "outputs": json.dumps(outputs),
                "latency_ms": 1.0,
                "error": None,
            }
        )
        labels.append({"request_id": rid, "label": int(p1 < 0.5)})
    with registry.store.write() as conn:
        conn.execute(predictions.insert(), rows)
    FeedbackStore(registry.store).record(labels)
    return start + 0.001 * n + 1


def _task(registry: Registry, policy: str) -> tuple[BreachTask, Recorder]:
    VersionReports(registry.store).set_policy("churn", policy, actor="tester")
    recorder = Recorder()
    center = AlertCenter(registry.store, [recorder])
    return BreachTask(registry, center, interval=0, actor="controller:test"), recorder


def test_by_default_a_breach_only_fires_the_alert(two_champions: Registry) -> None:
    registry = two_champions
    task, recorder = _task(registry, "live: {metric: auc, min: 0.8, sustain: 0, min_labels: 100}\n")
    # A policy kept for a model that is not registered is passed over, not an error every minute.
    VersionReports(registry.store).set_policy("ghost", "live: {min: 0.8}\n", actor="tester")
    now = serve_badly(registry, "2")
    (outcome,) = task.run(now)
    assert outcome["breach"] is True and outcome["value"] < 0.8
    assert "action" not in outcome
    (fired,) = recorder.sent
    assert (fired.kind, fired.rule, fired.version, fired.severity) == ("fire", RULE, "2", "critical")
    assert "roc_auc" in fired.message
    task.run(now + 3600)
    assert registry.resolve("churn@champion").version == "2"
    assert registry.audit.events(subject="churn", action="live_rollback") == []
    assert len(recorder.sent) == 1  # still firing: the cool-down keeps it quiet


def test_a_sustained_breach_rolls_the_champion_back_once(two_champions: Registry) -> None:
    registry = two_champions
    policy = "live: {metric: auc, min: 0.8, window: 1h, sustain: 10m, min_labels: 100, on_breach: rollback}\n"
    task, recorder = _task(registry, policy)
    now = serve_badly(registry, "2")
    (first,) = task.run(now)
    assert (first["breach"], first["action"]) == (True, "wait")
    assert registry.resolve("churn@champion").version == "2"

    (acted,) = task.run(now + 601)
    assert (acted["action"], acted["to"]) == ("rollback", "1")
    assert registry.resolve("churn@champion").version == "1"
    (event,) = registry.audit.events(subject="churn", action="live_rollback")
    assert (event.subject, event.payload["from"], event.payload["to"]) == ("churn:2", "2", "1")
    assert event.payload["metric"] == "auc" and event.payload["floor"] == 0.8
    (moved,) = registry.audit.events(subject="churn", action="rollback")
    assert "live performance" in moved.payload["reason"]
    assert [(n.kind, n.rule) for n in recorder.sent] == [("fire", RULE), ("event", "live_rollback")]

    # Version 1 is judged from the moment it took the alias back: no labels yet, no second move.
    (after,) = task.run(now + 700)
    assert (after["version"], after["breach"]) == ("1", False) and "action" not in after
    assert registry.resolve("churn@champion").version == "1"
    assert len(registry.audit.events(subject="churn", action="rollback")) == 1
    old = task.center.get(RULE, "churn", "performance:roc_auc", "2")
    assert old is not None and old.state == "superseded"


def test_without_a_previous_champion_nothing_moves_and_the_alert_says_why(
    registry: Registry, churn_models: dict, churn_frame: pd.DataFrame
) -> None:
    register_model(registry, churn_models["logreg"], "churn", train_data=churn_frame, target="churn")
    registry.promote("churn", 1, reason="the only one")
    policy = "live: {metric: auc, min: 0.8, sustain: 0, min_labels: 100, on_breach: rollback}\n"
    task, recorder = _task(registry, policy)
    now = serve_badly(registry, "1")
    (outcome,) = task.run(now)
    assert outcome["action"] == "impossible"
    assert registry.resolve("churn@champion").version == "1"
    (said,) = [n for n in recorder.sent if n.rule == "live_rollback_impossible"]
    assert "no earlier one" in said.message
    task.run(now + 5)
    assert len(registry.audit.events(subject="churn", action="live_rollback_impossible")) == 1
