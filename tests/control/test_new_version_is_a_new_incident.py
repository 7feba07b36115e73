"""A new version under an active alert is a new incident: the monitor, on a registry with two
versions of churn, notifies a real webhook receiver when a promoted version is as bad as the one it
replaced, and closes the old version's alert as superseded once the rule no longer judges it."""

from __future__ import annotations

from modelward.monitoring.alert_rules import (
    AlertRule,
    ErrorRateRule,
    EstimatedDropRule,
    LatencyRule,
    PerformanceRule,
)
from modelward.registry import Registry
from tests.control.monitor_fixtures import hook, monitor_for, posts, serve_rows, two_versions, versions
from tests.control.webhook_receiver import Receiver

__all__ = ["hook", "two_versions", "versions"]  # fixtures: imported so that pytest finds them

T0 = 1_900_000_000.0


def test_a_promoted_version_below_the_floor_is_a_new_incident(versions: Registry, hook: Receiver) -> None:
    rules: list[AlertRule] = [
        PerformanceRule(name="auc-floor", metric="roc_auc", op="<", threshold=0.8, min_labels=100),
        EstimatedDropRule(reference=0.99, max_drop=0.05, min_rows=100, require_trusted=False),
    ]
    registry, receiver = versions, hook
    task, center = monitor_for(registry, receiver, rules)
    serve_rows(registry, "1", T0, 300)
    task.run(T0 + 400)
    fired = posts(receiver)
    assert sorted((k, r) for k, r, _ in fired) == [("fire", "auc-floor"), ("fire", "estimated_drop")]
    assert all(m.startswith("churn:1: ") for _, _, m in fired)

    registry.promote("churn", 2)  # as bad as version 1
    serve_rows(registry, "2", T0 + 500, 300, seed=1)
    result = task.run(T0 + 1000)
    assert result is not None and result.checks[0].version == "2"
    later = posts(receiver)[len(fired) :]
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


def test_error_rate_and_latency_are_judged_per_version(versions: Registry, hook: Receiver) -> None:
    rules: list[AlertRule] = [ErrorRateRule(max_rate=0.05, min_requests=100), LatencyRule(p95_ms=500)]
    registry, receiver = versions, hook
    task, center = monitor_for(registry, receiver, rules)
    serve_rows(registry, "1", T0, 300, errors=60)
    task.run(T0 + 400)
    first = posts(receiver)
    assert sorted((k, r) for k, r, _ in first) == [("fire", "error_rate"), ("fire", "latency")]
    assert all(m.startswith("churn:1: ") for _, _, m in first)

    registry.promote("churn", 2)
    serve_rows(registry, "2", T0 + 500, 300, errors=30, seed=1)
    task.run(T0 + 1000)  # version 1's requests are still in the window: both versions fire
    second = posts(receiver)[len(first) :]
    assert sorted((k, r) for k, r, _ in second) == [("fire", "error_rate"), ("fire", "latency")]
    assert all(m.startswith("churn:2: ") for _, _, m in second)
    assert any("error rate 10.0% (30 of 300" in m for _, _, m in second)  # version 2's own requests
    assert len(center.active("churn")) == 4

    task.run(T0 + 300 + 3600 + 60)  # version 1's requests have left the window
    third = posts(receiver)[len(first) + len(second) :]
    assert sorted((k, r) for k, r, _ in third) == [("supersede", "error_rate"), ("supersede", "latency")]
    assert all(m.startswith("superseded") and "churn:1: " in m for _, _, m in third)
    assert all(a.message.startswith("churn:2: ") for a in center.active("churn"))
    assert len(center.active("churn")) == 2
