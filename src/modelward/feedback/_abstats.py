"""The formulas behind :mod:`modelward.feedback.abtest`, written once and array-capable.

Every function takes floats or NumPy arrays (broadcast together) and returns float64 arrays, so the
report for one experiment and a simulation of thousands of experiments run the same code. Callers
guarantee the preconditions named in each docstring; degenerate inputs (zero variance) are handled
here without NumPy warnings.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

from modelward._lazy import scipy_stats

FloatArray = npt.NDArray[np.float64]

#: Default mixture scale, as a fraction of the outcome's natural unit (see docs/ab-testing.md).
MIXTURE_FRACTION = 0.1


def _f(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


@lru_cache(maxsize=64)
def z_quantile(q: float) -> float:
    """The standard normal quantile z_q, e.g. 1.96 for q = 0.975 (cached: SciPy's ppf costs ~0.3 ms)."""
    return float(scipy_stats().norm.ppf(q))


def wilson_interval(
    successes: npt.ArrayLike, n: npt.ArrayLike, alpha: float
) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval for a proportion at level 1 - alpha; needs n >= 1.

    Equal to ``scipy.stats.binomtest(k, n).proportion_ci(1 - alpha, method="wilson")``, without the
    exact binomial p-value that binomtest computes on the way (about a millisecond per call)."""
    k, m = _f(successes), _f(n)
    z = z_quantile(1 - alpha / 2)
    p = k / m
    centre = (p + z * z / (2 * m)) / (1 + z * z / m)
    half = z / (1 + z * z / m) * np.sqrt(p * (1 - p) / m + z * z / (4 * m * m))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def two_proportion(
    s_c: npt.ArrayLike, n_c: npt.ArrayLike, s_t: npt.ArrayLike, n_t: npt.ArrayLike, alpha: float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Two-proportion z-test of treatment minus control; needs n_c, n_t >= 1.

    Returns (difference, ci_low, ci_high, p_value, variance): the test uses the pooled standard error
    (the null hypothesis says both arms share one rate), the confidence interval and the returned
    variance of the difference use the unpooled one."""
    sc, nc, st, nt = _f(s_c), _f(n_c), _f(s_t), _f(n_t)
    p_c, p_t = sc / nc, st / nt
    d = p_t - p_c
    pooled = (sc + st) / (nc + nt)
    se0 = np.sqrt(pooled * (1 - pooled) * (1 / nc + 1 / nt))
    # se0 == 0 only when every outcome in both arms is the same, and then d == 0: no evidence.
    z = np.divide(d, se0, out=np.zeros_like(d), where=se0 > 0)
    p_value = 2 * scipy_stats().norm.sf(np.abs(z))
    var = p_t * (1 - p_t) / nt + p_c * (1 - p_c) / nc
    half = z_quantile(1 - alpha / 2) * np.sqrt(var)
    return d, d - half, d + half, _f(p_value), var


def welch(
    mean_c: float, var_c: float, n_c: int, mean_t: float, var_t: float, n_t: int, alpha: float
) -> tuple[float, float, float, float, float]:
    """Welch's t-test of treatment minus control from summary statistics; needs n_c, n_t >= 2.

    Returns (difference, ci_low, ci_high, p_value, variance of the difference). The p-value is
    SciPy's ``ttest_ind_from_stats(..., equal_var=False)``; the interval uses the same
    Welch-Satterthwaite degrees of freedom."""
    d = mean_t - mean_c
    a, b = var_t / n_t, var_c / n_c
    v = a + b
    if v <= 0:  # both arms constant: the difference is known exactly
        return d, d, d, (1.0 if d == 0 else 0.0), 0.0
    result = scipy_stats().ttest_ind_from_stats(
        mean_t, np.sqrt(var_t), n_t, mean_c, np.sqrt(var_c), n_c, equal_var=False
    )
    df = v * v / (a * a / (n_t - 1) + b * b / (n_c - 1))
    half = float(scipy_stats().t.ppf(1 - alpha / 2, df)) * float(np.sqrt(v))
    return d, d - half, d + half, float(result.pvalue), v


def pooled_variance(var_c: float, n_c: int, var_t: float, n_t: int) -> float:
    """Within-arm variance pooled over two arms (sample variances, n_c + n_t > 2)."""
    return ((n_c - 1) * var_c + (n_t - 1) * var_t) / (n_c + n_t - 2)


def default_mixture_variance_binary(pooled_rate: npt.ArrayLike) -> FloatArray:
    """tau^2 = (0.1 * min(p, 1 - p))^2: a 10% relative change of the rarer outcome."""
    p = _f(pooled_rate)
    return (MIXTURE_FRACTION * np.minimum(p, 1 - p)) ** 2


def default_mixture_variance_continuous(pooled_var: npt.ArrayLike) -> FloatArray:
    """tau^2 = 0.1^2 * s^2: a standardised effect (Cohen's d) of 0.1."""
    return MIXTURE_FRACTION**2 * _f(pooled_var)


def msprt_p_value(
    d: npt.ArrayLike, v: npt.ArrayLike, tau2: npt.ArrayLike, previous: npt.ArrayLike = 1.0
) -> FloatArray:
    """Always-valid p-value min(previous, 1 / Lambda) of the normal-mixture SPRT.

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 d^2 / (2 V (V + tau^2))), computed in log space.
    Limits: tau^2 = 0 mixes over nothing (Lambda = 1); V = 0 with d != 0 is certain evidence
    (Lambda = inf); V = 0 with d = 0 is none (Lambda -> 0)."""
    d_, v_, t_, prev = np.broadcast_arrays(_f(d), _f(v), _f(tau2), _f(previous))
    regular = (v_ > 0) & (t_ > 0)
    vs = np.where(regular, v_, 1.0)
    ts = np.where(regular, t_, 1.0)
    log_lambda = 0.5 * np.log(vs / (vs + ts)) + ts * d_ * d_ / (2 * vs * (vs + ts))
    log_lambda = np.where(regular, log_lambda, 0.0)
    log_lambda = np.where((t_ > 0) & (v_ <= 0), np.where(d_ != 0, np.inf, -np.inf), log_lambda)
    return _f(np.minimum(prev, np.exp(-np.maximum(log_lambda, 0.0))))


def mde(var: npt.ArrayLike, n_c: npt.ArrayLike, n_t: npt.ArrayLike, alpha: float, power: float) -> FloatArray:
    """Minimum detectable absolute effect: (z_{1-alpha/2} + z_power) * sqrt(s^2/n_c + s^2/n_t)."""
    s2 = _f(var)
    return (z_quantile(1 - alpha / 2) + z_quantile(power)) * np.sqrt(s2 / _f(n_c) + s2 / _f(n_t))
