"""Per-arm window statistics, shadow agreement and live performance, on rows inserted in the store."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from modelward.monitoring.arm_performance import arm_performance
from modelward.monitoring.window_stats import (
    shadow_agreement,
    summarize_arm,
    window_stats,
)
from modelward.store import Store
from modelward.store.tables import feedback, predictions


def row(
    request_id: str,
    ts: float,
    *,
    version: str = "1",
    arm: str | None = "primary",
    latency: float = 2.0,
    prediction: Any = 0,
    p1: float | None = 0.3,
    error: str | None = None,
    model: str = "churn",
) -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    if error is None:
        outputs = {"prediction": prediction}
        if p1 is not None:
            outputs["probabilities"] = {"0": 1 - p1, "1": p1}
    return {
        "request_id": request_id,
        "ts": ts,
        "model": model,
        "version": version,
        "arm": arm,
        "routing_key": None,
        "inputs": "{}",
        "outputs": json.dumps(outputs),
        "latency_ms": latency,
        "error": error,
    }


def insert(store: Store, rows: list[dict[str, Any]]) -> None:
    with store.write() as conn:
        conn.execute(predictions.insert(), rows)


def test_window_stats_count_requests_errors_latency_and_predictions_per_version_and_arm(store: Store) -> None:
    t0 = 1_000_000.0
    rows = []
    for i in range(100):  # baseline v1: 1 ms .. 100 ms, 2 failures, a quarter predicted churn
        failed = i in (10, 20)
        rows.append(
            row(
                f"b{i}",
                t0 + i,
                latency=float(i + 1),
                prediction=int(i % 4 == 0),
                p1=0.9 if i % 4 == 0 else 0.1,
                error="ValueError: boom" if failed else None,
                arm="baseline",
            )
        )
    for i in range(40):  # canary v2: half failing, all predicted churn
        rows.append(
            row(
                f"c{i}",
                t0 + i,
                version="2",
                arm="canary",
                latency=5.0,
                prediction=1,
                p1=0.8,
                error="RuntimeError" if i % 2 else None,
            )
        )
    rows.append(row("old", t0 - 10, arm="baseline"))  # before the window
    rows.append(row("other", t0 + 1, model="other"))  # another model
    insert(store, rows)

    found = {(w.version, w.arm): w for w in window_stats(store, "churn", t0, t0 + 1000)}

    assert set(found) == {("1", "baseline"), ("2", "canary")}
    base, can = found[("1", "baseline")], found[("2", "canary")]
    assert (base.requests, base.errors, base.error_rate) == (100, 2, 0.02)
    assert base.latency_p50 == pytest.approx(50.5)
    assert base.latency_p95 == pytest.approx(95.05)
    assert base.latency_p99 == pytest.approx(99.01)
    assert base.task == "classification"
    assert dict(base.classes) == {"0": 74, "1": 24}  # the two failures predicted nothing
    assert base.score_counts is not None and sum(base.score_counts) == 98
    assert base.score_counts[2] == 74 and base.score_counts[18] == 24  # 0.1 and 0.9 on 0.05 edges
    assert (can.requests, can.errors, can.latency_p99) == (40, 20, 5.0)
    assert dict(can.classes) == {"1": 20}
    assert can.to_dict()["latency_ms"]["p50"] == 5.0


def test_window_stats_bins_regression_values_on_edges_shared_by_every_arm(store: Store) -> None:
    t0 = 2_000_000.0
    rows = [row(f"a{i}", t0, arm="a", prediction=float(i), p1=None) for i in range(100)]
    rows += [row(f"b{i}", t0, arm="b", version="2", prediction=float(50 + i), p1=None) for i in range(100)]
    insert(store, rows)

    a, b = window_stats(store, "churn", t0, t0 + 1)

    assert a.task == b.task == "regression"
    assert a.value_edges == b.value_edges and a.value_edges is not None
    assert a.value_edges[0] == 0.0 and a.value_edges[-1] == 149.0
    assert a.value_counts is not None and b.value_counts is not None
    assert sum(a.value_counts) == sum(b.value_counts) == 100
    # a's values fill the lower bins, b's the upper ones.
    assert sum(a.value_counts[:3]) > 50 and sum(b.value_counts[-3:]) > 50


def test_shadow_agreement_joins_shadow_rows_to_their_primary_by_request_id(store: Store) -> None:
    t0 = 3_000_000.0
    rows = []
    for i in range(50):
        rows.append(
            row(f"r{i}", t0 + i, arm="champion", latency=2.0, prediction=i % 2, p1=0.6 if i % 2 else 0.4)
        )
        shadow_label = (i % 2) if i < 40 else 1 - (i % 2)  # the last 10 disagree
        rows.append(
            row(
                f"r{i}",
                t0 + i + 0.01,
                version="3",
                arm="shadow",
                latency=8.0,
                prediction=shadow_label,
                p1=0.7 if shadow_label else 0.3,
                error="boom" if i == 49 else None,
            )
        )
    rows.append(row("lonely", t0 + 1, version="3", arm="shadow"))  # its primary never logged
    insert(store, rows)

    agreement = shadow_agreement(store, "churn", t0, t0 + 100)

    assert agreement.shadow_rows == 51
    assert agreement.unmatched == 1
    assert agreement.shadow_errors == 1
    assert agreement.compared == 49  # the failed shadow request is not compared
    assert agreement.agreement == pytest.approx(40 / 49)
    assert agreement.mean_score_diff == pytest.approx((40 * 0.1 + 9 * 0.3) / 49)
    assert agreement.shadow_versions == ("3",) and agreement.primary_versions == ("1",)
    assert agreement.shadow_latency_p50 == 8.0 and agreement.primary_latency_p95 == 2.0
    assert agreement.to_dict()["shadow_error_rate"] == pytest.approx(1 / 51)

    stats = {w.arm: w for w in window_stats(store, "churn", t0, t0 + 100, include_shadow=False)}
    assert set(stats) == {"champion"}


def test_shadow_agreement_of_regressors_is_the_mean_absolute_difference(store: Store) -> None:
    t0 = 4_000_000.0
    rows = []
    for i in range(20):
        rows.append(row(f"q{i}", t0, arm="primary", prediction=float(i), p1=None))
        rows.append(row(f"q{i}", t0, arm="shadow", version="2", prediction=float(i) + 0.5, p1=None))
    insert(store, rows)

    agreement = shadow_agreement(store, "churn", t0, t0 + 1)

    assert agreement.compared == 20
    assert agreement.agreement is None
    assert agreement.mean_abs_diff == pytest.approx(0.5)


def test_arm_performance_joins_feedback_labels_per_arm(store: Store) -> None:
    t0 = 5_000_000.0
    rows = [row(f"f{i}", t0, arm="baseline", prediction=1) for i in range(10)]
    rows += [row(f"g{i}", t0, arm="canary", version="2", prediction=0) for i in range(10)]
    insert(store, rows)
    now = time.time()
    labels = [
        {
            "request_id": f"f{i}",
            "label": "1" if i < 8 else "0",
            "value": None,
            "model": "churn",
            "ts": now,
            "updated_at": now,
            "source": "test",
        }
        for i in range(10)
    ]
    labels += [
        {
            "request_id": f"g{i}",
            "label": "1",
            "value": None,
            "model": "churn",
            "ts": now,
            "updated_at": now,
            "source": "test",
        }
        for i in range(5)
    ]
    with store.write() as conn:
        conn.execute(feedback.insert(), labels)

    perf = arm_performance(store, "churn", t0, t0 + 1, metric="accuracy")

    assert perf["baseline"].labels == 10 and perf["baseline"].value == pytest.approx(0.8)
    assert perf["canary"].labels == 5 and perf["canary"].value == 0.0
    assert perf["baseline"].stderr == pytest.approx((0.8 * 0.2 / 10) ** 0.5)


def test_window_stats_count_every_row_of_a_large_window_per_arm(tmp_path: Any) -> None:
    store = Store(f"sqlite:///{tmp_path / 'big.db'}").open()
    store.migrate()
    t0 = 6_000_000.0
    rows = [
        row(
            f"x{i}",
            t0 + i * 0.01,
            arm="baseline" if i % 10 else "canary",
            latency=1.0 + i % 7,
            prediction=i % 2,
            p1=(i % 100) / 100,
        )
        for i in range(30_000)
    ]
    for start in range(0, len(rows), 10_000):
        insert(store, rows[start : start + 10_000])
    # Its cost on a day of traffic is measured by the dashboard and serving benchmarks, not asserted.
    found = window_stats(store, "churn", t0, t0 + 2_000)
    store.close()
    assert {w.arm: w.requests for w in found} == {"baseline": 27_000, "canary": 3_000}


def test_summarize_arm_refuses_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="2 failure flags for 1 latencies"):
        summarize_arm("1", "a", latency_ms=[1.0], failed=[False, True])


def test_a_row_cap_keeps_the_newest_rows_of_each_arm(store: Store) -> None:
    # baseline: 30 old failures then 50 newer successes; canary: 10 rows, all failed
    rows = [row(f"b-old-{i}", 100.0 + i, arm="baseline", error="boom") for i in range(30)]
    rows += [row(f"b-new-{i}", 200.0 + i, arm="baseline") for i in range(50)]
    rows += [row(f"c-{i}", 150.0 + i, version="2", arm="canary", error="boom") for i in range(10)]
    insert(store, rows)
    whole = {w.arm: w for w in window_stats(store, "churn", 0.0, 1e9)}
    capped = {w.arm: w for w in window_stats(store, "churn", 0.0, 1e9, max_rows_per_arm=40)}
    assert (whole["baseline"].requests, whole["baseline"].errors) == (80, 30)
    assert (capped["baseline"].requests, capped["baseline"].errors) == (40, 0)  # the newest 40
    assert (capped["canary"].requests, capped["canary"].errors) == (10, 10)  # fewer than the cap: all
