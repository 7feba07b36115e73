"""Each arm's live metric from ground truth: predictions of a window joined to their feedback.

The canary controller's performance rule compares these between baseline and canary. Accuracy and
error rate (label equals the predicted label), MAE and RMSE (numeric labels) are counted here, with
standard errors so the rule can tell a real drop from noise; other metrics (ROC AUC, F1, ...) come
from :mod:`modelward.feedback.performance`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from sqlalchemy import or_, select

from modelward.monitoring.window_stats import SHADOW, _in_window, _is_number, _label, _prediction
from modelward.store.store import Store
from modelward.store.tables import feedback, predictions

__all__ = ["COUNTED_METRICS", "LOWER_IS_BETTER", "ArmPerformance", "arm_performance"]


@dataclass(frozen=True, slots=True)
class ArmPerformance:
    """A live metric of one arm from the requests that received ground truth."""

    arm: str | None
    labels: int
    metric: str
    value: float | None
    stderr: float | None = None  # standard error of ``value``, when known

    def to_dict(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "labels": self.labels,
            "metric": self.metric,
            "value": self.value,
            "stderr": self.stderr,
        }


LOWER_IS_BETTER = frozenset({"mae", "rmse", "error_rate", "log_loss", "brier"})
"""Metrics where a higher value is worse (the canary's performance rule flips its comparison)."""
COUNTED_METRICS = frozenset({"accuracy", "error_rate", "mae", "rmse"})
"""The metrics :func:`arm_performance` computes."""


def arm_performance(
    store: Store,
    model: str,
    since: float | None = None,
    until: float | None = None,
    *,
    metric: str = "accuracy",
) -> dict[str, ArmPerformance]:
    """Per arm (shadow excluded), ``metric`` over the window's requests that have feedback.

    Computes ``accuracy`` and ``error_rate`` (labels equal to the predicted label) and ``mae`` and
    ``rmse`` (numeric labels); another metric gives ``value=None`` with the label count, so callers
    can tell "no labels" from "not computed here".
    """
    p = predictions.c
    query = _in_window(
        select(p.arm, p.outputs, feedback.c.label, feedback.c.value).select_from(
            predictions.join(feedback, feedback.c.request_id == p.request_id)
        ),
        predictions,
        model,
        since,
        until,
    ).where(p.error.is_(None), or_(p.arm.is_(None), p.arm != SHADOW))
    hits: dict[str | None, list[float]] = defaultdict(list)
    with store.read() as conn:
        for row in conn.execute(query):
            found = _prediction(row.outputs)
            if found is None:
                continue
            predicted = found[0]
            if metric in ("accuracy", "error_rate"):
                try:
                    truth = orjson.loads(row.label)
                except orjson.JSONDecodeError:
                    continue
                hits[row.arm].append(float(_label(truth) == _label(predicted)))
            elif row.value is not None and _is_number(predicted):
                hits[row.arm].append(float(predicted) - float(row.value))
            else:
                hits[row.arm].append(math.nan)
    out: dict[str, ArmPerformance] = {}
    for arm, xs in hits.items():
        x = np.asarray(xs, dtype=np.float64)
        x = x[np.isfinite(x)]
        value: float | None = None
        stderr: float | None = None
        n = int(x.size)
        if n and metric in COUNTED_METRICS:
            if metric in ("accuracy", "error_rate"):
                value = float(x.mean()) if metric == "accuracy" else 1.0 - float(x.mean())
                stderr = math.sqrt(value * (1 - value) / n)
            elif metric == "mae":
                value = float(np.abs(x).mean())
                stderr = float(np.abs(x).std(ddof=1) / math.sqrt(n)) if n > 1 else None
            else:
                value = float(np.sqrt((x**2).mean()))
                # Delta method: se(sqrt(m)) = se(m) / (2 sqrt(m)).
                se_ms = float((x**2).std(ddof=1) / math.sqrt(n)) if n > 1 else None
                stderr = se_ms / (2 * value) if se_ms is not None and value > 0 else None
        out[arm or ""] = ArmPerformance(arm, n, metric, value, stderr)
    return out
