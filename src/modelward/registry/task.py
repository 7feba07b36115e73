"""What a model predicts, classes or values: declared by the user, else decided from the model.

A model with ``predict_proba`` and ``classes_`` is a classifier. Without them (Fairlearn's
``ExponentiatedGradient``, a pyfunc model), the signature's output type, the registered target and
the model's own outputs on the reference data decide: string or boolean outputs are labels; outputs
that are all values of a discrete target are labels too; anything else is a regression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from modelward.errors import RegistrationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TASKS", "Task", "TaskDecision", "check_task", "decide_task"]

Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")

_MAX_CLASSES = 50  # more distinct target values than this is a regression target, not labels


@dataclass(frozen=True, slots=True)
class TaskDecision:
    task: Task
    classes: tuple[str, ...]
    source: str  # what decided: "declared", "predict_proba", "signature", "target"


def check_task(task: str | None) -> Task | None:
    if task is None:
        return None
    if task not in TASKS:
        raise RegistrationError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    return task


def decide_task(
    native: Any,
    predictions: np.ndarray,
    labels: pd.Series | None,
    *,
    declared: str | None = None,
    output_type: str | None = None,
) -> TaskDecision:
    """The task and, for classifiers, the classes (as strings, in the model's order when it has one)."""
    task = check_task(declared)
    fitted = getattr(native, "classes_", None)
    probabilistic = fitted is not None and hasattr(native, "predict_proba")
    if task == "regression":
        return TaskDecision("regression", (), "declared")
    if task == "classification":
        return TaskDecision("classification", _classes(fitted, labels, predictions), "declared")
    if probabilistic and fitted is not None:
        return TaskDecision("classification", tuple(str(c) for c in fitted), "predict_proba")
    if _nested(predictions):  # a list (or an object) per row, e.g. one score per candidate item
        return TaskDecision("regression", (), "outputs")
    if output_type in {"string", "boolean"} or predictions.dtype.kind in "OUSb":
        return TaskDecision("classification", _classes(fitted, labels, predictions), "signature")
    if labels is not None and _labels_of(labels, predictions):
        return TaskDecision("classification", _classes(fitted, labels, predictions), "target")
    return TaskDecision("regression", (), "target" if labels is not None else "outputs")


def _nested(predictions: np.ndarray) -> bool:
    """Whether the model answers a list, an array or a mapping per row rather than one value."""
    if predictions.ndim > 1:
        return True
    return predictions.dtype.kind == "O" and any(
        isinstance(p, list | tuple | dict | np.ndarray) for p in predictions.tolist()
    )


def _labels_of(labels: pd.Series, predictions: np.ndarray) -> bool:
    """Whether every prediction is one of the target's few distinct values."""
    values = labels.dropna()
    if values.empty or predictions.ndim != 1:
        return False
    if values.dtype.kind == "f" and not np.all(np.mod(values.to_numpy(), 1) == 0):
        return False
    distinct = set(values.unique().tolist())
    if len(distinct) > _MAX_CLASSES:
        return False
    return all(p in distinct for p in predictions.tolist())


def _classes(fitted: Any, labels: pd.Series | None, predictions: np.ndarray) -> tuple[str, ...]:
    if fitted is not None:
        return tuple(str(c) for c in fitted)
    source = labels.dropna().unique() if labels is not None else predictions
    distinct = set(np.asarray(source).tolist())
    try:
        ordered = sorted(distinct)
    except TypeError:  # mixed types: any stable order will do
        ordered = sorted(distinct, key=str)
    return tuple(str(c) for c in ordered)
