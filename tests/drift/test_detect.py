from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from modelward.drift import (
    DatasetProfile,
    DriftConfig,
    DriftReport,
    FeatureDrift,
    FeatureRule,
    ProfileMismatch,
    build_profile,
    compare_feature_profiles,
    compare_profiles,
    compare_samples,
    profile_predictions,
)
from modelward.errors import ConfigError

MILLION = 1_000_000


def _both(
    reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig | None = None
) -> tuple[DriftReport, DriftReport]:
    """The report from raw samples and the one from profiles, with the same settings."""
    profile = build_profile(reference)
    return (
        compare_samples(reference, current, config=config),
        compare_profiles(profile, profile.observe(current), config=config),
    )


# ------------------------------------------------------------------------------------- acceptance


@pytest.fixture(scope="module")
def same_distribution_1m() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(100)
    return (
        pd.DataFrame({"x": rng.normal(3.0, 2.0, MILLION), "y": rng.lognormal(size=MILLION)}),
        pd.DataFrame({"x": rng.normal(3.0, 2.0, MILLION), "y": rng.lognormal(size=MILLION)}),
    )


def test_two_million_row_samples_of_one_distribution_do_not_drift(
    same_distribution_1m: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    for report in _both(*same_distribution_1m):
        assert not report.dataset_drift
        assert report.share_drifted == 0.0
        for f in report.features:
            assert f.method == "wasserstein"
            assert f.statistic < 0.01
            assert not f.drifted


def test_a_million_rows_make_any_p_value_test_flag_a_negligible_shift() -> None:
    # Why effect sizes decide on large samples: a 0.01 sd shift is "significant" at this size.
    rng = np.random.default_rng(101)
    reference = pd.DataFrame({"x": rng.normal(size=MILLION)})
    current = pd.DataFrame({"x": rng.normal(0.01, 1.0, MILLION)})
    default = compare_samples(reference, current).features[0]
    assert default.scores["ks_p_value"] < 0.05
    assert not default.drifted
    ks = DriftConfig(numeric=FeatureRule(method="ks"))
    assert compare_samples(reference, current, config=ks).features[0].drifted


def test_a_shift_of_a_fifth_of_a_standard_deviation_is_detected_at_ten_thousand_rows() -> None:
    rng = np.random.default_rng(102)
    reference = pd.DataFrame({"x": rng.normal(10.0, 4.0, 10_000)})
    current = pd.DataFrame({"x": rng.normal(10.0 + 0.2 * 4.0, 4.0, 10_000)})
    for report in _both(reference, current):
        f = report.features[0]
        assert f.method == "wasserstein"
        assert f.statistic == pytest.approx(0.2, abs=0.03)
        assert f.drifted
        assert report.dataset_drift


def test_small_windows_are_judged_by_a_p_value() -> None:
    rng = np.random.default_rng(103)
    reference = pd.DataFrame({"x": rng.normal(size=50_000)})
    same = pd.DataFrame({"x": rng.normal(size=1_000)})
    shifted = pd.DataFrame({"x": rng.normal(0.2, 1.0, 1_000)})
    for report in _both(reference, same):
        assert report.features[0].method == "ks"
        assert report.features[0].threshold == 0.05
        assert report.features[0].p_value is not None and report.features[0].p_value >= 0.05
        assert not report.features[0].drifted
    for report in _both(reference, shifted):
        assert report.features[0].p_value is not None and report.features[0].p_value < 0.05
        assert report.features[0].drifted
        assert "judged by significance" in report.features[0].reason


def test_raw_sample_statistics_are_scipys() -> None:
    rng = np.random.default_rng(104)
    a, b = rng.normal(size=30_000), rng.normal(0.05, 1.2, 20_000)
    cats = np.array(["a", "b", "c", "d"])
    ca, cb = rng.choice(cats, 3_000, p=[0.4, 0.3, 0.2, 0.1]), rng.choice(cats, 2_000, p=[0.3, 0.3, 0.3, 0.1])
    report = compare_samples({"x": a, "c": ca}, {"x": b, "c": cb})
    x = report.feature("x").scores
    ks = sps.ks_2samp(a, b)
    assert x["ks"] == pytest.approx(ks.statistic, abs=1e-9)
    assert x["ks_p_value"] == pytest.approx(ks.pvalue, abs=1e-9)
    assert x["wasserstein_distance"] == pytest.approx(sps.wasserstein_distance(a, b), abs=1e-9)
    assert x["wasserstein"] == pytest.approx(sps.wasserstein_distance(a, b) / np.std(a), abs=1e-9)
    c = report.feature("c").scores
    table = [[np.sum(ca == k) for k in cats], [np.sum(cb == k) for k in cats]]
    chi2 = sps.chi2_contingency(table, correction=False)
    assert c["chi2"] == pytest.approx(chi2.statistic, abs=1e-9)
    assert c["chi2_p_value"] == pytest.approx(chi2.pvalue, abs=1e-9)


def test_samples_and_profiles_bin_numeric_features_alike() -> None:
    rng = np.random.default_rng(105)
    reference = pd.DataFrame({"x": rng.gamma(2.0, size=20_000)})
    current = pd.DataFrame({"x": rng.gamma(2.2, size=8_000)})
    from_samples, from_profiles = (r.features[0].scores for r in _both(reference, current))
    assert from_samples["psi"] == pytest.approx(from_profiles["psi"], abs=1e-12)
    assert from_samples["js"] == pytest.approx(from_profiles["js"], abs=1e-12)
    assert from_profiles["ks"] <= from_samples["ks"] <= from_profiles["ks"] + from_profiles["ks_bound"]


def test_compare_samples_of_one_distribution_on_many_rows_by_ten_columns_finds_no_drift() -> None:
    # Its time and memory at 100k to 5M rows are measured by benchmarks/drift_vs_evidently.py.
    rng = np.random.default_rng(106)
    reference = pd.DataFrame({f"c{i}": rng.normal(size=200_000) for i in range(10)})
    current = pd.DataFrame({f"c{i}": rng.normal(size=200_000) for i in range(10)})
    report = compare_samples(reference, current)
    assert len(report.features) == 10
    assert not report.dataset_drift


# ---------------------------------------------------------------------------------------- features


def test_new_categories_show_as_mass_in_other_and_drift() -> None:
    rng = np.random.default_rng(110)
    reference = pd.DataFrame({"color": rng.choice(["red", "green", "blue"], 20_000, p=[0.5, 0.3, 0.2])})
    current = pd.DataFrame(
        {"color": rng.choice(["red", "green", "blue", "violet"], 10_000, p=[0.4, 0.25, 0.2, 0.15])}
    )
    for report in _both(reference, current):
        f = report.features[0]
        assert f.kind == "categorical"
        assert f.method == "psi"
        assert f.scores["other_share_reference"] == 0.0
        assert f.scores["other_share_current"] == pytest.approx(0.15, abs=0.01)
        assert f.drifted
    small = pd.DataFrame({"color": ["red"] * 40 + ["green"] * 30 + ["violet"] * 30})
    for report in _both(reference, small):
        assert report.features[0].method == "chi2"
        assert report.features[0].drifted


def test_categorical_features_of_one_distribution_do_not_drift() -> None:
    rng = np.random.default_rng(111)
    p = np.arange(1, 61) / np.arange(1, 61).sum()
    reference = pd.DataFrame({"k": rng.choice(60, 30_000, p=p).astype(str)})
    for n in (800, 30_000):
        current = pd.DataFrame({"k": rng.choice(60, n, p=p).astype(str)})
        for report in _both(reference, current):
            assert not report.features[0].drifted, report.features[0].reason


def test_constant_reference_falls_back_from_wasserstein_to_psi() -> None:
    reference = pd.DataFrame({"c": np.full(20_000, 0.1)})
    same = pd.DataFrame({"c": np.full(10_000, 0.1)})
    rng = np.random.default_rng(112)
    moved = pd.DataFrame({"c": np.where(rng.random(10_000) < 0.05, 0.7, 0.1)})
    for report in _both(reference, same):
        f = report.features[0]
        assert "wasserstein" not in f.scores
        assert f.method == "psi"
        assert f.statistic == 0.0
        assert not f.drifted
    for report in _both(reference, moved):
        f = report.features[0]
        assert f.method == "psi"
        assert "constant" in f.reason
        assert f.scores["wasserstein_distance"] == pytest.approx(0.05 * 0.6, abs=0.005)
        assert f.drifted
    # Small windows of constants: KS handles them.
    for report in _both(reference, same.head(100)):
        assert report.features[0].method == "ks"
        assert not report.features[0].drifted


def test_an_empty_current_window_is_no_evidence_of_drift() -> None:
    reference = pd.DataFrame({"x": np.random.default_rng(113).normal(size=1_000), "k": ["a", "b"] * 500})
    profile = build_profile(reference)
    reports = [
        compare_profiles(profile, profile.empty()),
        compare_profiles(profile, profile.observe(reference.head(0))),
        compare_samples(reference, reference.head(0)),
    ]
    for report in reports:
        assert not report.dataset_drift
        assert report.share_drifted == 0.0
        for f in report.features:
            assert f.method == "none"
            assert f.n_current == 0
            assert not f.drifted
            assert "empty" in f.reason


def test_missing_rates_are_reported_and_a_large_change_is_drift() -> None:
    rng = np.random.default_rng(114)
    x = rng.normal(size=20_000)
    reference = pd.DataFrame({"x": np.where(rng.random(20_000) < 0.02, np.nan, x), "k": ["a", "b"] * 10_000})
    y = rng.normal(size=10_000)
    a_few = pd.DataFrame({"x": np.where(rng.random(10_000) < 0.07, np.nan, y), "k": ["a", "b"] * 5_000})
    many = a_few.assign(
        x=np.where(rng.random(10_000) < 0.4, np.nan, y),
        k=np.array([None, "a", None, "b"] * 2_500, dtype=object),
    )
    for report in _both(reference, a_few):
        f = report.feature("x")
        assert f.scores["missing_rate_reference"] == pytest.approx(0.02, abs=0.005)
        assert f.scores["missing_rate_current"] == pytest.approx(0.07, abs=0.01)
        assert f.scores["missing_rate_change"] == pytest.approx(0.05, abs=0.01)
        assert not f.drifted
    for report in _both(reference, many):
        assert report.feature("x").drifted
        assert "missing rate" in report.feature("x").reason
        assert report.feature("k").scores["missing_rate_current"] == 0.5
        assert report.feature("k").drifted
    off = DriftConfig(
        numeric=FeatureRule(missing_threshold=1.0), categorical=FeatureRule(missing_threshold=1.0)
    )
    assert not compare_samples(reference, many, config=off).dataset_drift


def test_a_column_gone_all_missing_drifts_by_its_missing_rate() -> None:
    reference = pd.DataFrame({"x": np.random.default_rng(115).normal(size=5_000)})
    for current in (pd.DataFrame({"x": [np.nan] * 50}), pd.DataFrame({"x": [np.nan] * 50_000})):
        for report in _both(reference, current):
            f = report.features[0]
            assert f.method == "none"
            assert f.drifted
            assert f.scores["missing_rate_current"] == 1.0


def test_per_feature_overrides_replace_the_default_rule() -> None:
    rng = np.random.default_rng(116)
    reference = pd.DataFrame({"x": rng.normal(size=20_000), "y": rng.normal(size=20_000)})
    current = pd.DataFrame({"x": rng.normal(0.2, 1.0, 20_000), "y": rng.normal(0.2, 1.0, 20_000)})
    config = DriftConfig(
        features={"x": FeatureRule(threshold=0.5), "y": FeatureRule(method="psi", threshold=0.02)}
    )
    for report in _both(reference, current, config):
        x, y = report.feature("x"), report.feature("y")
        assert (x.method, x.threshold, x.drifted) == ("wasserstein", 0.5, False)
        assert (y.method, y.threshold, y.drifted) == ("psi", 0.02, True)
    bigger = DriftConfig(numeric=FeatureRule(effect_size_rows=50_000, alpha=0.01))
    for report in _both(reference, current, bigger):
        assert report.feature("x").method == "ks"
        assert report.feature("x").threshold == 0.01


def test_bad_rules_and_unknown_features_raise_config_errors() -> None:
    reference = pd.DataFrame({"x": [1.0, 2.0, 3.0], "k": ["a", "b", "a"]})
    with pytest.raises(ConfigError, match="unknown feature"):
        compare_samples(reference, reference, config=DriftConfig(features={"nope": FeatureRule()}))
    with pytest.raises(ConfigError, match="does not fit categorical feature 'k'"):
        compare_samples(reference, reference, config=DriftConfig(features={"k": FeatureRule(method="ks")}))
    with pytest.raises(ConfigError, match="does not fit"):
        DriftConfig(categorical=FeatureRule(method="wasserstein"))
    with pytest.raises(ConfigError):
        FeatureRule(method="magic")  # type: ignore[arg-type]
    for bad in ({"alpha": 1.5}, {"threshold": -1.0}, {"threshold": math.nan}, {"missing_threshold": 2.0}):
        with pytest.raises(ConfigError):
            FeatureRule(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        DriftConfig(drift_share=0.0)
    with pytest.raises(ConfigError, match="'prediction' or 'score'"):
        DriftConfig(predictions={"label": FeatureRule()})


def test_the_data_set_drifts_when_the_share_of_drifted_features_reaches_the_threshold() -> None:
    rng = np.random.default_rng(117)
    n = 10_000
    reference = pd.DataFrame({name: rng.normal(size=n) for name in "abcd"})
    current = pd.DataFrame({name: rng.normal(0.5 if name in "ab" else 0.0, 1.0, n) for name in "abcd"})
    for report in _both(reference, current):
        assert report.drifted_features == ("a", "b")
        assert report.share_drifted == 0.5
        assert report.threshold_share == 0.5
        assert report.dataset_drift
    for report in _both(reference, current, DriftConfig(drift_share=0.75)):
        assert report.share_drifted == 0.5
        assert not report.dataset_drift


def test_reports_serialise_to_strict_json() -> None:
    rng = np.random.default_rng(118)
    reference = pd.DataFrame(
        {"x": rng.normal(size=6_000), "c": np.zeros(6_000), "k": rng.choice(["a", "b"], 6_000), "m": np.nan}
    )
    current = pd.DataFrame(
        {"x": rng.normal(1, 1, 6_000), "c": rng.normal(size=6_000), "k": ["z"] * 6_000, "m": np.nan}
    )
    profile = build_profile(reference)
    reports = [*_both(reference, current), compare_profiles(profile, profile.empty())]
    for report in reports:
        doc = json.loads(json.dumps(report.to_dict(), allow_nan=False))
        assert doc["dataset_drift"] == report.dataset_drift
        assert [f["feature"] for f in doc["features"]] == ["x", "c", "k", "m"]
        for f in report.features:
            assert all(math.isfinite(v) for v in f.scores.values())


# -------------------------------------------------------------------------------------- predictions


def _with_predictions(frame: pd.DataFrame, labels: np.ndarray, proba: np.ndarray) -> DatasetProfile:
    return build_profile(frame).with_prediction(profile_predictions(labels, proba, classes=[0, 1]))


def test_prediction_drift_compares_labels_and_scores() -> None:
    rng = np.random.default_rng(120)
    frame = pd.DataFrame({"x": rng.normal(size=20_000)})
    p = rng.beta(2, 5, 20_000)
    reference = _with_predictions(frame, (p > 0.5).astype(int), p)
    stable = rng.beta(2, 5, 20_000)
    same = reference.observe(frame, (stable > 0.5).astype(int), stable)
    report = compare_profiles(reference, same)
    assert [(f.feature, f.kind) for f in report.prediction] == [
        ("prediction", "categorical"),
        ("score", "numeric"),
    ]
    assert not report.prediction_drift
    higher = rng.beta(3, 4, 20_000)
    moved = reference.observe(frame, (higher > 0.5).astype(int), higher)
    report = compare_profiles(reference, moved)
    assert report.prediction_drift
    assert all(f.drifted for f in report.prediction)
    assert not report.dataset_drift  # the features did not move
    lenient = DriftConfig(
        predictions={"score": FeatureRule(threshold=5.0), "prediction": FeatureRule(threshold=5.0)}
    )
    assert not compare_profiles(reference, moved, config=lenient).prediction_drift
    doc = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert doc["prediction_drift"] is True


def test_regression_predictions_are_compared_as_numbers() -> None:
    rng = np.random.default_rng(121)
    frame = pd.DataFrame({"x": rng.normal(size=10_000)})
    reference = build_profile(frame).with_prediction(profile_predictions(rng.normal(size=10_000)))
    report = compare_profiles(reference, reference.observe(frame, rng.normal(0.5, 1.0, 10_000)))
    assert [(f.feature, f.method, f.drifted) for f in report.prediction] == [
        ("prediction", "wasserstein", True)
    ]
    without = compare_profiles(reference, reference.observe(frame))
    assert [(f.method, f.drifted) for f in without.prediction] == [("none", False)]


# ------------------------------------------------------------------------------------------ errors


def test_profiles_must_share_their_shape() -> None:
    rng = np.random.default_rng(130)
    a = build_profile(pd.DataFrame({"x": rng.normal(size=100), "k": ["a", "b"] * 50}))
    b = build_profile(pd.DataFrame({"x": rng.normal(size=100), "k": ["a", "c"] * 50}))
    with pytest.raises(ProfileMismatch, match="edges"):
        compare_profiles(a, b)
    with pytest.raises(ProfileMismatch, match="categories"):
        compare_feature_profiles(a.features["k"], b.features["k"])
    with pytest.raises(ProfileMismatch, match="only one"):
        compare_profiles(a, build_profile(pd.DataFrame({"x": rng.normal(size=10)})))
    with pytest.raises(ProfileMismatch, match="lacks column"):
        compare_samples(pd.DataFrame({"x": [1.0], "y": [2.0]}), pd.DataFrame({"x": [1.0]}))


def test_compare_feature_profiles_judges_one_feature() -> None:
    rng = np.random.default_rng(131)
    ref = build_profile(pd.DataFrame({"x": rng.normal(size=20_000)})).features["x"]
    live = ref.observe(rng.normal(0.3, 1.0, 20_000))
    verdict = compare_feature_profiles(ref, live)
    assert isinstance(verdict, FeatureDrift)
    assert verdict.drifted
    assert not compare_feature_profiles(ref, live, rule=FeatureRule(threshold=0.9)).drifted
    with pytest.raises(ConfigError):
        compare_feature_profiles(ref, ref, rule=FeatureRule(method="chi2"))
