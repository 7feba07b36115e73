"""audit_fairness on plain arrays: Fairlearn's figures, small groups, banding, no labels, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    true_positive_rate,
)
from sklearn.metrics import roc_auc_score

from modelward.errors import ConfigError
from modelward.governance.fairness import audit_fairness


def biased(n: int = 2_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    gender = rng.choice(["Female", "Male"], size=n, p=[0.45, 0.55])
    age = np.clip(np.rint(18 + rng.gamma(4.0, 5.25, size=n)), 18, 92)
    y = (rng.random(n) < np.where(gender == "Female", 0.35, 0.15)).astype(int)
    pred = (rng.random(n) < np.where(gender == "Female", 0.5, 0.1)).astype(int)
    score = np.clip(pred * 0.6 + rng.random(n) * 0.4, 0, 1)
    return y, pred, score, pd.DataFrame({"gender": gender, "age": age})


def test_parity_and_equalized_odds_equal_fairlearns_on_the_same_data() -> None:
    y, pred, score, sensitive = biased()
    report = audit_fairness(y, pred, sensitive[["gender"]], y_score=score)
    gender = report.feature("gender")
    g = sensitive["gender"]
    assert gender.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(y, pred, sensitive_features=g), abs=1e-9
    )
    assert gender.demographic_parity_ratio == pytest.approx(
        demographic_parity_ratio(y, pred, sensitive_features=g), abs=1e-9
    )
    assert gender.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(y, pred, sensitive_features=g), abs=1e-9
    )
    tpr = MetricFrame(metrics=true_positive_rate, y_true=y, y_pred=pred, sensitive_features=g).by_group
    for group in gender.groups:
        assert group.tpr == pytest.approx(tpr[group.group], abs=1e-12)
        assert group.count == int((g == group.group).sum())
        inside = (g == group.group).to_numpy()
        assert group.auc == pytest.approx(roc_auc_score(y[inside], score[inside]), abs=1e-12)
    assert gender.demographic_parity_difference > 0.3


def test_the_four_fifths_rule_names_the_worst_and_best_groups() -> None:
    y, pred, _, sensitive = biased()
    gender = audit_fairness(y, pred, sensitive[["gender"]]).feature("gender")
    rule = gender.four_fifths
    assert rule.passed is False
    assert (rule.worst_group, rule.best_group) == ("Male", "Female")
    rates = {g.group: g.selection_rate for g in gender.groups}
    assert rule.ratio == pytest.approx(rates["Male"] / rates["Female"])  # type: ignore[operator]
    gap = gender.worst_gap()
    assert gap is not None and (gap.group, gap.reference) == ("Male", "Female")
    assert gap.difference == pytest.approx(gender.demographic_parity_difference)
    assert "gender=Male" in gap.describe() and f"{gap.difference:.4f}" in gap.describe()


def test_a_fair_model_passes_the_four_fifths_rule() -> None:
    rng = np.random.default_rng(3)
    n = 3_000
    gender = rng.choice(["Female", "Male"], size=n)
    pred = (rng.random(n) < 0.3).astype(int)
    y = (rng.random(n) < 0.3).astype(int)
    gender_report = audit_fairness(y, pred, pd.DataFrame({"gender": gender})).feature("gender")
    assert gender_report.four_fifths.passed is True
    assert gender_report.demographic_parity_difference is not None
    assert gender_report.demographic_parity_difference < 0.05


def test_small_groups_are_flagged_and_left_out_of_the_verdicts() -> None:
    y, pred, _, sensitive = biased()
    groups = sensitive["gender"].to_numpy().copy()
    groups[:12] = "Other"
    pred = pred.copy()
    pred[:12] = 1  # a selection rate of 1.0 that would dominate every verdict if it were judged
    report = audit_fairness(y, pred, pd.DataFrame({"gender": groups}), min_group=30)
    gender = report.feature("gender")
    other = next(g for g in gender.groups if g.group == "Other")
    assert other.small and other.count == 12 and other.selection_rate == 1.0
    assert gender.small_groups == ("Other",)
    assert gender.four_fifths.best_group == "Female"
    keep = groups != "Other"
    assert gender.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(y[keep], pred[keep], sensitive_features=groups[keep]), abs=1e-9
    )
    assert any("not judged" in note and "Other" in note for note in gender.notes)


def test_only_small_groups_give_no_verdict() -> None:
    y, pred, _, sensitive = biased(n=40)
    gender = audit_fairness(y, pred, sensitive[["gender"]], min_group=30).feature("gender")
    assert gender.four_fifths.passed is None
    assert gender.demographic_parity_difference is None
    assert gender.worst_gap() is None


def test_a_numeric_column_is_cut_into_readable_quantile_bands() -> None:
    y, pred, _, sensitive = biased()
    age = audit_fairness(y, pred, sensitive[["age"]], bins=4).feature("age")
    assert age.banded
    assert 2 <= len(age.groups) <= 4
    assert sum(g.count for g in age.groups) == len(sensitive)
    first = age.groups[0].group
    low, high = first.split("-")
    assert int(low) == int(sensitive["age"].min()) and int(high) < int(sensitive["age"].max())
    assert age.groups[-1].group.endswith(str(int(sensitive["age"].max())))


def test_a_numeric_column_with_few_values_stays_as_it_is() -> None:
    y, pred, _, _ = biased(n=600)
    products = np.resize([1, 2, 3], 600)
    feature = audit_fairness(y, pred, pd.DataFrame({"products": products}), bins=4).feature("products")
    assert not feature.banded
    assert [g.group for g in feature.groups] == ["1", "2", "3"]


def test_without_labels_the_report_has_selection_rates_and_parity_only() -> None:
    _, pred, _, sensitive = biased()
    report = audit_fairness(None, pred, sensitive[["gender"]])
    gender = report.feature("gender")
    assert not report.has_labels
    assert gender.equalized_odds_difference is None
    assert all(g.accuracy is None and g.tpr is None and g.selection_rate is not None for g in gender.groups)
    assert gender.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(pred, pred, sensitive_features=sensitive["gender"]), abs=1e-9
    )
    assert any("no labels" in note for note in report.notes)


def test_missing_labels_count_for_selection_but_not_for_label_metrics() -> None:
    y, pred, _, sensitive = biased()
    labels = y.astype(object)
    labels[::2] = None
    report = audit_fairness(labels, pred, sensitive[["gender"]])
    assert report.labelled == len(y) // 2
    gender = report.feature("gender")
    assert sum(g.count for g in gender.groups) == len(y)
    assert sum(g.labelled for g in gender.groups) == len(y) // 2
    odd = np.arange(len(y)) % 2 == 1
    assert gender.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(y[odd], pred[odd], sensitive_features=sensitive["gender"][odd]), abs=1e-9
    )


def test_a_named_positive_label_selects_that_class() -> None:
    _, pred, _, sensitive = biased()
    words = np.where(pred == 1, "approve", "deny")
    report = audit_fairness(None, words, sensitive[["gender"]], positive_label="approve")
    expected = audit_fairness(None, pred, sensitive[["gender"]])
    assert report.to_dict()["features"] == expected.to_dict()["features"]
    with pytest.raises(ConfigError, match="positive label"):
        audit_fairness(None, words, sensitive[["gender"]])


def test_the_report_is_json_without_nan() -> None:
    y, pred, score, sensitive = biased()
    body = audit_fairness(y, pred, sensitive, y_score=score).to_dict()
    text = json.dumps(body, allow_nan=False)
    assert json.loads(text)["worst_gap"]["feature"] == "gender"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"y_pred": []}, "no rows"),
        ({"sensitive": pd.DataFrame(index=range(3))}, "sensitive column"),
        ({"y_true": [1, 0]}, "2 labels for 3 predictions"),
        ({"min_group": 0}, "at least 1"),
        ({"bins": 1}, "at least 2 bins"),
    ],
)
def test_bad_input_is_a_clear_config_error(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "y_true": None,
        "y_pred": [1, 0, 1],
        "sensitive": pd.DataFrame({"g": ["a", "b", "a"]}),
    }
    args.update(kwargs)
    y_true, y_pred, sensitive = args.pop("y_true"), args.pop("y_pred"), args.pop("sensitive")
    with pytest.raises(ConfigError, match=message):
        audit_fairness(y_true, y_pred, sensitive, **args)  # type: ignore[arg-type]
