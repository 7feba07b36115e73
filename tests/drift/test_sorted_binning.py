"""Binning of sorted samples (the fast path of compare_samples) gives exactly the general binning."""

from __future__ import annotations

import numpy as np
import pytest

from modelward.drift._profile_base import (
    histogram,
    reference_edges,
    sorted_histogram,
    sorted_quantiles,
    sorted_reference_edges,
)


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: rng.normal(0, 1, 5_000),
        lambda rng: rng.integers(0, 3, 5_000).astype(float),  # discrete: every value an edge
        lambda rng: np.full(100, 7.5),  # constant: one edge
        lambda rng: rng.choice([0.0, 1.0], 300),
        lambda rng: np.concatenate([rng.lognormal(0, 2, 2_000), [np.inf, -np.inf, 1e308, -1e308]]),
        lambda rng: rng.integers(0, 22, 1_000).astype(float),  # bins + 1 distinct values, or one more
        lambda rng: np.empty(0),
    ],
)
def test_sorted_binning_equals_the_general_binning(make: object) -> None:
    rng = np.random.default_rng(1)
    x = np.sort(make(rng))  # type: ignore[operator]
    finite = x[np.isfinite(x)]
    for bins in (1, 5, 20, 21):
        edges = reference_edges(finite, bins)
        assert sorted_reference_edges(finite, bins) == edges
        for sample in (x, np.sort(rng.normal(np.mean(finite) if finite.size else 0, 2, 777)), x[:0]):
            assert sorted_histogram(edges, sample) == histogram(edges, sample)


@pytest.mark.parametrize("n", [1, 2, 3, 21, 22, 1_000, 65_537])
def test_quantiles_read_off_a_sorted_sample_are_numpys_bit_for_bit(n: int) -> None:
    rng = np.random.default_rng(n)
    for x in (
        rng.normal(0, 1, n),
        rng.integers(-3, 3, n).astype(float),
        rng.normal(1e9, 1e-3, n),  # large values, tiny spread: the interpolation's rounding shows
        rng.lognormal(0, 3, n) * 1e290,
    ):
        x.sort()
        for bins in (1, 7, 20, 99):
            q = np.linspace(0.0, 1.0, bins + 1)
            assert sorted_quantiles(x, q).tobytes() == np.quantile(x, q).tobytes()
