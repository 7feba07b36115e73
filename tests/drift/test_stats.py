from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from modelward.drift import (
    PSI_EPSILON,
    NumericProfile,
    ProfileError,
    ProfileMismatch,
    build_profile,
    chi_square,
    js_distance,
    ks_binned,
    ks_exact,
    psi,
    wasserstein_binned,
    wasserstein_normalized,
)
from modelward.drift.stats import bin_points, sorted_ks_and_wasserstein

TOL = 1e-9


def _reference(x: np.ndarray, bins: int = 20) -> NumericProfile:
    p = build_profile(pd.DataFrame({"x": x}), bins=bins).features["x"]
    assert isinstance(p, NumericProfile)
    return p


# --------------------------------------------------------------------------------------------- PSI


def test_psi_matches_its_formula_and_is_symmetric() -> None:
    r, c = np.array([10, 20, 30, 40]), np.array([25, 25, 25, 25])
    p, q = r / r.sum(), c / c.sum()
    assert psi(r, c) == pytest.approx(float(np.sum((q - p) * np.log(q / p))), abs=TOL)
    assert psi(r, c) == pytest.approx(psi(c, r), abs=TOL)
    assert psi(p, q) == pytest.approx(psi(r, c), abs=TOL)  # counts or shares alike
    assert psi(r, r) == 0.0


def test_psi_floors_empty_bins_at_the_documented_epsilon() -> None:
    assert PSI_EPSILON == 1e-4
    # 2 % of the current values in a bin the reference never saw: (0.02 - 1e-4) * ln(0.02 / 1e-4).
    r, c = [50, 50, 0], [49, 49, 2]
    expected = 2 * (0.49 - 0.5) * math.log(0.49 / 0.5) + (0.02 - 1e-4) * math.log(0.02 / 1e-4)
    assert psi(r, c) == pytest.approx(expected, abs=TOL)
    assert math.isfinite(psi([1, 0], [0, 1]))
    assert psi([5, 5, 0], [3, 3, 0]) == 0.0  # a bin empty on both sides adds nothing
    assert psi(r, c, epsilon=1e-3) < psi(r, c)


@pytest.mark.parametrize(
    ("r", "c", "error"),
    [
        ([1, 2], [1, 2, 3], ProfileMismatch),
        ([0, 0], [1, 2], ProfileError),
        ([1, -1], [1, 2], ProfileError),
        ([], [], ProfileError),
        ([1, math.nan], [1, 2], ProfileError),
    ],
)
def test_binned_statistics_reject_bad_counts(r: list[float], c: list[float], error: type[Exception]) -> None:
    for f in (psi, js_distance, ks_binned, chi_square):
        with pytest.raises(error):
            f(r, c)


# -------------------------------------------------------------------------------- Jensen-Shannon


def test_js_distance_agrees_with_scipy_on_binned_probabilities() -> None:
    rng = np.random.default_rng(10)
    ref = _reference(rng.normal(size=20_000))
    for shift in (0.0, 0.1, 0.5, 2.0):
        cur = ref.observe(rng.normal(shift, 1.0, size=7_000))
        p = np.asarray(ref.counts) / ref.count
        q = np.asarray(cur.counts) / cur.count
        assert abs(js_distance(ref.counts, cur.counts) - float(jensenshannon(p, q, base=2))) <= TOL


def test_js_distance_is_bounded_and_zero_for_equal_distributions() -> None:
    assert js_distance([1, 2, 3], [2, 4, 6]) == 0.0
    assert js_distance([1, 0], [0, 1]) == pytest.approx(1.0, abs=TOL)
    d = js_distance([1, 2, 3, 4], [4, 3, 2, 1])
    assert 0 < d < 1


# ------------------------------------------------------------------------------ Kolmogorov-Smirnov


@pytest.mark.parametrize(
    ("n1", "n2", "discrete"),
    [
        (30, 45, False),
        (4_000, 9_000, False),  # scipy's exact p-value
        (20_000, 15_000, False),  # Smirnov's asymptotic p-value
        (300_000, 200_000, False),
        (3_000, 2_000, True),
        (50_000, 30_000, True),
    ],
)
def test_ks_exact_agrees_with_scipy(n1: int, n2: int, discrete: bool) -> None:
    rng = np.random.default_rng(n1 + n2)
    if discrete:
        a, b = rng.poisson(3.0, n1).astype(float), rng.poisson(3.1, n2).astype(float)
    else:
        a, b = rng.normal(size=n1), rng.normal(0.02, 1.1, size=n2)
    ours, theirs = ks_exact(a, b), sps.ks_2samp(a, b)
    assert abs(ours.statistic - theirs.statistic) <= TOL
    assert abs(ours.p_value - theirs.pvalue) <= TOL


@pytest.mark.parametrize(
    "draw",
    [
        # ties across the blocks of 65,536 values the exact pass merges at a time
        lambda rng: (np.round(rng.normal(size=200_000), 2), np.round(rng.normal(0, 3, size=150_000), 1)),
        # the current sample inside a single block of the reference
        lambda rng: (rng.normal(size=300_000), rng.normal(0.5, 1e-4, size=100_000)),
        lambda rng: (rng.integers(0, 4, 150_000).astype(float), rng.integers(1, 5, 70_000).astype(float)),
    ],
)
def test_the_blockwise_exact_pass_is_scipys_ks_and_wasserstein(draw: Any) -> None:
    a, b = draw(np.random.default_rng(5))
    ks, w, _ = sorted_ks_and_wasserstein(np.sort(a), np.sort(b))
    theirs = sps.ks_2samp(a, b)
    assert abs(ks.statistic - theirs.statistic) <= TOL
    assert abs(ks.p_value - theirs.pvalue) <= TOL
    assert w == pytest.approx(sps.wasserstein_distance(a, b), rel=1e-12)


def test_ks_exact_takes_infinities_but_not_nan() -> None:
    a, b = [1.0, 2.0, math.inf, 0.5], [0.0, 1.0, -math.inf]
    assert ks_exact(a, b).statistic == pytest.approx(sps.ks_2samp(a, b).statistic, abs=TOL)
    with pytest.raises(ProfileError, match="NaN"):
        ks_exact([1.0, math.nan], [1.0])
    with pytest.raises(ProfileError):
        ks_exact([], [1.0])


def _binned_vs_exact(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    ref = _reference(a)
    cur = ref.observe(b)
    binned = ks_binned(ref.counts, cur.counts)
    return binned.statistic, ks_exact(a, b).statistic, binned.bound


Draw = Callable[[np.random.Generator, int, float], np.ndarray]
DISTRIBUTIONS: dict[str, Draw] = {
    "normal": lambda rng, n, s: rng.normal(s, 1.0, n),
    "lognormal": lambda rng, n, s: rng.lognormal(s, 1.0, n),
    "discrete": lambda rng, n, s: rng.poisson(4.0 + 4.0 * s, n).astype(float),
}


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_binned_ks_on_20_reference_quantile_bins_is_within_003_of_exact(name: str) -> None:
    draw = DISTRIBUTIONS[name]
    rng = np.random.default_rng(sorted(DISTRIBUTIONS).index(name) + 20)
    worst = 0.0
    for n in (2_000, 20_000, 200_000):
        for shift in (0.0, 0.05, 0.2, 0.5, 1.0):
            binned, exact, _ = _binned_vs_exact(draw(rng, n, 0.0), draw(rng, n // 2, shift))
            worst = max(worst, abs(exact - binned))
    assert worst <= 0.03


def test_binned_ks_never_overestimates_and_errs_by_at_most_the_largest_bin_share() -> None:
    rng = np.random.default_rng(21)
    cases = []
    for _ in range(40):
        a = rng.normal(size=int(rng.integers(50, 3_000)))
        cases.append((a, rng.normal(rng.normal(), rng.uniform(0.2, 3), size=int(rng.integers(50, 3_000)))))
    a = rng.normal(size=5_000)
    ref = _reference(a)
    # Adversarial: the whole current window inside one reference bin, at its low or high end.
    lo, hi = ref.edges[9], ref.edges[10]
    cases += [
        (a, rng.uniform(lo, lo + (hi - lo) / 100, 1_000)),
        (a, rng.uniform(hi - (hi - lo) / 100, hi, 1_000)),
    ]
    cases.append((a, rng.lognormal(size=3_000)))
    for a, b in cases:
        binned, exact, bound = _binned_vs_exact(a, b)
        assert binned <= exact + TOL
        assert exact <= binned + bound + TOL


def test_binned_ks_is_exact_when_each_value_has_its_own_bin() -> None:
    rng = np.random.default_rng(22)
    a, b = rng.integers(0, 8, 5_000).astype(float), rng.integers(0, 9, 4_000).astype(float)
    binned, exact, _ = _binned_vs_exact(a, b)
    assert binned == pytest.approx(exact, abs=TOL)


def test_binned_ks_p_value_is_smirnovs_at_the_binned_statistic() -> None:
    r, c = [0, 400, 300, 300, 0], [10, 300, 300, 350, 40]
    result = ks_binned(r, c)
    # Running shares: 0 .4 .7 1 1 against .01 .31 .61 .96 1.
    assert result.statistic == pytest.approx(0.09, abs=TOL)
    assert result.bound == pytest.approx(0.4, abs=TOL)
    en = round(1000 * 1000 / 2000)
    assert result.p_value == pytest.approx(float(sps.kstwo.sf(0.09, en)), abs=TOL)


# ------------------------------------------------------------------------------------- Wasserstein


def test_wasserstein_normalized_agrees_with_scipy_over_the_reference_std() -> None:
    rng = np.random.default_rng(30)
    for n1, n2 in ((40, 70), (5_000, 3_000), (200_000, 150_000)):
        a, b = rng.lognormal(size=n1), rng.lognormal(0.1, 1.0, size=n2)
        expected = sps.wasserstein_distance(a, b) / np.std(a)
        got = wasserstein_normalized(a, b)
        assert got is not None
        assert abs(got - expected) <= TOL * max(1.0, expected)
        ks, w, w_norm = sorted_ks_and_wasserstein(np.sort(a), np.sort(b))
        assert w == pytest.approx(sps.wasserstein_distance(a, b), abs=TOL)
        assert w_norm == pytest.approx(expected, abs=TOL)
        assert ks.statistic == pytest.approx(sps.ks_2samp(a, b).statistic, abs=TOL)


def test_wasserstein_normalized_reads_as_a_shift_in_reference_standard_deviations() -> None:
    a = np.random.default_rng(31).normal(5.0, 3.0, size=10_000)
    w = wasserstein_normalized(a, a + 0.3 * np.std(a))
    assert w == pytest.approx(0.3, abs=1e-9)
    assert wasserstein_normalized(a, a + 2.0, scale=2.0) == pytest.approx(1.0, abs=1e-9)


def test_wasserstein_normalized_is_none_for_a_constant_reference() -> None:
    assert wasserstein_normalized([0.1] * 1_000, [0.1, 0.2]) is None
    assert wasserstein_normalized([1.0, 2.0], [3.0], scale=0.0) is None
    with pytest.raises(ProfileError, match="infinite"):
        wasserstein_normalized([1.0, math.inf], [1.0])


def test_bin_points_are_midpoints_except_in_the_outermost_bins() -> None:
    assert bin_points((0.0, 1.0, 2.0, 4.0, 8.0)).tolist() == [0.0, 1.0, 1.5, 3.0, 4.0, 8.0]
    assert bin_points((0.0, 2.0)).tolist() == [0.0, 1.0, 2.0]
    assert bin_points((3.0,)).tolist() == [3.0, 3.0, 3.0]
    assert bin_points(()).tolist() == [0.0]


def test_wasserstein_binned_is_scipys_on_the_bin_points_or_the_mean_shift() -> None:
    edges = (0.0, 1.0, 2.0, 4.0, 8.0)
    points = bin_points(edges)
    r, c = [0, 5, 3, 2, 1, 0], [1, 2, 3, 2, 2, 1]
    expected = sps.wasserstein_distance(points, points, r, c)
    assert wasserstein_binned(edges, r, c) == pytest.approx(expected, abs=TOL)
    assert wasserstein_binned(edges, r, c, scale=2.0) == pytest.approx(expected / 2, abs=TOL)
    # The exact difference of means is a lower bound of W1: the estimate never goes below it.
    assert wasserstein_binned(edges, r, c, mean_shift=-5.0) == pytest.approx(5.0, abs=TOL)
    assert wasserstein_binned(edges, r, c, scale=0.0) is None
    with pytest.raises(ProfileMismatch):
        wasserstein_binned(edges, r[:-1], c[:-1])


DRAWS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "normal": lambda rng, n: rng.normal(size=n),
    "lognormal": lambda rng, n: rng.lognormal(size=n),
    "student_t3": lambda rng, n: rng.standard_t(3, size=n),
    "poisson": lambda rng, n: rng.poisson(4.0, size=n).astype(float),
}


@pytest.mark.parametrize("name", sorted(DRAWS))
def test_binned_wasserstein_from_profiles_tracks_the_exact_one_under_shifts(name: str) -> None:
    draw = DRAWS[name]
    rng = np.random.default_rng(32)
    a = draw(rng, 50_000)
    ref = _reference(a)
    assert ref.mean is not None and ref.std is not None
    for shift in (0.0, 0.1, 0.2, 0.5):
        b = draw(rng, 20_000) + shift * np.std(a)
        cur = ref.observe(b)
        assert cur.mean is not None
        binned = wasserstein_binned(
            ref.edges, ref.counts, cur.counts, scale=ref.std, mean_shift=cur.mean - ref.mean
        )
        exact = wasserstein_normalized(a, b)
        assert binned is not None and exact is not None
        assert binned == pytest.approx(exact, abs=0.015)


# -------------------------------------------------------------------------------------- chi-square


def test_chi_square_agrees_with_scipy_contingency_test() -> None:
    rng = np.random.default_rng(40)
    for k in (2, 5, 30):
        p = rng.dirichlet(np.ones(k))
        r, c = rng.multinomial(5_000, p), rng.multinomial(800, rng.dirichlet(50 * p))
        theirs = sps.chi2_contingency(np.vstack([r, c]), correction=False)
        ours = chi_square(r, c)
        assert abs(ours.statistic - theirs.statistic) <= TOL * max(1.0, theirs.statistic)
        assert abs(ours.p_value - theirs.pvalue) <= TOL


def test_chi_square_leaves_out_categories_empty_on_both_sides() -> None:
    r, c = [40, 0, 30, 0], [10, 0, 25, 0]
    with pytest.raises(ValueError, match="zero"):
        sps.chi2_contingency(np.vstack([r, c]))  # what scipy alone does with them
    theirs = sps.chi2_contingency(np.array([[40, 30], [10, 25]]), correction=False)
    assert chi_square(r, c) == pytest.approx((theirs.statistic, theirs.pvalue), abs=TOL)
    # A category new in the current window has a reference count of 0 but a positive expectation.
    assert chi_square([100, 100, 0], [50, 50, 20]).p_value < 1e-6
    assert chi_square([10, 0], [3, 0]) == (0.0, 1.0)
