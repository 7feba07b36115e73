"""Live performance matches scikit-learn on the joined rows, per version and arm, with the right rows."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from sklearn import metrics as skm

from modelward.feedback import FeedbackItem, FeedbackStore, VersionFacts, live_performance
from modelward.feedback.performance import parse_window
from modelward.store import Store
from modelward.store.tables import predictions


def insert(store: Store, rows: list[dict]) -> None:
    base = {
        "routing_key": None,
        "inputs": "{}",
        "latency_ms": 1.0,
        "error": None,
        "arm": None,
        "model": "churn",
    }
    with store.write() as conn:
        conn.execute(predictions.insert(), [{**base, **r} for r in rows])


def classifier_row(
    rid: str, p: float, *, version: str = "1", arm: str | None = None, ts: float | None = None
) -> dict:
    outputs = {"prediction": int(p > 0.5), "probabilities": {"0": 1 - p, "1": p}}
    return {
        "request_id": rid,
        "ts": ts or time.time(),
        "version": version,
        "arm": arm,
        "outputs": json.dumps(outputs),
    }


def test_binary_metrics_match_scikit_learn_on_the_joined_rows(store: Store) -> None:
    rng = np.random.default_rng(3)
    n = 400
    p = rng.random(n)
    y = (rng.random(n) < p).astype(int)
    now = time.time()
    rows = [classifier_row(f"r{i}", float(p[i]), arm="primary" if i % 2 else None) for i in range(n)]
    rows.append(classifier_row("shadowed", 0.9, arm="shadow"))  # mirrored: never counted
    rows.append({**classifier_row("failed", 0.9), "outputs": "{}", "error": "boom"})
    rows.append(classifier_row("old", 0.9, ts=now - 10 * 86_400))  # outside the window
    rows.append(classifier_row("r0", 0.99, ts=now - 10 * 86_400))  # an older row of a reused id, superseded
    insert(store, rows[-1:])  # written first, so the windowed r0 is the later row
    insert(store, rows[:-1])
    labelled = list(range(0, n, 2)) + list(range(1, 100, 2))  # coverage 300 / 400
    items = [FeedbackItem(f"r{i}", int(y[i])) for i in labelled]
    items += [FeedbackItem("shadowed", 0), FeedbackItem("failed", 0), FeedbackItem("old", 0)]
    FeedbackStore(store).record(items)

    report = live_performance(store, "churn", since=now - 86_400)

    assert (report.n_predictions, report.n_labelled, report.errors) == (n, len(labelled), 1)
    assert report.coverage == pytest.approx(len(labelled) / n)
    truth = y[labelled]
    scores = p[labelled]
    pred = (scores > 0.5).astype(int)
    expected = {
        "accuracy": skm.accuracy_score(truth, pred),
        "precision": skm.precision_score(truth, pred),
        "recall": skm.recall_score(truth, pred),
        "f1": skm.f1_score(truth, pred),
        "roc_auc": skm.roc_auc_score(truth, scores),
        "log_loss": skm.log_loss(truth, np.c_[1 - scores, scores]),
        "brier": skm.brier_score_loss(truth, scores),
    }
    got = {k: m.value for k, m in report.overall.metrics.items()}
    assert got == pytest.approx(expected, abs=1e-9)
    # both arms are "primary" (NULL means primary), so there is one group, equal to the overall
    assert [(g.version, g.arm) for g in report.groups] == [("1", "primary")]
    assert {k: m.value for k, m in report.groups[0].metrics.items()} == pytest.approx(expected, abs=1e-9)
    json.dumps(report.to_dict(), allow_nan=False)


def test_groups_per_version_and_arm_and_filters(store: Store) -> None:
    insert(store, [classifier_row("a1", 0.9, version="1"), classifier_row("a2", 0.2, version="1")])
    insert(
        store,
        [
            classifier_row("b1", 0.7, version="2", arm="canary"),
            classifier_row("b2", 0.6, version="2", arm="canary"),
        ],
    )
    FeedbackStore(store).record(
        [FeedbackItem(r, lab) for r, lab in [("a1", 1), ("a2", 1), ("b1", 1), ("b2", 0)]]
    )
    report = live_performance(store, "churn")
    assert [(g.version, g.arm, g.n_predictions) for g in report.groups] == [
        ("1", "primary", 2),
        ("2", "canary", 2),
    ]
    assert report.group("1").metrics["accuracy"].value == 0.5
    assert report.group("2", "canary").metrics["accuracy"].value == 0.5
    assert report.overall.n_predictions == 4
    only = live_performance(store, "churn", arm="canary")
    assert [g.version for g in only.groups] == ["2"] and only.n_predictions == 2
    assert live_performance(store, "churn", version="1").n_predictions == 2


def test_metrics_that_cannot_be_computed_are_none_with_a_reason(store: Store) -> None:
    insert(store, [classifier_row("x1", 0.9), classifier_row("x2", 0.8), classifier_row("x3", 0.4)])
    FeedbackStore(store).record([FeedbackItem("x1", 1), FeedbackItem("x2", 1)])
    metrics = live_performance(store, "churn").overall.metrics
    assert metrics["roc_auc"].value is None and "one class" in (metrics["roc_auc"].reason or "")
    assert metrics["accuracy"].value == 1.0
    empty = live_performance(store, "nothing-logged")
    assert empty.n_predictions == 0 and empty.coverage is None
    assert all(m.value is None and m.reason for m in empty.overall.metrics.values())
    unlabelled = live_performance(store, "churn", version="1", since=time.time() + 60)
    assert unlabelled.n_predictions == 0


def test_labels_match_classes_by_text(store: Store) -> None:
    insert(store, [classifier_row("t1", 0.9), classifier_row("t2", 0.1), classifier_row("t3", 0.9)])
    FeedbackStore(store).record(
        [FeedbackItem("t1", "1"), FeedbackItem("t2", 0.0), FeedbackItem("t3", "maybe")]
    )
    group = live_performance(store, "churn").overall
    assert (group.n_labelled, group.n_used) == (3, 2)
    assert group.metrics["accuracy"].value == 1.0


def test_multiclass_metrics_are_macro_averages(store: Store) -> None:
    rng = np.random.default_rng(5)
    classes = ["bronze", "gold", "silver"]
    n = 300
    probs = rng.dirichlet([1, 1, 1], n)
    y = np.array([rng.choice(3, p=row) for row in probs])
    rows = []
    for i in range(n):
        outputs = {
            "prediction": classes[int(np.argmax(probs[i]))],
            "probabilities": dict(zip(classes, probs[i].tolist(), strict=True)),
        }
        rows.append(
            {"request_id": f"m{i}", "ts": time.time(), "version": "4", "outputs": json.dumps(outputs)}
        )
    insert(store, rows)
    FeedbackStore(store).record([FeedbackItem(f"m{i}", classes[y[i]]) for i in range(n)])
    facts = {"4": VersionFacts("classification", tuple(classes))}
    got = live_performance(store, "churn", facts=facts).overall.metrics
    truth = np.array(classes)[y]
    pred = np.array(classes)[np.argmax(probs, axis=1)]
    assert got["accuracy"].value == pytest.approx(skm.accuracy_score(truth, pred), abs=1e-12)
    assert got["f1"].value == pytest.approx(skm.f1_score(truth, pred, average="macro"), abs=1e-9)
    assert got["precision"].value == pytest.approx(
        skm.precision_score(truth, pred, average="macro"), abs=1e-9
    )
    auc = skm.roc_auc_score(truth, probs, multi_class="ovr", average="macro", labels=classes)
    assert got["roc_auc"].value == pytest.approx(auc, abs=1e-9)
    assert got["brier"].value == pytest.approx(np.mean(np.sum((probs - np.eye(3)[y]) ** 2, axis=1)), abs=1e-9)


def test_regression_metrics(store: Store) -> None:
    rng = np.random.default_rng(8)
    truth = rng.normal(10, 3, 200)
    pred = truth + rng.normal(0, 1, 200)
    rows = [
        {
            "request_id": f"g{i}",
            "ts": time.time(),
            "version": "1",
            "model": "price",
            "outputs": json.dumps({"prediction": pred[i]}),
        }
        for i in range(200)
    ]
    insert(store, rows)
    FeedbackStore(store).record([{"request_id": f"g{i}", "value": float(truth[i])} for i in range(200)])
    got = live_performance(store, "price").overall
    assert got.task == "regression" and got.estimated == {}
    assert got.metrics["mae"].value == pytest.approx(skm.mean_absolute_error(truth, pred), abs=1e-9)
    assert got.metrics["rmse"].value == pytest.approx(
        math.sqrt(skm.mean_squared_error(truth, pred)), abs=1e-9
    )
    assert got.metrics["r2"].value == pytest.approx(skm.r2_score(truth, pred), abs=1e-9)


def test_parse_window() -> None:
    assert parse_window("1d") == 86_400 and parse_window("30m") == 1_800 and parse_window("2w") == 1_209_600
    with pytest.raises(ValueError, match="window"):
        parse_window("yesterday")
