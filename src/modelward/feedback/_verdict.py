"""The plain-language verdict of an A/B report (see :func:`modelward.feedback.abtest.analyze`).

Precedence: a sample ratio mismatch overrides everything (the numbers cannot be trusted); then, per
comparison, sequential significance (valid under repeated looks), then fixed-horizon significance
only (phrased as not yet conclusive), then "no detectable difference yet" with the MDE.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelward.feedback.abtest import ArmSummary, Comparison, Kind, SampleRatioCheck


def _decimals(scale: float | None, least: int = 1) -> int:
    """Enough decimals to show one significant digit of ``scale`` (an interval half-width)."""
    if scale is None or not scale > 0 or not math.isfinite(scale):
        return least
    return min(6, max(least, -math.floor(math.log10(scale))))


def _split(summaries: Sequence[ArmSummary]) -> str:
    """'traffic split is 52/48 but 50/50 was configured', with decimals until the two differ."""
    observed = [s.observed_share for s in summaries]
    expected = [s.expected_share or 0.0 for s in summaries]
    for dec in range(3):
        obs = "/".join(f"{100 * v:.{dec}f}" for v in observed)
        exp = "/".join(f"{100 * v:.{dec}f}" for v in expected)
        if obs != exp:
            break
    return f"traffic split is {obs} but {exp} was configured"


class _Fmt:
    def __init__(self, kind: Kind, scale: float | None) -> None:
        self.binary = kind == "binary"
        # Binary: one significant digit of the half-width in points; continuous: two.
        if scale is None:
            self.dec = 1
        elif self.binary:
            self.dec = _decimals(100 * scale)
        else:
            self.dec = _decimals(scale / 10, least=0)

    def value(self, x: float) -> str:
        return f"{100 * x:.{self.dec}f}%" if self.binary else f"{x:,.{self.dec}f}"

    def delta(self, x: float, unit: bool = True) -> str:
        if self.binary:
            return f"{100 * x:+.{self.dec}f}" + (" points" if unit else "")
        return f"{x:+,.{self.dec}f}"

    def size(self, x: float) -> str:
        return f"{100 * x:.{self.dec}f} points" if self.binary else f"{x:,.{self.dec}f}"


def _sentence(
    c: Comparison,
    kind: Kind,
    metric: str,
    alpha: float,
    power: float,
    means: dict[str, float | None],
    sizes: dict[str, int],
    several: bool,
) -> str:
    label = metric if kind == "binary" else f"mean {metric}"
    plain = kind == "binary" and metric == "outcome"
    d, lo, hi = c.difference, c.ci_low, c.ci_high
    mt, mc = means[c.treatment], means[c.control]
    decided = c.sequential_significant or c.significant
    if decided and d is not None and lo is not None and hi is not None and mt is not None and mc is not None:
        up = d > 0
        fmt = _Fmt(kind, (hi - lo) / 2)
        effect = (
            f"{fmt.value(mt)} vs {fmt.value(mc)} ({fmt.delta(d)}, {100 * (1 - alpha):g}% CI "
            f"{fmt.delta(lo, unit=False)} to {fmt.delta(hi, unit=False)})"
        )
        if c.sequential_significant:
            if plain:
                claim = f"converts {'better' if up else 'worse'} than"
            else:
                claim = f"has a {'higher' if up else 'lower'} {label} than"
            return (
                f"{c.treatment} {claim} {c.control}: {effect}. "
                "This holds even though the report was checked repeatedly."
            )
        if plain:
            look = f"looks {'better' if up else 'worse'} than"
        else:
            look = f"looks {'higher' if up else 'lower'} on {label} than"
        return (
            f"{c.treatment} {look} {c.control}: {effect}, but this is not yet conclusive "
            "under repeated checking; keep the test running."
        )
    head = "No detectable difference yet"
    if several:
        head = f"No detectable difference between {c.treatment} and {c.control} yet"
    n_c, n_t = sizes[c.control], sizes[c.treatment]
    with_n = (
        f"with {n_c:,} samples per arm"
        if n_c == n_t
        else f"with {n_c:,} samples in {c.control} and {n_t:,} in {c.treatment}"
    )
    if not c.mde:
        return f"{head}: {with_n} every outcome so far is the same; keep the test running."
    fmt = _Fmt(kind, c.mde)
    return (
        f"{head}: {with_n} only a difference of {fmt.size(c.mde)} or more would reliably show up "
        f"({100 * power:g}% power); keep the test running."
    )


def verdict(
    kind: Kind,
    metric: str,
    alpha: float,
    power: float,
    summaries: Sequence[ArmSummary],
    comparisons: Sequence[Comparison],
    srm: SampleRatioCheck | None,
) -> str:
    if srm is not None and srm.mismatch:
        return f"Do not trust these numbers: {_split(summaries)} (sample ratio mismatch)."
    least = 1 if kind == "binary" else 2
    short = [s for s in summaries if s.n < least]
    if short:
        names = ", ".join(f"{s.name} has {s.n:,}" for s in short)
        plural = "" if least == 1 else "s"
        return (
            f"Not enough data yet: every arm needs at least {least} sample{plural} with an outcome ({names})."
        )
    means = {s.name: s.mean for s in summaries}
    sizes = {s.name: s.n for s in summaries}
    several = len(comparisons) > 1
    return " ".join(_sentence(c, kind, metric, alpha, power, means, sizes, several) for c in comparisons)
