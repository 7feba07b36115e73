"""Drift reports count, per categorical feature, the current values that the reference never had."""

from __future__ import annotations

import pandas as pd

from modelward.drift import build_profile, compare_profiles, compare_samples


def test_profiles_count_values_outside_a_complete_vocabulary() -> None:
    reference = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "k": ["a", "b", "a", "b"]})
    current = pd.DataFrame({"x": [1.0, 2.0, 3.0, 9.0], "k": ["a", "Mars", "Mars", "Venus"]})
    profile = build_profile(reference)
    report = compare_profiles(profile, profile.observe(current))
    assert report.feature("k").unseen == 3
    assert report.feature("x").unseen is None
    assert report.to_dict()["features"][1]["unseen"] == 3


def test_a_truncated_vocabulary_does_not_call_its_other_values_unseen() -> None:
    # Only the most frequent category is kept: "b" was seen in training but falls in `other`.
    reference = pd.DataFrame({"k": ["a", "a", "a", "b"]})
    profile = build_profile(reference, max_categories=1)
    report = compare_profiles(profile, profile.observe(pd.DataFrame({"k": ["b", "Mars"]})))
    assert report.feature("k").unseen is None


def test_samples_count_categories_the_reference_never_had() -> None:
    report = compare_samples(
        pd.DataFrame({"k": ["a", "b", "a", "b"]}), pd.DataFrame({"k": ["a", "Mars", None, "Mars"]})
    )
    assert report.feature("k").unseen == 2
