"""A version scored on a labelled holdout through the runtime, and its metrics by scikit-learn.

Both the candidate and the champion are scored here, by modelward, on the same rows: the gates never
compare figures taken from registration metadata.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelward.errors import ConfigError
from modelward.governance.policy import CLASSIFIER_METRICS, REGRESSOR_METRICS
from modelward.registry.calibration import class_index
from modelward.runtime.model import LoadedModel

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Scored", "primary_metric", "score_holdout"]


def primary_metric(model: LoadedModel) -> str:
    return "auc" if model.is_classifier else "rmse"


@dataclass(frozen=True, eq=False)
class Scored:
    """One version's answers on the holdout rows that have a label it knows."""

    model: LoadedModel
    y_true: np.ndarray  # labels as the model's class values (classifiers) or floats
    y_pred: np.ndarray
    proba: np.ndarray | None  # rows x classes, classifiers with predict_proba
    rows: int
    keep: np.ndarray  # which holdout rows these are (a boolean mask)

    def metric(self, name: str) -> float | None:
        """The metric on these rows; None when it does not apply to the model or cannot be measured."""
        from sklearn import metrics

        m = self.model
        if m.is_classifier != (name in CLASSIFIER_METRICS) or (
            not m.is_classifier and name not in REGRESSOR_METRICS
        ):
            return None
        if self.rows == 0:
            return None
        if not m.is_classifier:
            y, p = self.y_true.astype(np.float64), self.y_pred.astype(np.float64)
            if name == "rmse":
                return math.sqrt(float(metrics.mean_squared_error(y, p)))
            if name == "mae":
                return float(metrics.mean_absolute_error(y, p))
            return float(metrics.r2_score(y, p))
        classes = list(m.class_values)
        names = [str(c) for c in classes]
        truth = np.fromiter((classes.index(v) for v in self.y_true), dtype=np.int64, count=self.rows)
        predicted = np.fromiter((class_index(v, names) for v in self.y_pred), dtype=np.int64, count=self.rows)
        # an answer that is none of the classes is wrong whatever the label: counted as another class
        predicted = np.where(predicted < 0, (truth + 1) % len(classes), predicted)
        binary = len(classes) == 2
        if name == "accuracy":
            return float(metrics.accuracy_score(truth, predicted))
        if name in {"f1", "precision", "recall"}:
            scorer = {
                "f1": metrics.f1_score,
                "precision": metrics.precision_score,
                "recall": metrics.recall_score,
            }
            kwargs: dict[str, Any] = {"pos_label": 1} if binary else {"average": "macro"}
            return float(scorer[name](truth, predicted, zero_division=0, **kwargs))
        if self.proba is None or len(np.unique(truth)) < 2:
            return None
        if name == "log_loss":
            return float(metrics.log_loss(truth, self.proba, labels=list(range(len(classes)))))
        if binary:
            return float(metrics.roc_auc_score(truth, self.proba[:, 1]))
        return float(
            metrics.roc_auc_score(truth, self.proba, multi_class="ovr", labels=list(range(len(classes))))
        )


def score_holdout(model: LoadedModel, frame: pd.DataFrame, label: str) -> Scored:
    """Score ``frame`` with ``model``; rows whose label is missing (or not among a classifier's
    classes) are left out. ConfigError when the label column is absent."""
    from modelward.runtime.batch import score_frame

    if label not in frame.columns:
        columns = ", ".join(map(str, frame.columns))
        raise ConfigError(f"the label column '{label}' is not in the holdout (columns: {columns})")
    raw = frame[label].to_numpy()
    scored = score_frame(model, frame)
    pred = scored["prediction"].to_numpy()
    proba: np.ndarray | None = None
    if model.is_classifier:
        names = [str(c) for c in model.class_values]
        idx = np.fromiter((class_index(v, names) for v in raw), dtype=np.int64, count=len(raw))
        keep = idx >= 0
        values = np.asarray(model.class_values, dtype=object)
        y_true = values[idx[keep]]
        # A model without classes_ (a pyfunc) may answer 1 where its classes, decided from the
        # target at registration, are "0" and "1": its answers as the class values, like the labels.
        answered = np.fromiter((class_index(v, names) for v in pred), dtype=np.int64, count=len(pred))
        if (answered >= 0).all():
            pred = values[answered]
        wanted = [f"probability_{c}" for c in model.classes]
        if all(c in scored.columns for c in wanted):
            proba = scored[wanted].to_numpy(dtype=np.float64)[keep]
    else:
        numeric = np.asarray(frame[label].astype("float64"))
        keep = np.isfinite(numeric)
        y_true = numeric[keep]
    if not keep.any():
        what = (
            f"a label among the classes {list(model.class_values)}"
            if model.is_classifier
            else "a numeric label"
        )
        raise ConfigError(f"no row of the holdout has {what} in '{label}'")
    return Scored(model, y_true, pred[keep], proba, int(keep.sum()), keep)
