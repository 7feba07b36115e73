from __future__ import annotations

import numpy as np
import pytest

from modelward.drift import SCORE_EDGES, PredictionProfile, ProfileError, ProfileMismatch, profile_predictions


def _binary(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    p1 = np.random.default_rng(seed).random(n)
    return (p1 > 0.5).astype(int), np.column_stack([1 - p1, p1])


def test_binary_profile_counts_labels_and_histograms_positive_class_probability() -> None:
    labels, proba = _binary(1_000, 12)
    p = profile_predictions(labels, proba, classes=[0, 1])
    assert (p.task, p.classes) == ("classification", ("0", "1"))
    assert p.labels is not None
    assert p.scores is not None
    assert p.labels.categories == {"0": int((labels == 0).sum()), "1": int((labels == 1).sum())}
    assert p.scores.edges == SCORE_EDGES
    assert p.scores.mean == pytest.approx(proba[:, 1].mean())
    assert p.scores.counts[0] == p.scores.counts[-1] == 0


def test_binary_probabilities_may_be_given_as_one_column_of_positive_class() -> None:
    labels, proba = _binary(200, 13)
    assert profile_predictions(labels, proba[:, 1], classes=[0, 1]) == profile_predictions(
        labels, proba, classes=[0, 1]
    )


def test_scores_of_exactly_zero_and_one_land_in_the_outer_inner_bins() -> None:
    p = profile_predictions([0, 1], [0.0, 1.0], classes=[0, 1])
    assert p.scores is not None
    assert p.scores.counts[1] == 1
    assert p.scores.counts[-2] == 1


def test_multiclass_scores_are_the_top_class_probability_and_every_class_is_a_category() -> None:
    rng = np.random.default_rng(14)
    proba = rng.dirichlet([1.0, 1.0, 1.0, 1.0], size=500)
    proba[:, 3] = 0.0
    proba /= proba.sum(axis=1, keepdims=True)
    names = np.array(["cat", "dog", "eel", "fox"])
    p = profile_predictions(names[proba.argmax(axis=1)], proba, classes=list(names))
    assert p.classes == ("cat", "dog", "eel", "fox")
    assert p.labels is not None
    assert p.scores is not None
    assert p.labels.categories["fox"] == 0
    assert p.labels.other == 0
    assert p.scores.mean == pytest.approx(proba.max(axis=1).mean())
    assert p.scores.minimum == pytest.approx(proba.max(axis=1).min())


def test_task_is_inferred_and_regression_bins_predictions_on_quantiles() -> None:
    y = np.random.default_rng(15).gamma(2.0, size=2_000)
    p = profile_predictions(y)
    assert (p.task, p.labels, p.classes) == ("regression", None, ())
    assert p.scores is not None
    assert (p.scores.edges[0], p.scores.edges[-1], len(p.scores.edges)) == (y.min(), y.max(), 21)
    assert profile_predictions(y, bins=5).scores is not None


def test_classification_without_probabilities_has_no_scores_and_infers_classes() -> None:
    p = profile_predictions(["b", "a", "b"], task="classification")
    assert (p.classes, p.scores) == (("a", "b"), None)
    with pytest.raises(ProfileError, match="without them"):
        p.observe(["a"], [[0.5, 0.5]])


def test_merging_observed_halves_equals_observing_the_whole() -> None:
    labels, proba = _binary(3_000, 16)
    ref = profile_predictions(labels, proba, classes=[0, 1])
    # On a dyadic grid every float sum is exact, so merged totals equal whole totals bit for bit.
    proba = np.round(proba * 1024) / 1024
    halves = ref.observe(labels[:1_000], proba[:1_000]).merge(ref.observe(labels[1_000:], proba[1_000:]))
    assert halves == ref.observe(labels, proba)
    y = np.round(np.random.default_rng(17).normal(size=2_000) * 64) / 64
    reg = profile_predictions(y)
    assert reg.observe(y[:500]).merge(reg.observe(y[500:])) == reg.observe(y) == reg


def test_observing_without_probabilities_leaves_scores_empty() -> None:
    labels, proba = _binary(100, 18)
    live = profile_predictions(labels, proba, classes=[0, 1]).observe([1, 1, 0])
    assert live.labels is not None
    assert live.scores is not None
    assert (live.labels.count, live.scores.count) == (3, 0)


def test_probabilities_that_do_not_fit_the_classes_are_rejected() -> None:
    labels, proba = _binary(10, 19)
    ref = profile_predictions(labels, proba, classes=[0, 1])
    with pytest.raises(ProfileError, match="do not fit"):
        ref.observe([0, 1], np.full((2, 3), 1 / 3))
    with pytest.raises(ProfileError, match="rows"):
        ref.observe([0, 1, 1], proba[:2])
    with pytest.raises(ProfileError, match="do not fit"):
        profile_predictions(["a", "a"], [[0.9, 0.05, 0.05], [0.8, 0.1, 0.1]])


def test_regression_predictions_take_no_probabilities_or_classes() -> None:
    with pytest.raises(ProfileError):
        profile_predictions([1.0, 2.0], classes=[0, 1], task="regression")
    with pytest.raises(ProfileError):
        profile_predictions([1.0, 2.0]).observe([1.0], [0.5])


def test_profiles_of_different_classes_do_not_merge() -> None:
    a = profile_predictions(["a", "b"], classes=["a", "b"])
    b = profile_predictions(["a", "b"], classes=["b", "a"])
    with pytest.raises(ProfileMismatch):
        a.merge(b)
    with pytest.raises(ProfileMismatch):
        a.merge(profile_predictions([1.0, 2.0]))


def test_prediction_profile_round_trips_through_a_dict() -> None:
    labels, proba = _binary(50, 20)
    for p in (profile_predictions(labels, proba, classes=[0, 1]), profile_predictions(proba[:, 1])):
        assert PredictionProfile.from_dict(p.to_dict()) == p
