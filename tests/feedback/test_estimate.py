"""Label-free estimates: close to the realized figures for a calibrated model, flagged for a distorted one."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from modelward.feedback import FeedbackItem, FeedbackStore, VersionFacts, live_performance
from modelward.feedback.estimate import expected_auc, expected_metrics, trust_check
from modelward.registry.calibration import compute_calibration
from modelward.store import Store
from modelward.store.tables import predictions


def logistic_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from a logistic model, so that a logistic regression is calibrated on them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    p = 1 / (1 + np.exp(-(x @ np.array([1.5, -1.0, 0.5]) + 0.3)))
    return x, (rng.random(n) < p).astype(int)


def serve(store: Store, probs: np.ndarray, labels: np.ndarray, version: str) -> None:
    """Log one prediction per row (the most probable class, as the server answers) and its label."""
    now = time.time()
    rows = [
        {
            "request_id": f"v{version}-{i}",
            "ts": now,
            "model": "m",
            "version": version,
            "inputs": "{}",
            "outputs": json.dumps({"prediction": int(p[1] > p[0]), "probabilities": {"0": p[0], "1": p[1]}}),
            "latency_ms": 1.0,
        }
        for i, p in enumerate(probs.tolist())
    ]
    with store.write() as conn:
        conn.execute(predictions.insert(), rows)
    FeedbackStore(store).record([FeedbackItem(f"v{version}-{i}", int(y)) for i, y in enumerate(labels)])


def test_the_estimate_of_a_calibrated_model_is_within_three_points_on_5000_rows(store: Store) -> None:
    x_train, y_train = logistic_data(4_000, seed=1)
    x_ref, y_ref = logistic_data(3_000, seed=2)
    x_live, y_live = logistic_data(5_000, seed=3)
    model = LogisticRegression().fit(x_train, y_train)
    calibrated = compute_calibration(y_ref, model.predict_proba(x_ref), [0, 1], source="holdout")
    serve(store, model.predict_proba(x_live), y_live, "1")

    report = live_performance(store, "m", facts={"1": VersionFacts("classification", ("0", "1"), calibrated)})

    group = report.group("1")
    assert group is not None and group.n_labelled == 5_000
    realized, estimated = group.metrics["accuracy"].value, group.estimated["accuracy"]
    assert estimated.value is not None and realized is not None
    assert abs(estimated.value - realized) < 0.03
    assert estimated.trusted, estimated.reason
    auc = group.estimated["roc_auc"]
    assert auc.trusted and abs((auc.value or 0) - (group.metrics["roc_auc"].value or 0)) < 0.03


def test_the_calibration_check_flags_a_distorted_model(store: Store) -> None:
    x_train, y_train = logistic_data(4_000, seed=1)
    x_ref, y_ref = logistic_data(3_000, seed=2)
    x_live, y_live = logistic_data(5_000, seed=3)
    model = LogisticRegression().fit(x_train, y_train)
    model.coef_ = model.coef_ * 4  # overconfident: same ranking, probabilities pushed towards 0 and 1
    distorted = compute_calibration(y_ref, model.predict_proba(x_ref), [0, 1], source="holdout")
    assert distorted.ece > 0.05
    serve(store, model.predict_proba(x_live), y_live, "2")

    group = live_performance(
        store, "m", facts={"2": VersionFacts("classification", ("0", "1"), distorted)}
    ).group("2")

    assert group is not None
    estimate, realized = group.estimated["accuracy"], group.metrics["accuracy"].value
    assert not estimate.trusted and "calibration error" in (estimate.reason or "")
    assert (estimate.value or 0) - (realized or 0) > 0.03  # and indeed it promises more than it delivers


def test_estimates_without_a_calibration_are_untrusted(store: Store) -> None:
    _, y = logistic_data(300, seed=4)
    serve(store, np.tile([0.3, 0.7], (300, 1)), y, "3")
    group = live_performance(store, "m").group("3")
    assert group is not None
    assert all(not e.trusted and "no calibration" in (e.reason or "") for e in group.estimated.values())


def test_expected_auc_is_cbpes_pairwise_expectation() -> None:
    rng = np.random.default_rng(9)
    p = rng.random(120)
    # every (positive i, negative j) pair weighs p_i (1 - p_j); ties (i = j, equal scores) count half
    num = den = 0.0
    for i in range(len(p)):
        for j in range(len(p)):
            w = p[i] * (1 - p[j])
            den += w
            num += w * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
    assert expected_auc(p) == pytest.approx(num / den, abs=1e-12)
    assert expected_auc(np.zeros(5)) is None


def test_multiclass_expected_accuracy_is_the_mean_confidence_of_the_answer() -> None:
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.1, 0.5, 0.4]])
    trust = trust_check(None, ("a", "b", "c"))
    got = expected_metrics(probs, np.array([0, 2, np.nan]), trust=trust)
    assert got["accuracy"].value == pytest.approx((0.6 + 0.6 + 0.5) / 3)
    assert got["roc_auc"].value is not None and 0 < got["roc_auc"].value < 1
    assert not got["accuracy"].trusted


def test_a_small_reference_is_inconclusive() -> None:
    x, y = logistic_data(150, seed=6)
    model = LogisticRegression().fit(x, y)
    small = compute_calibration(y, model.predict_proba(x), [0, 1])
    check = trust_check(small, ("0", "1"))
    assert not check.top_label and "fewer than 200" in check.reason
