"""Performance gauges show the last report's figures and drop the ones it no longer has."""

from __future__ import annotations

import json
import time

from prometheus_client import CollectorRegistry, generate_latest

from modelward.feedback import FeedbackItem, FeedbackStore, live_performance
from modelward.monitoring.performance_gauges import PerformanceGauges
from modelward.store import Store
from modelward.store.tables import predictions


def log(store: Store, rid: str, p: float, version: str = "1") -> None:
    outputs = {"prediction": int(p > 0.5), "probabilities": {"0": 1 - p, "1": p}}
    with store.write() as conn:
        conn.execute(
            predictions.insert().values(
                request_id=rid,
                ts=time.time(),
                model="churn",
                version=version,
                inputs="{}",
                outputs=json.dumps(outputs),
                latency_ms=1.0,
            )
        )


def test_gauges_follow_the_report(store: Store) -> None:
    for i, p in enumerate([0.9, 0.2, 0.7, 0.4]):
        log(store, f"r{i}", p)
    FeedbackStore(store).record([FeedbackItem("r0", 1), FeedbackItem("r1", 0), FeedbackItem("r2", 0)])
    registry = CollectorRegistry()
    gauges = PerformanceGauges(registry)

    gauges.update(live_performance(store, "churn"))

    get = registry.get_sample_value
    labels = {"model": "churn", "version": "1", "arm": "primary"}
    assert get("modelward_performance", {**labels, "metric": "accuracy"}) == 2 / 3
    assert (
        get("modelward_performance", {**labels, "version": "all", "arm": "all", "metric": "accuracy"})
        == 2 / 3
    )
    assert get("modelward_label_coverage", labels) == 0.75
    assert get("modelward_performance_rows", {**labels, "kind": "labelled"}) == 3
    assert get("modelward_estimated_performance", {**labels, "metric": "accuracy"}) is not None
    assert (
        get("modelward_estimated_performance_trusted", {**labels, "metric": "accuracy"}) == 0
    )  # no calibration

    # a window without version 1's labels: its realized metrics disappear instead of going stale
    gauges.update(live_performance(store, "churn", since=time.time() + 3600))
    assert get("modelward_performance", {**labels, "metric": "accuracy"}) is None
    assert get("modelward_label_coverage", labels) is None
    assert b"modelward_performance{" not in generate_latest(registry)
