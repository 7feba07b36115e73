"""Fairness audits: how a version's decisions fall across groups of people, measured with Fairlearn.

Per sensitive feature and group: count, selection rate, accuracy, true and false positive rates and
(where scores exist) AUC, through ``fairlearn.metrics.MetricFrame``; per feature the demographic
parity difference and ratio and the equalized odds difference from Fairlearn's own functions, and the
four-fifths rule (the lowest group selection rate is at least 80 % of the highest).

Groups smaller than ``min_group`` rows are listed and flagged ``small`` but left out of the verdicts
(the parity figures and the four-fifths rule are computed over the other groups), because a rate from
a handful of rows says little. A numeric sensitive column with more than ``bins`` distinct values is
cut into quantile bands labelled by the values they hold ("18-30"). Without labels (``y_true`` None,
or every label missing) the report has selection rates and demographic parity only; rows whose label
is missing count for the selection rates and not for the label metrics.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from modelward.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FOUR_FIFTHS",
    "FairnessReport",
    "FeatureFairness",
    "FourFifths",
    "GroupMetrics",
    "WorstGap",
    "audit_fairness",
]

FOUR_FIFTHS = 0.8
MISSING_GROUP = "(missing)"
Measure = Literal["demographic_parity", "equalized_odds"]


def _num(value: Any) -> float | None:
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


# -- grouping ------------------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _groups(column: pd.Series, bins: int) -> tuple[np.ndarray, list[str], bool]:
    """The group label of each row, the labels in display order, and whether the column was banded."""
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if is_numeric_dtype(column) and not is_bool_dtype(column) and column.nunique(dropna=True) > bins:
        codes = pd.qcut(column, q=bins, labels=False, duplicates="drop")
        labels = np.full(len(column), MISSING_GROUP, dtype=object)
        order: list[str] = []
        for code in sorted(int(c) for c in codes.dropna().unique()):
            inside = (codes == code).to_numpy()
            values = column.to_numpy()[inside]
            low, high = float(np.min(values)), float(np.max(values))
            label = _fmt(low) if low == high else f"{_fmt(low)}-{_fmt(high)}"
            labels[inside] = label
            order.append(label)
        if bool(column.isna().any()):
            order.append(MISSING_GROUP)
        return labels, order, True
    texts = np.array([MISSING_GROUP if pd.isna(v) else str(v) for v in column.tolist()], dtype=object)
    return texts, sorted(set(texts.tolist())), False


# -- metrics -------------------------------------------------------------------------------------------


def _auc(y_true: np.ndarray, y_score: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y_true)) < 2:
        return None
    return _num(roc_auc_score(y_true, y_score))


def _quiet(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Fairlearn and scikit-learn warn on a group with one class; the report says so itself (None)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(*args, **kwargs)


def _feature(
    name: str,
    column: pd.Series,
    pred: np.ndarray,
    truth: np.ndarray | None,
    labelled: np.ndarray,
    score: np.ndarray | None,
    *,
    min_group: int,
    bins: int,
) -> FeatureFairness:
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score

    groups, order, banded = _groups(column, bins)
    rates = MetricFrame(metrics=selection_rate, y_true=pred, y_pred=pred, sensitive_features=groups).by_group
    label_frame: Any = None
    if truth is not None and labelled.any():
        label_frame = _quiet(
            MetricFrame,
            metrics={"accuracy": accuracy_score, "tpr": true_positive_rate, "fpr": false_positive_rate},
            y_true=truth[labelled],
            y_pred=pred[labelled],
            sensitive_features=groups[labelled],
        ).by_group
    rows: list[GroupMetrics] = []
    for group in order:
        inside = groups == group
        count = int(inside.sum())
        with_label = inside & labelled
        metrics: dict[str, float | None] = {"accuracy": None, "tpr": None, "fpr": None}
        if label_frame is not None and group in label_frame.index:
            metrics = {k: _num(label_frame.loc[group, k]) for k in metrics}
        auc = None
        if score is not None and truth is not None and with_label.any():
            auc = _auc(truth[with_label], score[with_label])
        rows.append(
            GroupMetrics(
                group=group,
                count=count,
                selection_rate=_num(rates.loc[group]),
                labelled=int(with_label.sum()),
                auc=auc,
                small=count < min_group,
                **metrics,
            )
        )
    judged_names = [g.group for g in rows if not g.small]
    keep = np.isin(groups, judged_names)
    notes: list[str] = []
    small = [g.group for g in rows if g.small]
    if small:
        notes.append(
            f"{len(small)} group(s) under {min_group} rows are shown but not judged: {', '.join(small)}"
        )
    if banded:
        notes.append(f"numeric column cut into {len(order)} quantile band(s)")
    dp_diff = dp_ratio = eo = None
    if len(judged_names) >= 2:
        dp_diff = _num(demographic_parity_difference(pred[keep], pred[keep], sensitive_features=groups[keep]))
        dp_ratio = _num(demographic_parity_ratio(pred[keep], pred[keep], sensitive_features=groups[keep]))
        both = keep & labelled
        if truth is not None and both.any():
            eo = _num(
                _quiet(equalized_odds_difference, truth[both], pred[both], sensitive_features=groups[both])
            )
            if eo is None:
                notes.append(
                    "equalized odds cannot be computed: some judged group lacks a positive or negative label"
                )
    else:
        notes.append("fewer than two groups large enough to judge: no parity verdict")
    judged = [g for g in rows if not g.small and g.selection_rate is not None]
    if len(judged) >= 2:
        worst = min(judged, key=lambda g: g.selection_rate or 0.0)
        best = max(judged, key=lambda g: g.selection_rate or 0.0)
        high = best.selection_rate or 0.0
        ratio = (worst.selection_rate or 0.0) / high if high > 0 else 1.0
        rule = FourFifths(ratio >= FOUR_FIFTHS, worst.group, best.group, ratio)
    else:
        rule = FourFifths(None, None, None, None)
    return FeatureFairness(name, tuple(rows), dp_diff, dp_ratio, eo, rule, banded, tuple(notes))


def _positive(pred: np.ndarray, truth: np.ndarray | None, positive_label: Any) -> Any:
    if positive_label is not None:
        return positive_label
    seen = set(pred.tolist()) | (set(truth.tolist()) if truth is not None else set())
    seen.discard(None)
    if seen <= {0, 1} or seen <= {False, True}:
        return 1
    raise ConfigError(
        f"the predictions are not 0/1 (values {sorted(map(str, seen))[:5]}): name the positive label"
    )


def _missing(values: np.ndarray) -> np.ndarray:
    import pandas as pd

    return np.asarray(pd.isna(pd.Series(values, dtype=object)).to_numpy(), dtype=bool)


def audit_fairness(
    y_true: Sequence[Any] | np.ndarray | pd.Series | None,
    y_pred: Sequence[Any] | np.ndarray | pd.Series,
    sensitive: pd.DataFrame,
    *,
    y_score: Sequence[float] | np.ndarray | pd.Series | None = None,
    positive_label: Any = None,
    min_group: int = 30,
    bins: int = 4,
) -> FairnessReport:
    """Audit predictions ``y_pred`` (and labels ``y_true`` when known; None or missing entries for
    unlabelled rows) across each column of ``sensitive``. ``y_score`` is the positive-class score for
    AUC per group. ``positive_label`` is the class that counts as selected (default 1 for 0/1 data)."""
    import pandas as pd

    if min_group < 1:
        raise ConfigError("the minimum group size must be at least 1")
    if bins < 2:
        raise ConfigError("numeric sensitive columns need at least 2 bins")
    if not isinstance(sensitive, pd.DataFrame) or sensitive.shape[1] == 0:
        raise ConfigError("name at least one sensitive column")
    pred_raw = np.asarray(y_pred, dtype=object)
    n = len(pred_raw)
    if n == 0:
        raise ConfigError("no rows to audit")
    if len(sensitive) != n:
        raise ConfigError(f"{len(sensitive)} sensitive rows for {n} predictions")
    truth_raw = None if y_true is None else np.asarray(y_true, dtype=object)
    if truth_raw is not None and len(truth_raw) != n:
        raise ConfigError(f"{len(truth_raw)} labels for {n} predictions")
    labelled = np.zeros(n, dtype=bool) if truth_raw is None else ~_missing(truth_raw)
    positive = _positive(pred_raw, truth_raw[labelled] if truth_raw is not None else None, positive_label)
    pred = (pred_raw == positive).astype(np.int64)
    truth = None if truth_raw is None else np.where(labelled, truth_raw == positive, False).astype(np.int64)
    score = None if y_score is None else np.asarray(y_score, dtype=np.float64)
    if score is not None and len(score) != n:
        raise ConfigError(f"{len(score)} scores for {n} predictions")
    frame = sensitive.reset_index(drop=True)
    features = tuple(
        _feature(str(c), frame[c], pred, truth, labelled, score, min_group=min_group, bins=bins)
        for c in frame.columns
    )
    notes: list[str] = []
    if not labelled.any():
        notes.append("no labels: selection rates and demographic parity only")
    elif not labelled.all():
        notes.append(f"{int(labelled.sum())} of {n} rows labelled: label metrics use those rows only")
    return FairnessReport(
        features=features,
        rows=n,
        labelled=int(labelled.sum()),
        positive_label=positive,
        min_group=min_group,
        bins=bins,
        has_scores=score is not None,
        notes=tuple(notes),
    )
