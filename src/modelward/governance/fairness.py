"""Fairness audits: how a version's decisions fall across groups of people, measured with Fairlearn.

Per sensitive feature and group: count, selection rate, accuracy, true and false positive rates and
(where scores exist) AUC, through ``fairlearn.metrics.MetricFrame``; per feature the demographic
parity difference and ratio and the equalized odds difference as Fairlearn's functions of those names
compute them (the between-groups difference and ratio of the same MetricFrames; the tests check the
figures against the functions), and the four-fifths rule (the lowest group selection rate is at
least 80 % of the highest).

Groups smaller than ``min_group`` rows are listed and flagged ``small`` but left out of the verdicts
(the parity figures and the four-fifths rule are computed over the other groups), because a rate from
a handful of rows says little. A numeric sensitive column with more than ``bins`` distinct values is
cut into quantile bands labelled by the values they hold ("18-30"). Without labels (``y_true`` None,
or every label missing) the report has selection rates and demographic parity only; rows whose label
is missing count for the selection rates and not for the label metrics.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modelward.errors import ConfigError
from modelward.governance.fairness_report import (
    FOUR_FIFTHS,
    MISSING_GROUP,
    FairnessReport,
    FeatureFairness,
    FourFifths,
    GroupMetrics,
    WorstGap,
)
from modelward.governance.fairness_report import finite as _num

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


def _selection_frame(pred: np.ndarray, groups: np.ndarray) -> Any:
    from fairlearn.metrics import MetricFrame, selection_rate

    return MetricFrame(metrics=selection_rate, y_true=pred, y_pred=pred, sensitive_features=groups)


def _label_frame(
    truth: np.ndarray, pred: np.ndarray, groups: np.ndarray, rows: np.ndarray, accuracy: Any
) -> Any:
    """TPR and FPR (and accuracy, when given) per group over ``rows``."""
    from fairlearn.metrics import MetricFrame, false_positive_rate, true_positive_rate

    metrics: dict[str, Any] = {"tpr": true_positive_rate, "fpr": false_positive_rate}
    if accuracy is not None:
        metrics["accuracy"] = accuracy
    return _quiet(
        MetricFrame,
        metrics=metrics,
        y_true=truth[rows],
        y_pred=pred[rows],
        sensitive_features=groups[rows],
    )


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
    from sklearn.metrics import accuracy_score

    groups, order, banded = _groups(column, bins)
    selection = _selection_frame(pred, groups)
    rates = selection.by_group
    label_frame: Any = None
    label_metrics: Any = None
    if truth is not None and labelled.any():
        label_metrics = _label_frame(truth, pred, groups, labelled, accuracy_score)
        label_frame = label_metrics.by_group
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
        # Fairlearn's demographic_parity_difference / _ratio and equalized_odds_difference are the
        # between-groups difference (ratio) of a MetricFrame of selection rates (of TPR and FPR, the
        # larger). The frames above already hold them: reading them there, rather than calling the
        # functions (each builds its frame again), halves the audit's time, with the same figures.
        judged_selection = selection if not small else _selection_frame(pred[keep], groups[keep])
        dp_diff = _num(judged_selection.difference(method="between_groups"))
        dp_ratio = _num(judged_selection.ratio(method="between_groups"))
        both = keep & labelled
        if truth is not None and both.any():
            odds = label_metrics if not small else _label_frame(truth, pred, groups, both, None)
            gaps = odds.difference(method="between_groups")
            both_gaps = [_num(gaps["tpr"]), _num(gaps["fpr"])]
            eo = None if None in both_gaps else max(g for g in both_gaps if g is not None)
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
