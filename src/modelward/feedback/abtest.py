"""A/B test statistics: per-arm counts in, a typed report with a plain-language verdict out.

Pure numbers, no I/O. The caller gathers one :class:`ArmData` per arm (model version) from feedback
and calls :func:`analyze`. Each non-control arm is compared with the control by a fixed-horizon test
(two-proportion z or Welch t) and by an always-valid mSPRT p-value that stays valid however often
the report is looked at; a chi-square check of the traffic split (sample ratio mismatch) runs when
the configured weights are given. The statistics are explained in docs/ab-testing.md.

Values that cannot be computed yet (the mean of an empty arm, a variance from one sample) are
``None``, never NaN, so every report serialises to strict JSON.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from modelward._lazy import scipy_stats
from modelward.errors import (
    ABTestError,  # importable here as before
)
from modelward.feedback import _abstats as f
from modelward.feedback._verdict import verdict

__all__ = [
    "ABReport",
    "ABTestError",
    "ArmData",
    "ArmSummary",
    "Comparison",
    "Kind",
    "SampleRatioCheck",
    "analyze",
    "check_sample_ratio",
    "sequential_p_value",
]

Kind = Literal["binary", "continuous"]


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ABTestError(f"{what} must be an integer, got {value!r}")
    if int(value) < 0:
        raise ABTestError(f"{what} must not be negative, got {value}")
    return int(value)


def _real(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ABTestError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _probability(value: float, what: str) -> float:
    x = _real(value, what)
    if not 0 < x < 1:
        raise ABTestError(f"{what} must lie strictly between 0 and 1, got {value}")
    return x


@dataclass(frozen=True, slots=True)
class ArmData:
    """What the caller gathers per arm: a binary outcome (``successes``) or a continuous one (sums)."""

    name: str
    n: int  # samples with an outcome
    successes: int | None = None  # binary outcome (conversion, correct prediction)
    total: float | None = None  # continuous outcome: sum
    total_sq: float | None = None  # continuous outcome: sum of squares

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ABTestError(f"an arm needs a non-empty name, got {self.name!r}")
        n = _count(self.n, f"arm '{self.name}': n")
        object.__setattr__(self, "n", n)
        if self.successes is not None:
            if self.total is not None or self.total_sq is not None:
                raise ABTestError(f"arm '{self.name}' has both successes and sums; give one outcome kind")
            s = _count(self.successes, f"arm '{self.name}': successes")
            if s > n:
                raise ABTestError(f"arm '{self.name}' has more successes ({s}) than samples ({n})")
            object.__setattr__(self, "successes", s)
            return
        if self.total is None or self.total_sq is None:
            raise ABTestError(
                f"arm '{self.name}' needs successes (binary outcome) or total and total_sq (continuous)"
            )
        total = _real(self.total, f"arm '{self.name}': total")
        total_sq = _real(self.total_sq, f"arm '{self.name}': total_sq")
        # Cauchy-Schwarz: total^2 <= n * total_sq for real values (with room for rounding).
        if total_sq < 0 or total * total > n * total_sq * (1 + 1e-9) + 1e-12:
            raise ABTestError(f"arm '{self.name}': total and total_sq cannot come from {n} real values")
        object.__setattr__(self, "total", total)
        object.__setattr__(self, "total_sq", total_sq)

    @property
    def kind(self) -> Kind:
        return "binary" if self.successes is not None else "continuous"

    @classmethod
    def binary(cls, name: str, outcomes: ArrayLike) -> ArmData:
        """From raw 0/1 (or boolean) outcomes."""
        values = _vector(outcomes, name)
        if not np.isin(values, (0.0, 1.0)).all():
            raise ABTestError(f"arm '{name}': binary outcomes must be 0 or 1 (or booleans)")
        return cls(name, int(values.size), successes=int(np.count_nonzero(values)))

    @classmethod
    def continuous(cls, name: str, values: ArrayLike) -> ArmData:
        """From raw numeric outcomes (finite)."""
        x = _vector(values, name)
        if not np.isfinite(x).all():
            raise ABTestError(f"arm '{name}': outcomes must be finite numbers")
        return cls(name, int(x.size), total=float(x.sum()), total_sq=float(np.dot(x, x)))


def _vector(values: ArrayLike, name: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ABTestError(f"arm '{name}': outcomes must be numbers ({exc})") from None
    if x.ndim != 1:
        raise ABTestError(f"arm '{name}': outcomes must be one-dimensional, got shape {x.shape}")
    return x


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """One arm: its mean (a rate for binary outcomes) with a 1 - alpha interval; None when n is too small."""

    name: str
    n: int
    mean: float | None  # None when n == 0
    ci_low: float | None  # None when n == 0 (binary) or n < 2 (continuous)
    ci_high: float | None
    expected_share: float | None  # configured share of traffic; None without weights
    observed_share: float  # share of all samples with an outcome (0.0 when there are none)


@dataclass(frozen=True, slots=True)
class Comparison:
    """Treatment minus control. Statistics are None while an arm has too few samples (see ``analyze``)."""

    control: str
    treatment: str
    difference: float | None
    ci_low: float | None  # at 1 - alpha
    ci_high: float | None
    relative_lift: float | None  # difference / control mean; None when the control mean is 0 or unknown
    p_value: float | None  # fixed-horizon: two-proportion z-test (pooled SE) or Welch's t-test
    test: Literal["two-proportion z", "welch t"]
    sequential_p_value: float | None  # always-valid mSPRT p-value
    mde: float | None  # minimum detectable absolute effect at the current sizes, alpha and power
    significant: bool  # p_value < alpha
    sequential_significant: bool  # sequential_p_value < alpha


@dataclass(frozen=True, slots=True)
class SampleRatioCheck:
    """Chi-square goodness of fit of the arms' sample counts to the configured traffic weights."""

    chi2: float
    p_value: float
    mismatch: bool  # p_value < srm_alpha
    expected: dict[str, float]  # expected counts
    observed: dict[str, int]


@dataclass(frozen=True, slots=True)
class ABReport:
    metric: str
    kind: Kind
    alpha: float
    power: float
    arms: tuple[ArmSummary, ...]
    comparisons: tuple[Comparison, ...]
    srm: SampleRatioCheck | None
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts, lists, str, int, float, bool and None: ``json.dumps`` needs no ``default=``."""
        out: dict[str, Any] = asdict(self)
        out["arms"] = list(out["arms"])
        out["comparisons"] = list(out["comparisons"])
        return out


def sequential_p_value(d: float, v: float, tau2: float, previous: float = 1.0) -> float:
    """Always-valid mSPRT p-value after one more look: ``min(previous, 1 / Lambda)``.

    ``d`` is the observed difference of means, ``v`` its estimated variance (var_t/n_t + var_c/n_c),
    ``tau2`` the variance of the normal mixture N(0, tau^2) over effects, and ``previous`` the value
    returned at the previous look (1.0 at the first), which keeps the sequence non-increasing."""
    d_ = _real(d, "d")
    v_ = _real(v, "v")
    t_ = _real(tau2, "tau2")
    prev = _real(previous, "previous")
    if v_ < 0 or t_ < 0:
        raise ABTestError(f"v and tau2 must not be negative, got v={v}, tau2={tau2}")
    if not 0 <= prev <= 1:
        raise ABTestError(f"previous must be a p-value in [0, 1], got {previous}")
    return float(f.msprt_p_value(d_, v_, t_, prev))


def check_sample_ratio(
    counts: Mapping[str, int], weights: Mapping[str, float], *, srm_alpha: float = 0.001
) -> SampleRatioCheck:
    """Chi-square test of observed sample counts against the configured traffic split."""
    srm_alpha = _probability(srm_alpha, "srm_alpha")
    if set(counts) != set(weights):
        raise ABTestError(
            f"weights name arms {sorted(weights)} but the arms are {sorted(counts)}; give one weight per arm"
        )
    if len(counts) < 2:
        raise ABTestError("a sample ratio check needs at least two arms")
    names = list(counts)
    observed = {k: _count(counts[k], f"arm '{k}': n") for k in names}
    w = [_real(weights[k], f"weight of arm '{k}'") for k in names]
    if min(w) <= 0:
        raise ABTestError(f"traffic weights must be positive, got {dict(weights)}")
    total = sum(observed.values())
    expected = {k: total * wk / sum(w) for k, wk in zip(names, w, strict=True)}
    if total == 0:
        return SampleRatioCheck(0.0, 1.0, False, expected, observed)
    res = scipy_stats().chisquare([observed[k] for k in names], [expected[k] for k in names])
    p = float(res.pvalue)
    return SampleRatioCheck(float(res.statistic), p, p < srm_alpha, expected, observed)


@dataclass(frozen=True, slots=True)
class _Moments:
    n: int
    mean: float | None
    var: float | None  # p(1-p) for binary outcomes, the sample variance (ddof=1) for continuous ones


def _moments(arm: ArmData) -> _Moments:
    if arm.n == 0:
        return _Moments(0, None, None)
    if arm.successes is not None:
        p = arm.successes / arm.n
        return _Moments(arm.n, p, p * (1 - p))
    total, total_sq = arm.total or 0.0, arm.total_sq or 0.0  # never None here: ArmData checks
    mean = total / arm.n
    if arm.n < 2:
        return _Moments(arm.n, mean, None)
    return _Moments(arm.n, mean, max(0.0, (total_sq - total * mean) / (arm.n - 1)))


def _summary(arm: ArmData, m: _Moments, alpha: float, share: float | None, total: int) -> ArmSummary:
    lo: float | None = None
    hi: float | None = None
    if arm.successes is not None and arm.n > 0:
        lo_a, hi_a = f.wilson_interval(arm.successes, arm.n, alpha)
        lo, hi = float(lo_a), float(hi_a)
    elif m.mean is not None and m.var is not None:
        half = float(scipy_stats().t.ppf(1 - alpha / 2, m.n - 1)) * math.sqrt(m.var / m.n)
        lo, hi = m.mean - half, m.mean + half
    observed = arm.n / total if total else 0.0
    return ArmSummary(arm.name, arm.n, m.mean, lo, hi, share, observed)


def _compare(
    c: ArmData, t: ArmData, mc: _Moments, mt: _Moments, alpha: float, power: float, tau2: float | None
) -> Comparison:
    test: Literal["two-proportion z", "welch t"] = "two-proportion z" if c.kind == "binary" else "welch t"
    diff = None if mc.mean is None or mt.mean is None else mt.mean - mc.mean
    lift = None if diff is None or not mc.mean else diff / mc.mean
    if mc.var is None or mt.var is None:  # an empty arm, or a continuous arm with one sample
        return Comparison(c.name, t.name, diff, None, None, lift, None, test, None, None, False, False)
    if c.successes is not None and t.successes is not None:
        d_a, lo_a, hi_a, p_a, v_a = f.two_proportion(c.successes, c.n, t.successes, t.n, alpha)
        d, lo, hi, p, v = float(d_a), float(lo_a), float(hi_a), float(p_a), float(v_a)
        rate = (c.successes + t.successes) / (c.n + t.n)
        s2 = rate * (1 - rate)
        default_tau2 = float(f.default_mixture_variance_binary(rate))
    else:
        d, lo, hi, p, v = f.welch(mc.mean or 0.0, mc.var, mc.n, mt.mean or 0.0, mt.var, mt.n, alpha)
        s2 = f.pooled_variance(mc.var, mc.n, mt.var, mt.n)
        default_tau2 = float(f.default_mixture_variance_continuous(s2))
    seq = float(f.msprt_p_value(d, v, default_tau2 if tau2 is None else tau2))
    mde = float(f.mde(s2, mc.n, mt.n, alpha, power))
    return Comparison(c.name, t.name, d, lo, hi, lift, p, test, seq, mde, p < alpha, seq < alpha)


def analyze(
    arms: Sequence[ArmData],
    *,
    control: str | None = None,
    weights: Mapping[str, float] | None = None,
    metric: str = "outcome",
    alpha: float = 0.05,
    power: float = 0.8,
    mixture_variance: float | None = None,
    srm_alpha: float = 0.001,
) -> ABReport:
    """Compare every arm with the control (default: the first arm) and check the traffic split.

    ``weights`` (the configured split, any positive scale) enables the sample ratio check.
    ``mixture_variance`` overrides tau^2 of the mSPRT; by default it is (0.1 * min(p, 1 - p))^2 for
    binary outcomes (p the pooled rate) and (0.1 * s)^2 for continuous ones (s the pooled standard
    deviation). Comparison statistics are None until both arms have at least one sample (binary) or
    two (continuous)."""
    arms = tuple(arms)
    if len(arms) < 2:
        raise ABTestError(f"an A/B test needs at least two arms, got {len(arms)}")
    for arm in arms:
        if not isinstance(arm, ArmData):
            raise ABTestError(f"arms must be ArmData, got {type(arm).__name__}")
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ABTestError(f"arm names must be unique, got {names}")
    kinds = {a.kind for a in arms}
    if len(kinds) > 1:
        raise ABTestError("arms mix binary (successes) and continuous (total, total_sq) outcomes")
    alpha = _probability(alpha, "alpha")
    power = _probability(power, "power")
    srm_alpha = _probability(srm_alpha, "srm_alpha")
    if mixture_variance is not None and _real(mixture_variance, "mixture_variance") <= 0:
        raise ABTestError(f"mixture_variance must be positive, got {mixture_variance}")
    control = names[0] if control is None else control
    if control not in names:
        raise ABTestError(f"control '{control}' is not one of the arms {names}")

    srm = None
    shares: dict[str, float | None] = dict.fromkeys(names)
    if weights is not None:
        srm = check_sample_ratio({a.name: a.n for a in arms}, weights, srm_alpha=srm_alpha)
        total_w = sum(float(weights[k]) for k in names)
        shares = {k: float(weights[k]) / total_w for k in names}

    moments = {a.name: _moments(a) for a in arms}
    total = sum(a.n for a in arms)
    summaries = tuple(_summary(a, moments[a.name], alpha, shares[a.name], total) for a in arms)
    ctrl = arms[names.index(control)]
    tau2 = None if mixture_variance is None else float(mixture_variance)
    comparisons = tuple(
        _compare(ctrl, a, moments[control], moments[a.name], alpha, power, tau2)
        for a in arms
        if a.name != control
    )
    kind: Kind = arms[0].kind
    text = verdict(kind, metric, alpha, power, summaries, comparisons, srm)
    return ABReport(metric, kind, alpha, power, summaries, comparisons, srm, text)
