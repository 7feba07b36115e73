"""Drift statistics: pure functions from samples or bin counts to numbers.

Two families, one per entry shape of :mod:`modelward.drift.detect`:

* **exact**, on raw samples: :func:`ks_exact` (two-sample Kolmogorov-Smirnov, as
  :func:`scipy.stats.ks_2samp`) and :func:`wasserstein_normalized` (:func:`scipy.stats.wasserstein_distance`
  divided by the reference's standard deviation);
* **binned**, on the counts of two profiles that share edges or categories: :func:`psi`,
  :func:`js_distance`, :func:`ks_binned`, :func:`wasserstein_binned` and :func:`chi_square`.

PSI and Jensen-Shannon are binned in both cases (raw samples are binned on the reference's quantile
edges first). Invalid input raises :class:`~modelward.drift.ProfileError`; counts of different
lengths raise :class:`~modelward.drift.ProfileMismatch`. The reasoning and the error bound of the
binned KS statistic are in ``docs/drift.md``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from modelward._lazy import scipy_stats
from modelward.drift._profile_base import FloatArray, ProfileError, ProfileMismatch

__all__ = [
    "PSI_EPSILON",
    "BinnedKS",
    "Significance",
    "chi_square",
    "js_distance",
    "ks_binned",
    "ks_exact",
    "psi",
    "wasserstein_binned",
    "wasserstein_normalized",
]

PSI_EPSILON = 1e-4
"""Floor of a bin's share in :func:`psi`: an empty bin counts as holding 0.01 % of the values."""

# ks_2samp's method="auto" is exact up to this many values per sample, asymptotic beyond.
_KS_EXACT_MAX_N = 10_000
# Values of each sample per block of the exact KS and Wasserstein pass: a few MB of temporaries.
_BLOCK = 1 << 16


class Significance(NamedTuple):
    """A test statistic and its p-value."""

    statistic: float
    p_value: float


class BinnedKS(NamedTuple):
    """KS statistic from bin counts, its (conservative) p-value, and the bound on its error.

    ``statistic <= exact statistic <= statistic + bound`` holds for the samples behind the counts.
    """

    statistic: float
    p_value: float
    bound: float


def _counts(values: npt.ArrayLike, what: str) -> FloatArray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ProfileError(f"{what}: expected a non-empty one-dimensional array of counts")
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ProfileError(f"{what}: counts must be finite and not negative")
    if not x.sum() > 0:
        raise ProfileError(f"{what}: the counts are all zero (an empty sample has no distribution)")
    return x


def _pair(reference: npt.ArrayLike, current: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    r, c = _counts(reference, "reference"), _counts(current, "current")
    if r.size != c.size:
        raise ProfileMismatch(f"{r.size} reference bins but {c.size} current bins: the bins must match")
    return r, c


def _sample(values: npt.ArrayLike, what: str, *, finite: bool) -> FloatArray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ProfileError(f"{what}: expected a non-empty one-dimensional sample")
    if np.isnan(x).any():
        raise ProfileError(f"{what}: the sample holds NaN; drop missing values first")
    if finite and not np.isfinite(x).all():
        raise ProfileError(f"{what}: the sample holds infinite values")
    return x


def psi(reference: npt.ArrayLike, current: npt.ArrayLike, *, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of two binned distributions (counts or shares, same bins).

    ``sum((c - r) * ln(c / r))`` over the bins' shares ``r`` and ``c``, each share first raised to at
    least ``epsilon`` (not renormalised), so that an empty bin does not make the index infinite; a bin
    empty on both sides adds nothing.
    """
    if not 0 < epsilon < 1:
        raise ProfileError(f"psi: epsilon must be between 0 and 1, not {epsilon}")
    r, c = _pair(reference, current)
    p = np.maximum(r / r.sum(), epsilon)
    q = np.maximum(c / c.sum(), epsilon)
    return max(float(np.sum((q - p) * np.log(q / p))), 0.0)


def js_distance(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """Jensen-Shannon distance (base 2, so between 0 and 1) of two binned distributions.

    :func:`scipy.spatial.distance.jensenshannon`; needs no epsilon, since empty bins are fine.
    """
    from scipy.spatial.distance import jensenshannon

    r, c = _pair(reference, current)
    with np.errstate(invalid="ignore"):
        d = float(jensenshannon(r, c, base=2.0))
    # Rounding can leave the divergence a hair below zero for near-equal inputs: sqrt gives NaN then.
    return 0.0 if math.isnan(d) else min(d, 1.0)


def _ks_p_value(d: float, n1: int, n2: int) -> float:
    # ks_2samp's asymptotic two-sided p-value: Smirnov's distribution at the effective sample size.
    m, n = float(max(n1, n2)), float(min(n1, n2))
    return float(np.clip(scipy_stats().kstwo.sf(d, np.round(m * n / (m + n))), 0.0, 1.0))


def _blocks(a: FloatArray, b: FloatArray) -> Iterator[tuple[int, int, int, int]]:
    """Cut two sorted samples at common values into blocks of at most ``_BLOCK`` values of each:
    ``(a_start, a_stop, b_start, b_stop)``. Equal values never straddle two blocks, so every block's
    values are below the next block's."""
    cuts = np.unique(np.concatenate([a[_BLOCK::_BLOCK], b[_BLOCK::_BLOCK]]))
    at_a = [0, *np.searchsorted(a, cuts, side="left").tolist(), a.size]
    at_b = [0, *np.searchsorted(b, cuts, side="left").tolist(), b.size]
    for i in range(len(at_a) - 1):
        if at_a[i] < at_a[i + 1] or at_b[i] < at_b[i + 1]:
            yield at_a[i], at_a[i + 1], at_b[i], at_b[i + 1]


def _ecdf_pass(a: FloatArray, b: FloatArray, *, area: bool) -> tuple[float, float]:
    """The largest gap |F_a - F_b| over the pooled values of two sorted samples (the exact KS
    statistic) and, if ``area``, the area between the two ECDFs (the exact Wasserstein-1 distance).

    The pooled values are merged a block at a time (:func:`_blocks`), so that a million-row column
    needs a few arrays of a block's size on top of the samples, not a dozen of the pooled size.
    """
    n, m = a.size, b.size
    largest, parts = 0.0, []
    blocks = list(_blocks(a, b))
    for i, (a0, a1, b0, b1) in enumerate(blocks):
        pooled = np.concatenate([a[a0:a1], b[b0:b1]])
        order = np.argsort(pooled, kind="stable")  # two sorted runs: a merge, not a full sort
        pooled = pooled[order]
        # Counts as floats (exact below 2**53): the values below_a and below_b of the whole pass.
        below_a = np.cumsum(order < a1 - a0, dtype=np.float64)
        del order
        below_a += a0
        gaps = np.arange(a0 + b0 + 1, a0 + b0 + pooled.size + 1, dtype=np.float64)
        gaps -= below_a  # below_b
        gaps /= -m
        below_a /= n
        gaps += below_a
        np.abs(gaps, out=gaps)
        # A gap is valid at the last of equal values (earlier ties have not counted all of them
        # yet); a block's last value is always the last of its kind.
        # (Zeroing the others leaves the area alone: their widths are 0.)
        gaps[:-1] *= np.not_equal(pooled[:-1], pooled[1:])
        largest = max(largest, float(gaps.max()))
        if area:
            # Between equal pooled values the gap is wrong but the width is 0: the sum is exact.
            # (Not np.dot: BLAS threads cost more than they bring on blocks this size.)
            terms = np.subtract(pooled[1:], pooled[:-1], out=below_a[:-1])
            terms *= gaps[:-1]
            parts.append(float(terms.sum()))
            if i + 1 < len(blocks):
                a0, _, b0, _ = blocks[i + 1]
                following = min(a[a0] if a0 < n else np.inf, b[b0] if b0 < m else np.inf)
                parts.append(float(gaps[-1] * (following - pooled[-1])))
    return largest, math.fsum(parts)


def _sorted_ks(a: FloatArray, b: FloatArray) -> tuple[Significance, float | None]:
    """KS test of two sorted samples and, from the same pass when it is made, their Wasserstein-1."""
    if max(a.size, b.size) <= _KS_EXACT_MAX_N:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # scipy falling back to asymptotic
            r = scipy_stats().ks_2samp(a, b)
        return Significance(float(r.statistic), float(r.pvalue)), None
    finite = bool(np.isfinite(a[[0, -1]]).all() and np.isfinite(b[[0, -1]]).all())
    d, w = _ecdf_pass(a, b, area=finite)
    return Significance(d, _ks_p_value(d, a.size, b.size)), (w if finite else None)


def _sorted_wasserstein(a: FloatArray, b: FloatArray) -> float:
    return _ecdf_pass(a, b, area=True)[1]


def sort(x: FloatArray) -> FloatArray:
    """``x`` sorted (NaN-free input): as is when it already is, which a quicksort would not notice."""
    if x.size < 2 or bool(np.all(x[1:] >= x[:-1])):
        return x
    return np.sort(x)


def finite_part(x: FloatArray) -> FloatArray:
    """The finite values of a sorted, NaN-free sample (infinities sit at its ends)."""
    return x[np.searchsorted(x, -np.inf, side="right") : np.searchsorted(x, np.inf, side="left")]


def ks_exact(reference: npt.ArrayLike, current: npt.ArrayLike) -> Significance:
    """Two-sample Kolmogorov-Smirnov test on raw samples, two-sided.

    Equal to :func:`scipy.stats.ks_2samp` with ``method="auto"``: exact p-values up to 10,000 values
    per sample, Smirnov's asymptotic distribution beyond (computed here in one vectorised pass, so a
    million values take a fraction of a second). Infinite values are allowed, NaN is not.
    """
    a = np.sort(_sample(reference, "reference", finite=False))
    b = np.sort(_sample(current, "current", finite=False))
    return _sorted_ks(a, b)[0]


def sorted_ks_and_wasserstein(
    a: FloatArray, b: FloatArray
) -> tuple[Significance, float | None, float | None]:
    """:func:`ks_exact`, the Wasserstein-1 distance and :func:`wasserstein_normalized` at once.

    For two sorted, NaN-free, non-empty samples (the reference first): one sort each serves all
    three. The Wasserstein distances cover the finite values only (None when either sample has
    none); the normalised one is None when the reference's finite values are all equal.
    """
    ks, w = _sorted_ks(a, b)
    fa, fb = finite_part(a), finite_part(b)
    if w is None and fa.size and fb.size:
        w = _sorted_wasserstein(fa, fb)
    if w is None:
        return ks, None, None
    scale = _spread(fa)
    return ks, w, (w / scale if scale > 0 else None)


def _spread(sorted_finite: FloatArray) -> float:
    # Exactly 0 for a constant sample: np.std can return ~1e-17 when the mean is not representable.
    return 0.0 if sorted_finite[0] == sorted_finite[-1] else float(np.std(sorted_finite))


def wasserstein_normalized(
    reference: npt.ArrayLike, current: npt.ArrayLike, *, scale: float | None = None
) -> float | None:
    """Wasserstein-1 (earth mover's) distance of two finite samples over ``scale``.

    ``scale`` defaults to the reference's population standard deviation, which makes the distance
    unit-free: a pure shift of the mean by ``k`` standard deviations scores ``k``. Returns None when
    the scale is 0 (a constant reference), where the ratio is undefined.
    """
    a = np.sort(_sample(reference, "reference", finite=True))
    b = np.sort(_sample(current, "current", finite=True))
    s = _spread(a) if scale is None else float(scale)
    if not (math.isfinite(s) and s >= 0):
        raise ProfileError(f"wasserstein_normalized: scale must be finite and not negative, not {scale}")
    return _sorted_wasserstein(a, b) / s if s > 0 else None


def ks_binned(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> BinnedKS:
    """KS statistic from two histograms on the same bins (a profile's counts, in bin order).

    The statistic is the largest gap between the two empirical CDFs at the bin edges (the running
    shares of the counts). It never over-estimates the exact statistic of the samples behind the
    counts, and under-estimates it by at most ``bound``: the largest share of a single bin in either
    sample (under- and overflow included), since inside a bin each CDF moves by at most that bin's
    share. The p-value is Smirnov's asymptotic one at that statistic, so it is conservative
    (never below the exact test's, up to the approximation).
    """
    r, c = _pair(reference_counts, current_counts)
    fr, fc = np.cumsum(r) / r.sum(), np.cumsum(c) / c.sum()
    d = float(np.max(np.abs(fr - fc)))
    bound = float(max(np.max(r / r.sum()), np.max(c / c.sum())))
    return BinnedKS(d, _ks_p_value(d, round(r.sum()), round(c.sum())), bound)


def bin_points(edges: npt.ArrayLike) -> FloatArray:
    """Where :func:`wasserstein_binned` puts the mass of each bin of a numeric profile.

    Bins as in :class:`~modelward.drift.NumericProfile`: underflow, inner bins, overflow. An inner bin's
    mass sits at its midpoint, except in the first and last inner bins: on a reference's quantile
    edges those run out to its minimum and maximum, so they are wide and mostly empty, and a midpoint
    would make a few extreme values weigh like many. Their mass sits on their inner edge, and the
    underflow and overflow sit on the outermost edges. With one inner bin it is its midpoint; one
    edge ``c`` puts all three bins at ``c``; no edges give a single bin at 0.
    """
    e = np.asarray(edges, dtype=np.float64)
    if e.size == 0:
        return np.zeros(1)
    inner = e[:1] if e.size == 1 else e[:-1] / 2 + e[1:] / 2  # halves first: no overflow
    if e.size >= 3:
        inner[0], inner[-1] = e[1], e[-2]
    return np.concatenate([e[:1], inner, e[-1:]])


def wasserstein_binned(
    edges: npt.ArrayLike,
    reference_counts: npt.ArrayLike,
    current_counts: npt.ArrayLike,
    *,
    scale: float = 1.0,
    mean_shift: float = 0.0,
) -> float | None:
    """Estimate of the Wasserstein-1 distance of two samples from their histograms, over ``scale``.

    :func:`scipy.stats.wasserstein_distance` of the histograms, each bin's mass on its
    :func:`bin_points`, or ``|mean_shift|`` if larger: the difference of the two samples' means, when
    known (profiles carry exact sums), is a lower bound of the distance and equals it for a pure
    shift. Changes within the outermost bins are under-estimated (see ``docs/drift.md``). None
    when ``scale`` is 0.
    """
    r, c = _pair(reference_counts, current_counts)
    x = bin_points(edges)
    if x.shape != r.shape:
        raise ProfileMismatch(f"{x.size} bins from the edges but {r.size} counts")
    if not (math.isfinite(scale) and scale >= 0):
        raise ProfileError(f"wasserstein_binned: scale must be finite and not negative, not {scale}")
    if scale == 0:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        w = max(float(scipy_stats().wasserstein_distance(x, x, r, c)), abs(mean_shift))
    return w / scale if math.isfinite(w) else None


def chi_square(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> Significance:
    """Pearson's chi-square test of homogeneity of two samples' category counts.

    :func:`scipy.stats.chi2_contingency` on the 2 x k table, without Yates' correction. Categories
    empty in both samples have an expected count of 0 and are left out (they carry no information);
    with fewer than two categories left the samples cannot differ: statistic 0, p-value 1. Like every
    chi-square test it is approximate when expected counts are below about 5.
    """
    r, c = _pair(reference_counts, current_counts)
    keep = (r + c) > 0
    if np.count_nonzero(keep) < 2:
        return Significance(0.0, 1.0)
    result = scipy_stats().chi2_contingency(np.vstack([r[keep], c[keep]]), correction=False)
    return Significance(float(result.statistic), float(result.pvalue))
