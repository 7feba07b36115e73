"""Calibration of a classifier on labelled data: a reliability table and expected calibration error.

Label-free performance estimation (``modelward.feedback.estimate``) reads a model's probabilities
as if they were the truth: an expected accuracy of 0.9 is only right if, among the rows the model
is 90% sure of, 90% are right. This module measures how far that holds on labelled data, so the
estimate can say when it cannot be trusted. It lives in the registry layer because registration
computes it on the training frame (the only labels registration has); ``modelward calibrate``
recomputes it on held-out data, which is what to trust for models that fit their training rows
closely (trees, boosting).

Two errors, one per estimate:

- ``ece``, the top-label expected calibration error (Guo et al., 2017): rows binned by the
  confidence of the predicted class, ``sum_b n_b / n * |accuracy_b - confidence_b|``. On the same
  data, ``|accuracy - mean confidence| <= ece`` (triangle inequality over bins), so it bounds the
  bias of the expected accuracy there.
- ``classwise_ece``: the same error of each class's probability against that class's frequency,
  averaged over classes (binary: the positive class only). The expected ROC AUC reads every class
  probability, not just the top one.

Pure NumPy, no I/O; values that do not exist (an empty bin) are None, never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_BINS",
    "Calibration",
    "ReliabilityBin",
    "class_index",
    "compute_calibration",
    "registration_calibration",
]

DEFAULT_BINS = 10


def class_index(label: Any, classes: Sequence[str]) -> int:
    """The index of ``label`` among ``classes`` (the ``str()`` of the model's class values), or -1.

    A label matches a class when their ``str()`` are equal; an integral float also matches the
    integer's text (``1.0`` matches class ``"1"``), because CSV readers and JSON clients turn
    integer labels into floats.
    """
    text = str(label)
    for i, c in enumerate(classes):
        if c == text:
            return i
    if isinstance(label, float) and math.isfinite(label) and label.is_integer():
        text = str(int(label))
        for i, c in enumerate(classes):
            if c == text:
                return i
    return -1


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """Rows whose score fell in ``[lower, upper)`` (the last bin includes 1.0)."""

    lower: float
    upper: float
    n: int
    mean_score: float | None  # mean confidence (top label) or mean P(class)
    frequency: float | None  # share correct (top label) or share of the class

    def to_dict(self) -> dict[str, Any]:
        return {
            "lower": self.lower,
            "upper": self.upper,
            "n": self.n,
            "mean_score": self.mean_score,
            "frequency": self.frequency,
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> ReliabilityBin:
        def opt(key: str) -> float | None:
            v = value.get(key)
            return None if v is None else float(v)

        return cls(
            float(value["lower"]), float(value["upper"]), int(value["n"]), opt("mean_score"), opt("frequency")
        )


@dataclass(frozen=True, slots=True)
class Calibration:
    """How well a classifier's probabilities matched the labels of ``n`` rows."""

    n: int
    classes: tuple[str, ...]
    accuracy: float  # realized, predicting the most probable class
    mean_confidence: float  # mean probability of the predicted class: the expected accuracy there
    ece: float
    classwise_ece: float
    reliability: tuple[ReliabilityBin, ...]  # top-label confidence vs share correct
    positive_reliability: tuple[ReliabilityBin, ...]  # binary: P(classes[1]) vs its frequency; else ()
    source: str = "registration"  # "registration" (training rows) or "holdout" (modelward calibrate)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "classes": list(self.classes),
            "accuracy": self.accuracy,
            "mean_confidence": self.mean_confidence,
            "ece": self.ece,
            "classwise_ece": self.classwise_ece,
            "bins": len(self.reliability),
            "reliability": [b.to_dict() for b in self.reliability],
            "positive_reliability": [b.to_dict() for b in self.positive_reliability],
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Calibration:
        return cls(
            n=int(value["n"]),
            classes=tuple(str(c) for c in value.get("classes", ())),
            accuracy=float(value["accuracy"]),
            mean_confidence=float(value["mean_confidence"]),
            ece=float(value["ece"]),
            classwise_ece=float(value["classwise_ece"]),
            reliability=tuple(ReliabilityBin.from_dict(b) for b in value.get("reliability", ())),
            positive_reliability=tuple(
                ReliabilityBin.from_dict(b) for b in value.get("positive_reliability", ())
            ),
            source=str(value.get("source", "registration")),
        )


def _binned(scores: np.ndarray, hits: np.ndarray, bins: int) -> tuple[tuple[ReliabilityBin, ...], float]:
    """Equal-width bins on [0, 1]: the table and its ECE."""
    index = np.minimum((scores * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    score_sums = np.bincount(index, weights=scores, minlength=bins)
    hit_sums = np.bincount(index, weights=hits, minlength=bins)
    table: list[ReliabilityBin] = []
    ece = 0.0
    n = len(scores)
    for b in range(bins):
        k = int(counts[b])
        mean = float(score_sums[b] / k) if k else None
        freq = float(hit_sums[b] / k) if k else None
        if mean is not None and freq is not None:
            ece += k / n * abs(freq - mean)
        table.append(ReliabilityBin(b / bins, (b + 1) / bins, k, mean, freq))
    return tuple(table), float(ece)


def compute_calibration(
    labels: Sequence[Any] | np.ndarray,
    probabilities: np.ndarray,
    classes: Sequence[Any],
    *,
    bins: int = DEFAULT_BINS,
    source: str = "registration",
) -> Calibration:
    """The calibration of ``probabilities`` (rows x classes, columns in ``classes`` order) against
    ``labels``. Labels are matched to classes by :func:`class_index`; rows whose label matches no
    class, or whose probabilities are not finite, are left out. ValueError when no row is left."""
    if bins < 2:
        raise ValueError("calibration needs at least 2 bins")
    names = tuple(str(c) for c in classes)
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(names) or len(names) < 2:
        raise ValueError(f"probabilities must be rows x {len(names)} classes, got shape {probs.shape}")
    if probs.shape[0] != len(labels):
        raise ValueError(f"{len(labels)} labels for {probs.shape[0]} rows of probabilities")
    truth = np.fromiter((class_index(v, names) for v in labels), dtype=np.int64, count=len(labels))
    keep = (truth >= 0) & np.isfinite(probs).all(axis=1)
    truth, probs = truth[keep], np.clip(probs[keep], 0.0, 1.0)
    if len(truth) == 0:
        raise ValueError(f"no row has a label among the classes {list(names)} and finite probabilities")
    predicted = np.argmax(probs, axis=1)
    confidence = probs[np.arange(len(probs)), predicted]
    correct = (predicted == truth).astype(np.float64)
    reliability, ece = _binned(confidence, correct, bins)
    onehot = np.eye(len(names))[truth]
    if len(names) == 2:
        positive, classwise = _binned(probs[:, 1], onehot[:, 1], bins)
    else:
        positive = ()
        classwise = float(np.mean([_binned(probs[:, c], onehot[:, c], bins)[1] for c in range(len(names))]))
    return Calibration(
        n=len(truth),
        classes=names,
        accuracy=float(correct.mean()),
        mean_confidence=float(confidence.mean()),
        ece=ece,
        classwise_ece=classwise,
        reliability=reliability,
        positive_reliability=positive,
        source=source,
    )


def registration_calibration(
    labels: Any, probabilities: np.ndarray | None, classes: Sequence[str]
) -> dict[str, Any] | None:
    """The ``calibration`` entry of a registration record, or None when there is nothing to measure
    (a regressor, no target column, no probabilities, or labels that match none of the classes)."""
    if labels is None or probabilities is None or len(classes) < 2:
        return None
    try:
        return compute_calibration(list(labels), probabilities, classes, source="registration").to_dict()
    except ValueError:
        return None
