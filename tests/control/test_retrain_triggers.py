"""Each retraining trigger fires on a registered churn model, driven by the clock argument: dataset
drift held in N consecutive windows, live performance under its floor, the label-free estimate under
its floor, and a cron schedule; a fired trigger is held by the cool-down (one incident, one run)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from modelward.config import Settings
from modelward.control.retrain_triggers import judge_estimated
from modelward.governance.policy import parse_policy
from modelward.registry import Registry
from tests.control.retrain_fixtures import (
    churn,
    churn_home,
    profile_traffic,
    retrainer_for,
    serve_labelled,
    set_policy,
    task_for,
)

__all__ = ["churn", "churn_home"]  # fixtures: imported so that pytest finds them

T0 = 1_900_000_000.0
NOOP = "command: python -c pass"


@pytest.fixture
def settings_(churn_home: tuple[Registry, Settings]) -> Settings:
    return churn_home[1]


def test_drift_fires_only_once_it_held_for_n_consecutive_windows(
    churn: Registry, settings_: Settings, churn_frame: pd.DataFrame
) -> None:
    set_policy(churn, f"retrain: {{drift: {{windows: 3, window: 5m}}, cooldown: 1h, {NOOP}}}")
    task = task_for(retrainer_for(churn, settings_))
    now = profile_traffic(churn, churn_frame, T0, 15, drift=False)
    assert task.run(now)["started"] == []
    now = profile_traffic(churn, churn_frame, now, 5, drift=True, seed=1)
    assert task.run(now)["started"] == []  # one window of drift is not three
    now = profile_traffic(churn, churn_frame, now, 11, drift=True, seed=2)
    out = task.run(now)
    (started,) = out["started"]
    assert started["trigger"] == "drift" and out["problems"] == {}
    figures = started["figures"]
    assert figures["version"] == "1" and figures["windows"] == 3 and len(figures["share_drifted"]) == 3
    assert "geography" in figures["drifted_features"]
    assert task.join(30)
    now = profile_traffic(churn, churn_frame, now, 2, drift=True, seed=3)
    held = task.run(now)
    assert held["started"] == [] and held["held"] == {"churn": "drift"}  # the same incident
    (run,) = task.retrainer.runs.history("churn")
    assert run.status == "succeeded" and run.trigger == "drift"


def test_live_performance_under_its_floor_fires_with_enough_labels(
    churn: Registry, settings_: Settings
) -> None:
    serve_labelled(churn, T0, 200)  # random labels: ROC AUC near 0.5
    set_policy(
        churn,
        f"retrain: {{performance: {{metric: roc_auc, min: 0.8, min_labels: 500, window: 1h}}, {NOOP}}}",
    )
    task = task_for(retrainer_for(churn, settings_), background=False)
    assert task.run(T0 + 300)["started"] == []  # 200 labels are fewer than asked
    set_policy(
        churn,
        f"retrain: {{performance: {{metric: roc_auc, min: 0.8, min_labels: 100, window: 1h}}, {NOOP}}}",
    )
    (started,) = task.run(T0 + 301)["started"]
    assert started["trigger"] == "performance"
    figures = started["figures"]
    assert figures["metric"] == "roc_auc" and figures["value"] < 0.8 and figures["labels"] == 200
    assert "below its floor 0.8" in started["reason"]


def test_estimated_performance_under_its_floor_fires_without_labels(
    churn: Registry, settings_: Settings
) -> None:
    serve_labelled(churn, T0, 300)
    policy = parse_policy(f"retrain: {{estimated: {{metric: accuracy, min: 0.99, window: 1h}}, {NOOP}}}")
    assert policy.retrain is not None
    firing = judge_estimated(churn, "churn", policy.retrain, T0 + 400)
    assert firing is not None and firing.trigger == "estimated"
    assert firing.figures["estimate"] < 0.99 and firing.figures["predictions"] == 300
    lenient = parse_policy(f"retrain: {{estimated: {{metric: accuracy, min: 0.05, window: 1h}}, {NOOP}}}")
    assert lenient.retrain is not None
    assert judge_estimated(churn, "churn", lenient.retrain, T0 + 400) is None


def test_a_schedule_fires_once_per_due_time(churn: Registry, settings_: Settings, tmp_path: Path) -> None:
    set_at = set_policy(churn, f"retrain: {{schedule: '0 * * * *', cooldown: 1s, {NOOP}}}")
    task = task_for(retrainer_for(churn, settings_), background=False)
    hour = (int(set_at) // 3600 + 2) * 3600.0  # a due time well after the policy was set
    assert task.run(set_at + 1)["started"] == []  # nothing due since the policy was set
    (first,) = task.run(hour + 600)["started"]
    assert first["trigger"] == "schedule" and first["figures"]["due"] == hour
    assert task.run(hour + 700)["started"] == []  # still the same due time
    (second,) = task.run(hour + 3600 + 5)["started"]
    assert second["figures"]["due"] == hour + 3600
    assert [r.trigger for r in task.retrainer.runs.history("churn")] == ["schedule", "schedule"]
