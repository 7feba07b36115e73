"""Label-free performance of a classifier: what its own probabilities say it should score.

Confidence-based performance estimation, as NannyML's CBPE does it, but on the live window: each
logged row with probabilities ``p`` is read as ``p[c]`` of a label of class ``c``. Then, with the
model's own decision (the class it answered):

- expected accuracy = mean probability of the answered class (for the most-probable-class rule of a
  binary model, the mean of ``max(p, 1 - p)``);
- expected precision, recall and F1 from the expected confusion counts (binary: of ``classes[1]``;
  multiclass: macro over classes), e.g. expected true positives = sum of ``p`` over the rows
  answered positive;
- expected ROC AUC: every row counts as a positive of weight ``p`` and a negative of weight
  ``1 - p`` at its score, and scikit-learn's ``roc_auc_score`` with those sample weights is the
  expected area (CBPE's expected ROC curve); multiclass: one-vs-rest per class, macro average.

Two assumptions make this right: the probabilities are calibrated, and the relation between inputs
and labels has not changed (data may drift, the concept may not). The second cannot be checked
without labels; the first is checked on labelled reference data (``modelward.registry.calibration``):
an estimate is *trusted* only when the model's calibration error there is at most the threshold.
Accuracy, precision, recall and F1 rest on the top-label error (``ece``), ROC AUC on the per-class
error (``classwise_ece``).

Why 0.05 by default: on the reference data, ``|accuracy - mean confidence| <= ece`` exactly, so a
model within 0.05 misestimates its own accuracy there by at most 5 points, about the smallest drop
worth an alert; a looser model could hide, or invent, a drop of that size by calibration error
alone. ECE is biased upwards on few rows (about 0.02 for a perfectly calibrated model on 2,000 rows
in 10 bins), so a check on fewer than ``MIN_CALIBRATION_ROWS`` rows is inconclusive: untrusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelward.registry.calibration import Calibration

__all__ = [
    "DEFAULT_TRUST_THRESHOLD",
    "MIN_CALIBRATION_ROWS",
    "EstimatedMetric",
    "TrustCheck",
    "expected_auc",
    "expected_metrics",
    "trust_check",
]

DEFAULT_TRUST_THRESHOLD = 0.05
MIN_CALIBRATION_ROWS = 200
_TOP_LABEL = ("accuracy", "precision", "recall", "f1")
_UNDEFINED = {
    "accuracy": "no row to estimate from",
    "precision": "undefined: no row was answered with the class",
    "recall": "undefined: the probabilities expect no row of the class",
    "f1": "undefined: no row answered or expected in the class",
    "roc_auc": "undefined: the probabilities expect no positive or no negative",
}


@dataclass(frozen=True, slots=True)
class EstimatedMetric:
    """A label-free estimate; ``value`` None when it cannot be computed (``reason`` says why),
    ``trusted`` False when the calibration check fails or is missing (``reason`` says why)."""

    value: float | None
    trusted: bool
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "trusted": self.trusted, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class TrustCheck:
    """The calibration check of one version: may its accuracy-like and AUC estimates be trusted?"""

    top_label: bool
    classwise: bool
    reason: str

    def for_metric(self, metric: str) -> bool:
        return self.top_label if metric in _TOP_LABEL else self.classwise


def trust_check(
    calibration: Calibration | None,
    classes: Sequence[str],
    *,
    threshold: float = DEFAULT_TRUST_THRESHOLD,
    version: str | None = None,
) -> TrustCheck:
    """Whether the estimates of a model with this calibration can be trusted, and why (or why not)."""
    of = f" of version {version}" if version is not None else ""
    if calibration is None:
        return TrustCheck(
            False,
            False,
            f"no calibration on record{of}: register it with its target column, or run modelward calibrate",
        )
    if tuple(calibration.classes) != tuple(classes):
        return TrustCheck(
            False, False, f"the calibration{of} was measured for classes {list(calibration.classes)}"
        )
    where = f"{calibration.n} {calibration.source} rows"
    if calibration.n < MIN_CALIBRATION_ROWS:
        return TrustCheck(
            False, False, f"calibration{of} measured on {where} only (fewer than {MIN_CALIBRATION_ROWS})"
        )
    top = calibration.ece <= threshold
    cw = calibration.classwise_ece <= threshold
    reason = (
        f"calibration error{of}: {calibration.ece:.3f} top-label, {calibration.classwise_ece:.3f} per class"
    )
    reason += f" on {where} (trusted up to {threshold:g})"
    return TrustCheck(top, cw, reason)


def expected_auc(scores: np.ndarray) -> float | None:
    """CBPE's expected ROC AUC of one class's probabilities, or None when they leave no expected
    positive or no expected negative (every score 0, or every score 1)."""
    from sklearn.metrics import roc_auc_score

    p = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    if len(p) == 0 or p.sum() <= 0 or (1 - p).sum() <= 0:
        return None
    truth = np.concatenate([np.ones(len(p)), np.zeros(len(p))])
    return float(roc_auc_score(truth, np.concatenate([p, p]), sample_weight=np.concatenate([p, 1 - p])))


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def _expected_prf(probs: np.ndarray, predicted: np.ndarray, cls: int) -> tuple[float | None, ...]:
    p = probs[:, cls]
    answered = predicted == cls
    tp = float(p[answered].sum())
    fp = float((1 - p[answered]).sum())
    fn = float(p[~answered].sum())
    return _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)


def _macro(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def expected_metrics(
    probabilities: np.ndarray,
    predicted: np.ndarray,
    *,
    trust: TrustCheck,
) -> dict[str, EstimatedMetric]:
    """Expected accuracy, precision, recall, F1 and ROC AUC of rows x classes ``probabilities`` with
    ``predicted`` the answered class index per row (-1 or NaN: the most probable class)."""
    probs = np.asarray(probabilities, dtype=np.float64)
    out: dict[str, EstimatedMetric] = {}
    names = ("accuracy", "precision", "recall", "f1", "roc_auc")
    if probs.ndim != 2 or probs.shape[0] == 0 or probs.shape[1] < 2:
        return {
            m: EstimatedMetric(None, False, "no predictions with probabilities in the window") for m in names
        }
    keep = np.isfinite(probs).all(axis=1)
    probs = np.clip(probs[keep], 0.0, 1.0)
    answered = np.asarray(predicted, dtype=np.float64)[keep]
    top = np.argmax(probs, axis=1)
    pred = np.where(np.isfinite(answered) & (answered >= 0), answered, top).astype(np.int64)
    if len(probs) == 0:
        return {m: EstimatedMetric(None, False, "no row has finite probabilities") for m in names}
    values: dict[str, float | None] = {"accuracy": float(probs[np.arange(len(probs)), pred].mean())}
    k = probs.shape[1]
    if k == 2:
        values["precision"], values["recall"], values["f1"] = _expected_prf(probs, pred, 1)
        values["roc_auc"] = expected_auc(probs[:, 1])
    else:
        per_class = [_expected_prf(probs, pred, c) for c in range(k)]
        for j, metric in enumerate(("precision", "recall", "f1")):
            values[metric] = _macro([row[j] for row in per_class])
        values["roc_auc"] = _macro([expected_auc(probs[:, c]) for c in range(k)])
    for metric in names:
        value = values.get(metric)
        if value is None:
            out[metric] = EstimatedMetric(None, False, _UNDEFINED[metric])
        else:
            out[metric] = EstimatedMetric(value, trust.for_metric(metric), trust.reason)
    return out
