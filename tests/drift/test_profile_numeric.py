from __future__ import annotations

import math

import numpy as np
import orjson
import pandas as pd
import pytest

from modelward.drift import NumericProfile, ProfileError, ProfileMismatch, build_profile


def _reference(values: object, bins: int = 20) -> NumericProfile:
    profile = build_profile(pd.DataFrame({"x": values}), bins=bins).features["x"]
    assert isinstance(profile, NumericProfile)
    return profile


def _on_edges(*edges: float) -> NumericProfile:
    return NumericProfile("x", "float64", 0, 0, edges, (0,) * (len(edges) + 1), None, None, 0.0, 0.0)


def _dyadic(rng: np.random.Generator, n: int) -> np.ndarray:
    # Multiples of 1/64 of modest size: every float sum is exact, so merged totals equal whole totals.
    return np.round(rng.normal(size=n) * 64) / 64


def test_reference_min_and_max_are_the_outer_edges_and_data_fills_only_inner_bins() -> None:
    x = np.random.default_rng(1).normal(size=5_000)
    p = _reference(x)
    assert p.edges[0] == x.min()
    assert p.edges[-1] == x.max()
    assert len(p.edges) == 21
    assert len(p.counts) == 22
    assert p.counts[0] == 0
    assert p.counts[-1] == 0
    assert p.observe([x.min()]).counts[1] == 1
    assert p.observe([x.max()]).counts[-2] == 1


def test_quantile_bins_hold_roughly_equal_shares_of_the_reference() -> None:
    p = _reference(np.random.default_rng(2).normal(size=10_000), bins=10)
    assert all(abs(c - 1_000) <= 2 for c in p.counts[1:-1])


def test_values_beyond_the_reference_range_go_to_underflow_and_overflow() -> None:
    x = np.random.default_rng(3).normal(size=1_000)
    p = _reference(x).observe([x.min() - 1e-9, x.max() + 1e-9, x.max() + 5, -math.inf, math.inf])
    assert p.counts[0] == 2
    assert p.counts[-1] == 3
    assert sum(p.counts[1:-1]) == 0


def test_inner_edges_belong_to_the_bin_they_open_and_the_last_bin_is_closed() -> None:
    p = _on_edges(0.0, 1.0, 2.0, 3.0).observe([-0.5, 0.0, 0.5, 1.0, 2.0, 2.5, 3.0, 3.5])
    assert p.counts == (1, 2, 1, 3, 1)


def test_observing_the_reference_data_reproduces_the_reference_profile() -> None:
    x = np.random.default_rng(4).lognormal(size=3_000)
    p = _reference(x)
    assert p.observe(x) == p
    assert p.observe(pd.Series(x)) == p


def test_merging_two_halves_equals_profile_of_whole() -> None:
    x = _dyadic(np.random.default_rng(5), 4_000)
    p = _reference(x)
    halves = p.observe(x[:1_500]).merge(p.observe(x[1_500:]))
    assert halves == p.observe(x)
    assert halves == p


def test_merged_mean_and_std_match_numpy() -> None:
    rng = np.random.default_rng(6)
    x, y = rng.normal(3, 2, size=2_000), rng.normal(5, 1, size=3_000)
    p = _reference(x)
    merged = p.merge(p.observe(y))
    both = np.concatenate([x, y])
    assert merged.mean == pytest.approx(both.mean())
    assert merged.std == pytest.approx(both.std())
    assert merged.minimum == both.min()
    assert merged.maximum == both.max()


def test_merge_with_different_edges_raises_profile_mismatch() -> None:
    rng = np.random.default_rng(7)
    a, b = _reference(rng.normal(size=500)), _reference(rng.normal(size=500))
    with pytest.raises(ProfileMismatch, match="bin edges differ") as info:
        a.merge(b)
    assert info.value.feature == "x"
    assert isinstance(info.value, ValueError)


def test_merge_of_different_features_raises_profile_mismatch() -> None:
    a = _on_edges(0.0, 1.0)
    b = NumericProfile("y", "float64", 0, 0, (0.0, 1.0), (0, 0, 0), None, None, 0.0, 0.0)
    with pytest.raises(ProfileMismatch, match="'x'"):
        a.merge(b)


def test_constant_column_has_one_edge_and_counts_below_equal_above() -> None:
    p = _reference([5, 5, 5, 5])
    assert p.edges == (5.0,)
    assert p.counts == (0, 4, 0)
    assert p.std == 0.0
    assert p.observe([4, 5, 5, 6, 7]).counts == (1, 2, 2)


def test_all_missing_column_has_no_edges_and_one_count_for_everything_observed() -> None:
    p = _reference([np.nan, np.nan, np.nan])
    assert p.edges == ()
    assert p.counts == (0,)
    assert (p.count, p.missing, p.minimum, p.maximum, p.mean, p.std) == (0, 3, None, None, None, None)
    assert p.missing_rate == 1.0
    live = p.observe([1.0, np.nan, -math.inf, 2.0])
    assert live.counts == (3,)
    assert live.missing == 1


def test_none_nan_and_pd_na_count_as_missing_and_stay_out_of_the_histogram() -> None:
    p = _reference(pd.array([1.0, None, 2.0, 3.0, pd.NA], dtype="Float64"))
    assert p.dtype == "Float64"
    assert (p.count, p.missing, p.n) == (3, 2, 5)
    assert sum(p.counts) == 3
    assert p.missing_rate == pytest.approx(0.4)
    live = p.observe(pd.Series([None, 1.5, float("nan")], dtype=object))
    assert (live.count, live.missing) == (1, 2)


def test_infinities_are_binned_outside_but_left_out_of_edges_and_moments() -> None:
    p = _reference([1.0, 2.0, 3.0, math.inf, -math.inf, math.inf])
    assert p.edges == (1.0, 2.0, 2.5, 3.0)
    assert p.counts == (1, 1, 1, 1, 2)
    assert (p.count, p.nonfinite, p.minimum, p.maximum) == (6, 3, 1.0, 3.0)
    assert p.mean == 2.0
    assert p.std == pytest.approx(np.std([1.0, 2.0, 3.0]))


def test_binary_int_column_keeps_zeros_and_ones_in_separate_bins() -> None:
    flags = np.random.default_rng(8).integers(0, 2, size=1_000)
    p = _reference(flags)
    assert p.edges == (0.0, 0.5, 1.0)
    assert p.counts == (0, int((flags == 0).sum()), int((flags == 1).sum()), 0)
    assert p.observe([1, 1, 1, 0]).counts == (0, 1, 3, 0)


def test_low_cardinality_int_column_gives_every_value_its_own_bin() -> None:
    levels = np.random.default_rng(9).integers(1, 5, size=1_000)
    p = _reference(levels)
    assert p.edges == (1.0, 2.0, 3.0, 3.5, 4.0)
    assert p.counts[1:-1] == tuple(int((levels == v).sum()) for v in (1, 2, 3, 4))


def test_empty_keeps_the_edges_and_is_neutral_in_merge() -> None:
    p = _reference(np.random.default_rng(10).normal(size=100))
    empty = p.empty()
    assert empty.edges == p.edges
    assert (empty.count, empty.missing, sum(empty.counts), empty.minimum, empty.mean) == (0, 0, 0, None, None)
    assert empty.merge(p) == p
    assert p.merge(empty) == p


def test_sums_that_overflow_survive_a_json_round_trip_without_nan() -> None:
    p = _reference([1e200, 2e200, -3e200])
    assert p.total_sq == math.inf
    data = orjson.dumps(p.to_dict())
    assert b"null" not in data
    assert NumericProfile.from_dict(orjson.loads(data)) == p


def test_non_numeric_values_raise_profile_error() -> None:
    with pytest.raises(ProfileError, match="feature 'x'"):
        _on_edges(0.0, 1.0).observe(["a", "b"])


def test_inconsistent_profiles_are_rejected_on_construction() -> None:
    with pytest.raises(ProfileError, match="counts"):
        NumericProfile("x", "float64", 1, 0, (0.0, 1.0), (0, 1), 0.5, 0.5, 0.5, 0.25)
    with pytest.raises(ProfileError, match="strictly increasing"):
        _on_edges(1.0, 0.0)
    with pytest.raises(ProfileError, match="add up"):
        NumericProfile("x", "float64", 2, 0, (0.0, 1.0), (0, 1, 0), 0.5, 0.5, 0.5, 0.25)


def test_observe_accepts_lists_arrays_and_series_alike() -> None:
    p = _on_edges(0.0, 10.0)
    assert p.observe([1, 2, 3]) == p.observe(np.array([1.0, 2.0, 3.0])) == p.observe(pd.Series([1, 2, 3]))
