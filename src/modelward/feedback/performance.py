"""Live performance: logged predictions joined to their labels, per model, version and arm.

:func:`performance_report` (with a registry) and :func:`live_performance` (with a store and what is
known of each version) read a window of the prediction log (``since`` / ``until``, UNIX seconds;
which rows count is in ``_window``), join the labels by request id and return a typed
:class:`PerformanceReport`: one :class:`GroupPerformance` per (version, arm), one per version over
its arms (``arm="all"``, in ``versions``) and one over all of them (``version="all", arm="all"``: the
model as a whole, every labelled row of every version and arm), each with

- counts: predictions in the window, labelled ones, the labelled ones the metrics used, coverage;
- realized metrics, computed with scikit-learn's functions on the joined rows. Classification:
  accuracy, precision, recall, F1 (binary: of the positive class ``classes[1]``; multiclass: the
  macro average over the classes where each is defined), ROC AUC (multiclass: one-vs-rest macro),
  log loss and Brier score (multiclass: the mean over rows of the summed squared errors over
  classes), from the logged probabilities. Regression: MAE, RMSE, R2. A label counts for a
  classifier when its ``str()`` equals a class's (``1.0`` also matches ``"1"``), for a regressor
  when it is a number;
- label-free estimates (``modelward.feedback.estimate``) from every row's probabilities, with the
  calibration check that says whether to trust them.

A metric that cannot be computed (ROC AUC with one class among the labels, R2 of constant labels)
is None with a reason, never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from modelward.durations import duration_seconds
from modelward.errors import ConfigError
from modelward.feedback._window import PRIMARY, Group, read_window
from modelward.feedback.calibrate import VersionFacts, version_facts
from modelward.feedback.estimate import (
    DEFAULT_TRUST_THRESHOLD,
    EstimatedMetric,
    TrustCheck,
    expected_metrics,
    trust_check,
)
from modelward.registry.calibration import Calibration, class_index
from modelward.store import Store

if TYPE_CHECKING:
    from modelward.registry import Registry

__all__ = [
    "ALL",
    "CLASSIFICATION_METRICS",
    "DEFAULT_MAX_ROWS",
    "PRIMARY",
    "REGRESSION_METRICS",
    "GroupPerformance",
    "Metric",
    "PerformanceReport",
    "live_performance",
    "parse_window",
    "performance_report",
]

ALL = "all"
DEFAULT_MAX_ROWS = 1_000_000
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier")
REGRESSION_METRICS = ("mae", "rmse", "r2")
FactsSource = Mapping[str, VersionFacts] | Callable[[str], VersionFacts | None]


def parse_window(text: str) -> float:
    """A window length such as ``30m``, ``6h``, ``1d`` or ``2w``, in seconds."""
    seconds = duration_seconds(text, bare=False)
    if not seconds:
        raise ConfigError(f"cannot read the window {text!r}: use a duration such as 30m, 6h, 1d or 2w")
    return seconds


@dataclass(frozen=True, slots=True)
class Metric:
    """A realized metric; ``value`` None when it cannot be computed, ``reason`` then says why."""

    value: float | None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class GroupPerformance:
    """Performance of one (version, arm), or of all of them (``ALL``)."""

    version: str
    arm: str
    task: str  # classification | regression | unknown (no predictions)
    classes: tuple[str, ...]
    n_predictions: int
    n_labelled: int  # predictions with a joined label
    n_used: int  # labelled predictions the metrics used (label matched a class / is a number)
    metrics: Mapping[str, Metric] = field(default_factory=dict)
    estimated: Mapping[str, EstimatedMetric] = field(default_factory=dict)
    calibration: Calibration | None = None

    @property
    def coverage(self) -> float | None:
        """Share of the window's predictions that have a label."""
        return self.n_labelled / self.n_predictions if self.n_predictions else None

    def value(self, metric: str) -> float | None:
        found = self.metrics.get(metric)
        return None if found is None else found.value

    def to_dict(self) -> dict[str, Any]:
        cal = self.calibration
        return {
            "version": self.version,
            "arm": self.arm,
            "task": self.task,
            "classes": list(self.classes),
            "n_predictions": self.n_predictions,
            "n_labelled": self.n_labelled,
            "n_used": self.n_used,
            "coverage": self.coverage,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "estimated": {k: v.to_dict() for k, v in self.estimated.items()},
            "calibration": None
            if cal is None
            else {"ece": cal.ece, "classwise_ece": cal.classwise_ece, "n": cal.n, "source": cal.source},
        }


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    model: str
    since: float | None
    until: float | None
    overall: GroupPerformance
    groups: tuple[GroupPerformance, ...]
    errors: int  # failed predictions in the window (left out of everything else)
    truncated: bool  # the window held more than max_rows predictions: the newest were read
    versions: tuple[GroupPerformance, ...] = ()  # each version over all its arms (arm ALL)

    @property
    def n_predictions(self) -> int:
        return self.overall.n_predictions

    @property
    def n_labelled(self) -> int:
        return self.overall.n_labelled

    @property
    def coverage(self) -> float | None:
        return self.overall.coverage

    def group(self, version: str, arm: str = PRIMARY) -> GroupPerformance | None:
        return next((g for g in self.groups if g.version == str(version) and g.arm == arm), None)

    def of_version(self, version: str) -> GroupPerformance | None:
        """``version`` as a whole, over every arm that served it (None: no row in the window)."""
        return next((g for g in self.versions if g.version == str(version)), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "since": self.since,
            "until": self.until,
            "n_predictions": self.n_predictions,
            "n_labelled": self.n_labelled,
            "coverage": self.coverage,
            "errors": self.errors,
            "truncated": self.truncated,
            "overall": self.overall.to_dict(),
            "versions": [g.to_dict() for g in self.versions],
            "groups": [g.to_dict() for g in self.groups],
        }


# -- realized metrics ------------------------------------------------------------------------------


def _finite(value: float, reason: str) -> Metric:
    return Metric(float(value), None) if math.isfinite(value) else Metric(None, reason)


def classification_metrics(
    truth: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray, classes: Sequence[str]
) -> dict[str, Metric]:
    """Realized metrics of class indices ``truth`` vs ``predicted``; probability metrics use the rows
    of ``probabilities`` (rows x classes) that are finite."""
    from sklearn.metrics import (
        accuracy_score,
        brier_score_loss,
        f1_score,
        log_loss,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    # Class indices, not names: the same figures, and scikit-learn sorts integers much faster.
    labels = list(range(len(classes)))
    y_true, y_pred = truth.astype(np.int64), predicted.astype(np.int64)
    binary = len(classes) == 2
    avg: dict[str, Any] = (
        {"pos_label": 1, "average": "binary"} if binary else {"labels": labels, "average": "macro"}
    )
    out = {"accuracy": Metric(float(accuracy_score(y_true, y_pred)))}
    positive = f"the positive class '{classes[1]}'" if binary else "any class"
    out["precision"] = _finite(
        precision_score(y_true, y_pred, zero_division=np.nan, **avg),
        f"undefined: no row was predicted as {positive}",
    )
    out["recall"] = _finite(
        recall_score(y_true, y_pred, zero_division=np.nan, **avg), f"undefined: no label is {positive}"
    )
    out["f1"] = _finite(
        f1_score(y_true, y_pred, zero_division=np.nan, **avg),
        f"undefined: {positive} is neither predicted nor labelled",
    )
    ok = np.isfinite(probabilities).all(axis=1)
    if not ok.any():
        reason = "no labelled row has logged probabilities"
        return {
            **out,
            "roc_auc": Metric(None, reason),
            "log_loss": Metric(None, reason),
            "brier": Metric(None, reason),
        }
    probs, t, yt = probabilities[ok], truth[ok], y_true[ok]
    present = set(np.unique(t).tolist())
    if len(present) < 2:
        out["roc_auc"] = Metric(None, "undefined: only one class among the labels")
    elif binary:
        out["roc_auc"] = Metric(float(roc_auc_score(t == 1, probs[:, 1])))
    elif len(present) < len(classes):
        missing = [c for i, c in enumerate(classes) if i not in present]
        out["roc_auc"] = Metric(
            None, f"undefined: no label of class {', '.join(missing)} (one-vs-rest needs each)"
        )
    else:
        out["roc_auc"] = Metric(
            float(roc_auc_score(yt, probs, multi_class="ovr", average="macro", labels=labels))
        )
    out["log_loss"] = Metric(float(log_loss(yt, probs, labels=labels)))
    if binary:
        out["brier"] = Metric(float(brier_score_loss(yt, probs[:, 1], pos_label=1)))
    else:
        out["brier"] = Metric(float(brier_score_loss(yt, probs, labels=labels)))
    return out


def regression_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Metric]:
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    out = {
        "mae": Metric(float(mean_absolute_error(truth, predicted))),
        "rmse": Metric(float(root_mean_squared_error(truth, predicted))),
    }
    if len(truth) < 2:
        out["r2"] = Metric(None, "undefined: fewer than two labels")
    elif float(np.var(truth)) == 0.0:
        out["r2"] = Metric(None, "undefined: every label is the same")
    else:
        out["r2"] = Metric(float(r2_score(truth, predicted)))
    return out


def _number(label: Any, value: float | None) -> float:
    if value is not None:
        return value
    if isinstance(label, str):
        try:
            parsed = float(label)
        except ValueError:
            return math.nan
        return parsed if math.isfinite(parsed) else math.nan
    return math.nan


# -- groups ----------------------------------------------------------------------------------------


@dataclass
class _Arrays:
    """A group's rows as arrays, so that groups can be concatenated for the overall figures."""

    task: str
    classes: tuple[str, ...]
    predicted: np.ndarray
    probabilities: np.ndarray  # rows x classes (classification), else empty
    truth: np.ndarray  # per labelled row: class index (-1: matches none) or value (NaN: not a number)
    label_rows: np.ndarray
    n_labelled: int


def _arrays(group: Group) -> _Arrays:
    predicted = np.frombuffer(group.predicted, dtype=np.float64).copy() if group.n else np.zeros(0)
    rows = np.asarray(group.label_rows, dtype=np.int64)
    if group.task == "classification":
        k = len(group.classes)
        flat = np.frombuffer(group.probabilities, dtype=np.float64) if group.n else np.zeros(0)
        probs = flat.reshape(group.n, k) if k else np.zeros((group.n, 0))
        truth = np.asarray([class_index(v, group.classes) for v in group.labels], dtype=np.float64)
    else:
        probs = np.zeros((group.n, 0))
        truth = np.asarray([_number(lab, v) for lab, v in zip(group.labels, group.values, strict=True)])
    return _Arrays(group.task, group.classes, predicted, probs, truth, rows, len(rows))


def _concat(parts: list[_Arrays]) -> _Arrays:
    offsets = np.cumsum([0, *[len(p.predicted) for p in parts[:-1]]])
    return _Arrays(
        parts[0].task,
        parts[0].classes,
        np.concatenate([p.predicted for p in parts]),
        np.concatenate([p.probabilities for p in parts]),
        np.concatenate([p.truth for p in parts]),
        np.concatenate([p.label_rows + off for p, off in zip(parts, offsets, strict=True)]),
        sum(p.n_labelled for p in parts),
    )


def _measure(
    version: str, arm: str, a: _Arrays, trust: TrustCheck | None, calibration: Calibration | None
) -> GroupPerformance:
    n = len(a.predicted)
    names = CLASSIFICATION_METRICS if a.task == "classification" else REGRESSION_METRICS
    pred_at = a.predicted[a.label_rows] if a.n_labelled else np.zeros(0)
    if a.task == "classification":
        use = (a.truth >= 0) & np.isfinite(pred_at)
    else:
        use = np.isfinite(a.truth) & np.isfinite(pred_at)
    n_used = int(use.sum())
    metrics: dict[str, Metric]
    if n_used == 0:
        reason = "no labels joined yet" if a.n_labelled == 0 else "no joined label matches the model's output"
        metrics = {m: Metric(None, reason) for m in names}
    elif a.task == "classification":
        rows = a.label_rows[use]
        metrics = classification_metrics(
            a.truth[use].astype(np.int64), pred_at[use].astype(np.int64), a.probabilities[rows], a.classes
        )
    else:
        metrics = regression_metrics(a.truth[use], pred_at[use])
    estimated: dict[str, EstimatedMetric] = {}
    if a.task == "classification" and trust is not None:
        estimated = expected_metrics(a.probabilities, a.predicted, trust=trust)
    return GroupPerformance(
        version, arm, a.task, a.classes, n, a.n_labelled, n_used, metrics, estimated, calibration
    )


def _facts_of(facts: FactsSource | None) -> Callable[[str], VersionFacts | None]:
    if facts is None:
        return lambda _v: None
    if callable(facts):
        return facts
    return facts.get


def live_performance(
    store: Store,
    model: str,
    *,
    since: float | None = None,
    until: float | None = None,
    version: str | None = None,
    arm: str | None = None,
    facts: FactsSource | None = None,
    threshold: float = DEFAULT_TRUST_THRESHOLD,
    max_rows: int | None = DEFAULT_MAX_ROWS,
) -> PerformanceReport:
    """Realized and estimated performance of ``model`` over ``[since, until)`` (UNIX seconds; None:
    unbounded), optionally of one version and/or arm. ``facts`` gives each version's task, classes
    and calibration (a mapping or a function of the version); unknown versions are described from
    their logged outputs and their estimates are untrusted (no calibration)."""
    lookup = _facts_of(facts)
    cache: dict[str, VersionFacts | None] = {}

    def known(v: str) -> VersionFacts | None:
        if v not in cache:
            cache[v] = lookup(v)
        return cache[v]

    def describe(v: str) -> tuple[str, tuple[str, ...]] | None:
        f = known(v)
        return None if f is None else (f.task, f.classes)

    window = read_window(
        store, model, since=since, until=until, version=version, arm=arm, describe=describe, max_rows=max_rows
    )
    parts: list[tuple[Group, _Arrays, TrustCheck | None]] = []
    groups: list[GroupPerformance] = []
    for key in sorted(window.groups, key=lambda k: (_version_key(k[0]), k[1])):
        group = window.groups[key]
        f = known(group.version)
        cal = f.calibration if f is not None else None
        trust = trust_check(cal, group.classes, threshold=threshold, version=group.version)
        a = _arrays(group)
        parts.append((group, a, trust))
        groups.append(_measure(group.version, group.arm, a, trust, cal))
    versions = []
    for v in dict.fromkeys(g.version for g in groups):
        mine = [i for i, g in enumerate(groups) if g.version == v]
        versions.append(_overall([parts[i] for i in mine], [groups[i] for i in mine], version=v))
    return PerformanceReport(
        model,
        since,
        until,
        _overall(parts, groups),
        tuple(groups),
        window.errors,
        window.truncated,
        tuple(versions),
    )


def _version_key(v: str) -> tuple[int, str]:
    return (int(v), "") if v.isdigit() else (1 << 62, v)


def _overall(
    parts: list[tuple[Group, _Arrays, TrustCheck | None]], groups: list[GroupPerformance], version: str = ALL
) -> GroupPerformance:
    """The groups as one: their rows concatenated (``version`` ALL: the whole model)."""
    if not parts:
        reason = "no predictions in the window"
        return GroupPerformance(
            ALL, ALL, "unknown", (), 0, 0, 0, {m: Metric(None, reason) for m in CLASSIFICATION_METRICS}
        )
    if len(parts) == 1:
        return GroupPerformance(version, ALL, *[getattr(groups[0], f) for f in _FIELDS])
    shapes = {(a.task, a.classes) for _, a, _ in parts}
    if len(shapes) > 1:
        reason = "the versions in the window differ in task or classes: see each version"
        names = CLASSIFICATION_METRICS if parts[0][1].task == "classification" else REGRESSION_METRICS
        n = sum(g.n_predictions for g in groups)
        return GroupPerformance(
            version,
            ALL,
            "mixed",
            (),
            n,
            sum(g.n_labelled for g in groups),
            0,
            {m: Metric(None, reason) for m in names},
        )
    checks = [t for _, _, t in parts if t is not None]
    reasons = list(dict.fromkeys(t.reason for t in checks))
    trust = TrustCheck(all(t.top_label for t in checks), all(t.classwise for t in checks), "; ".join(reasons))
    # One version's arms share its calibration; versions as a whole have none of their own.
    calibration = groups[0].calibration if version != ALL else None
    return _measure(version, ALL, _concat([a for _, a, _ in parts]), trust, calibration)


_FIELDS = ("task", "classes", "n_predictions", "n_labelled", "n_used", "metrics", "estimated", "calibration")


def performance_report(
    registry: Registry,
    model: str,
    *,
    since: float | None = None,
    until: float | None = None,
    version: str | None = None,
    arm: str | None = None,
    threshold: float = DEFAULT_TRUST_THRESHOLD,
    max_rows: int | None = DEFAULT_MAX_ROWS,
) -> PerformanceReport:
    """:func:`live_performance` of a registered model, each version described by its registration
    record and calibration (:func:`~modelward.feedback.calibrate.version_facts`). ModelNotFound when
    the registry does not know ``model``."""
    registry.model(model)
    return live_performance(
        registry.store,
        model,
        since=since,
        until=until,
        version=version,
        arm=arm,
        facts=lambda v: version_facts(registry, model, v),
        threshold=threshold,
        max_rows=max_rows,
    )
