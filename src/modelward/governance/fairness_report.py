"""The shape of a fairness report: per group, per sensitive feature, and over all of them.

Frozen dataclasses; ``to_dict()`` is JSON (no NaN: a figure that cannot be computed is None). The
audit that fills them is :func:`modelward.governance.fairness.audit_fairness`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "FOUR_FIFTHS",
    "MISSING_GROUP",
    "FairnessReport",
    "FeatureFairness",
    "FourFifths",
    "GroupMetrics",
    "Measure",
    "WorstGap",
    "finite",
]

FOUR_FIFTHS = 0.8
MISSING_GROUP = "(missing)"
Measure = Literal["demographic_parity", "equalized_odds"]


def finite(value: Any) -> float | None:
    """A finite float, or None (JSON has no NaN)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class GroupMetrics:
    group: str
    count: int
    selection_rate: float | None
    labelled: int = 0
    accuracy: float | None = None
    tpr: float | None = None
    fpr: float | None = None
    auc: float | None = None
    small: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "count": self.count,
            "labelled": self.labelled,
            "selection_rate": self.selection_rate,
            "accuracy": self.accuracy,
            "tpr": self.tpr,
            "fpr": self.fpr,
            "auc": self.auc,
            "small": self.small,
        }


@dataclass(frozen=True, slots=True)
class FourFifths:
    """The four-fifths rule over the judged groups: lowest selection rate / highest >= 0.8."""

    passed: bool | None  # None: fewer than two groups to compare
    worst_group: str | None
    best_group: str | None
    ratio: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "worst_group": self.worst_group,
            "best_group": self.best_group,
            "ratio": self.ratio,
            "threshold": FOUR_FIFTHS,
        }


@dataclass(frozen=True, slots=True)
class WorstGap:
    """Which group fares worst on a measure, against which, and by how much."""

    feature: str
    measure: str  # demographic_parity | equalized_odds
    metric: str  # the per-group rate compared: selection_rate | tpr | fpr
    group: str
    reference: str
    difference: float
    ratio: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "measure": self.measure,
            "metric": self.metric,
            "group": self.group,
            "reference": self.reference,
            "difference": self.difference,
            "ratio": self.ratio,
        }

    def describe(self) -> str:
        return (
            f"{self.feature}={self.group} differs from {self.feature}={self.reference} "
            f"by {self.difference:.4f} in {self.metric.replace('_', ' ')}"
        )


@dataclass(frozen=True, slots=True)
class FeatureFairness:
    feature: str
    groups: tuple[GroupMetrics, ...]
    demographic_parity_difference: float | None
    demographic_parity_ratio: float | None
    equalized_odds_difference: float | None  # None without labels
    four_fifths: FourFifths
    banded: bool = False
    notes: tuple[str, ...] = ()

    @property
    def judged(self) -> tuple[GroupMetrics, ...]:
        return tuple(g for g in self.groups if not g.small)

    @property
    def small_groups(self) -> tuple[str, ...]:
        return tuple(g.group for g in self.groups if g.small)

    def worst_gap(self, measure: Measure = "demographic_parity") -> WorstGap | None:
        """The judged group furthest from the best one on ``measure`` (None when it cannot be told)."""
        judged = self.judged
        if measure == "demographic_parity":
            rated = [(g.selection_rate, g.group) for g in judged if g.selection_rate is not None]
            if len(rated) < 2:
                return None
            low, high = min(rated), max(rated)
            ratio = low[0] / high[0] if high[0] > 0 else None
            return WorstGap(self.feature, measure, "selection_rate", low[1], high[1], high[0] - low[0], ratio)
        best: WorstGap | None = None
        for metric in ("tpr", "fpr"):
            rates = [(getattr(g, metric), g.group) for g in judged if getattr(g, metric) is not None]
            if len(rates) < 2:
                continue
            low, high = min(rates), max(rates)
            # A low TPR hurts a group (missed positives); a high FPR does (false alarms).
            group, reference = (low[1], high[1]) if metric == "tpr" else (high[1], low[1])
            gap = WorstGap(self.feature, measure, metric, group, reference, high[0] - low[0], None)
            if best is None or gap.difference > best.difference:
                best = gap
        return best

    def to_dict(self) -> dict[str, Any]:
        gap = self.worst_gap()
        return {
            "feature": self.feature,
            "banded": self.banded,
            "groups": [g.to_dict() for g in self.groups],
            "small_groups": list(self.small_groups),
            "demographic_parity_difference": self.demographic_parity_difference,
            "demographic_parity_ratio": self.demographic_parity_ratio,
            "equalized_odds_difference": self.equalized_odds_difference,
            "four_fifths": self.four_fifths.to_dict(),
            "worst_gap": None if gap is None else gap.to_dict(),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class FairnessReport:
    features: tuple[FeatureFairness, ...]
    rows: int
    labelled: int  # rows with a label
    positive_label: Any
    min_group: int
    bins: int
    has_scores: bool
    notes: tuple[str, ...] = field(default=())

    @property
    def has_labels(self) -> bool:
        return self.labelled > 0

    def feature(self, name: str) -> FeatureFairness:
        for f in self.features:
            if f.feature == name:
                return f
        raise KeyError(name)

    def worst_gap(self, measure: Measure = "demographic_parity") -> WorstGap | None:
        """The largest gap on ``measure`` over every sensitive feature."""
        gaps = [g for g in (f.worst_gap(measure) for f in self.features) if g is not None]
        return max(gaps, key=lambda g: g.difference) if gaps else None

    def to_dict(self) -> dict[str, Any]:
        gap = self.worst_gap()
        positive = self.positive_label
        if hasattr(positive, "item"):
            positive = positive.item()
        return {
            "rows": self.rows,
            "labelled": self.labelled,
            "positive_label": positive if isinstance(positive, (int, float, str, bool)) else str(positive),
            "min_group": self.min_group,
            "bins": self.bins,
            "has_labels": self.has_labels,
            "has_scores": self.has_scores,
            "features": [f.to_dict() for f in self.features],
            "worst_gap": None if gap is None else gap.to_dict(),
            "notes": list(self.notes),
        }
