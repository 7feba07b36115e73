from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelward.drift import OTHER, CategoricalProfile, ProfileError, ProfileMismatch, build_profile


def _reference(values: object, max_categories: int = 50, *, categorical: bool = False) -> CategoricalProfile:
    frame = pd.DataFrame({"c": values})
    profile = build_profile(frame, max_categories=max_categories, categorical=["c"] if categorical else ())
    p = profile.features["c"]
    assert isinstance(p, CategoricalProfile)
    return p


def test_top_categories_are_capped_and_the_rest_counted_as_other() -> None:
    p = _reference(list("aaaaabbbccd"), max_categories=2)
    assert p.categories == {"a": 5, "b": 3}
    assert (p.count, p.other) == (11, 3)


def test_categories_are_ordered_by_frequency_then_value() -> None:
    p = _reference(list("ccbbaad"), max_categories=3)
    assert list(p.categories) == ["a", "b", "c"]
    assert p.other == 1
    assert list(_reference(list("abbccc")).categories) == ["c", "b", "a"]


def test_unseen_categories_in_observe_count_as_other() -> None:
    p = _reference(list("aab"))
    live = p.observe(["a", "z", "z", None, "b"])
    assert live.categories == {"a": 1, "b": 1}
    assert (live.other, live.missing, live.count) == (2, 1, 4)


def test_categories_missing_from_a_live_window_are_kept_with_zero_counts() -> None:
    live = _reference(list("aab")).observe(["b"])
    assert live.categories == {"a": 0, "b": 1}


def test_bool_column_is_categorical_with_true_and_false_keys() -> None:
    p = _reference([True, False, True])
    assert p.dtype == "bool"
    assert p.categories == {"True": 2, "False": 1}
    nullable = _reference(pd.array([True, None, False], dtype="boolean"))
    assert (nullable.categories, nullable.missing) == ({"False": 1, "True": 1}, 1)


def test_numbers_in_an_object_column_are_keyed_by_their_text() -> None:
    p = _reference(pd.Series([1, "1", 2.5, "b", None], dtype=object))
    assert p.categories == {"1": 2, "2.5": 1, "b": 1}
    assert p.missing == 1


def test_int_categories_still_match_when_a_live_column_turns_float() -> None:
    p = _reference([1, 2, 2, 3], categorical=True)
    assert p.dtype == "int64"
    live = p.observe(pd.Series([2.0, np.nan, 3.0]))
    assert live.categories == {"2": 1, "1": 0, "3": 1}
    assert (live.other, live.missing) == (0, 1)


def test_category_dtype_ignores_unused_categories() -> None:
    p = _reference(pd.Categorical(["x", "y", "x"], categories=["x", "y", "never"]))
    assert p.dtype == "category"
    assert p.categories == {"x": 2, "y": 1}


def test_missing_values_are_counted_apart_from_categories() -> None:
    p = _reference(["a", None, np.nan, "a"])
    assert (p.count, p.missing, p.n, p.missing_rate) == (2, 2, 4, 0.5)


def test_frequencies_are_shares_of_non_missing_values_with_other_only_when_nonzero() -> None:
    p = _reference(["a", "a", "a", "b", None], max_categories=1)
    assert p.frequencies == {"a": 0.75, OTHER: 0.25}
    assert p.observe(["a", "a"]).frequencies == {"a": 1.0}
    assert p.empty().frequencies == {"a": 0.0}


def test_merging_two_halves_equals_profile_of_whole() -> None:
    values = np.random.default_rng(11).choice(
        list("abcdefg"), size=2_000, p=[0.4, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05]
    )
    p = _reference(values, max_categories=4)
    assert p.observe(values[:700]).merge(p.observe(values[700:])) == p


def test_merge_requires_the_same_categories() -> None:
    a, b = _reference(list("aab")), _reference(list("aac"))
    with pytest.raises(ProfileMismatch, match="categories differ") as info:
        a.merge(b)
    assert info.value.feature == "c"


def test_empty_keeps_the_categories_and_is_neutral_in_merge() -> None:
    p = _reference(list("aabx"), max_categories=2)
    assert p.empty().categories == {"a": 0, "b": 0}
    assert p.empty().merge(p) == p


def test_profile_does_not_share_the_callers_dict() -> None:
    counts = {"a": 1}
    p = CategoricalProfile("c", "object", 1, 0, counts, 0)
    counts["a"] = 5
    assert p.categories == {"a": 1}


def test_counts_that_do_not_add_up_are_rejected() -> None:
    with pytest.raises(ProfileError, match="add up"):
        CategoricalProfile("c", "object", 3, 0, {"a": 1}, 1)
