"""What each arm of a deployment did over a window of the prediction log.

:func:`window_stats` summarises the log per (version, arm): requests, errors, latency percentiles and
the prediction distribution; :func:`shadow_agreement` joins mirrored (``shadow``) rows to the primary
rows of the same request id (:mod:`~modelward.monitoring.arm_performance` joins them to feedback).
The canary controller compares these between its arms; ``modelward deploy status`` shows them.

Only the columns a summary needs are read (never ``inputs``), and outputs are parsed with orjson, so a
window of 100,000 rows is summarised in well under a second on SQLite.

Distributions live on edges that every arm of one call shares, so two arms compare bin by bin:
class counts and a histogram of scores on :data:`~modelward.drift.SCORE_EDGES` (P(second class in
sorted order) for binary classifiers, the top probability otherwise) for classifiers; for regressors
a value histogram on quantile edges of the pooled predictions of the call (or on ``value_edges``
when the caller passes them, to compare with another window).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import orjson
from sqlalchemy import and_, func, or_, select

from modelward.drift.profile import SCORE_EDGES
from modelward.store.store import Store
from modelward.store.tables import predictions

__all__ = [
    "VALUE_BINS",
    "ArmWindow",
    "ShadowAgreement",
    "shadow_agreement",
    "summarize_arm",
    "window_stats",
]

Task = Literal["classification", "regression"]
VALUE_BINS = 10
"""Bins of the regression value histogram (quantile edges of the pooled predictions)."""
SHADOW = "shadow"


def _percentile(values: np.ndarray[Any, Any], q: float) -> float | None:
    return float(np.percentile(values, q)) if values.size else None


@dataclass(frozen=True, slots=True)
class ArmWindow:
    """One (version, arm) over a window: traffic, failures, latency and what it predicted.

    ``latency_*`` are over every request, failed or not (what the clients waited). ``classes`` counts
    predicted labels; ``score_counts`` bins scores on ``score_edges``; ``value_counts`` bins regression
    predictions on ``value_edges``. Empty distributions are ``{}`` / ``None``.
    """

    version: str
    arm: str | None
    requests: int = 0
    errors: int = 0
    latency_p50: float | None = None
    latency_p95: float | None = None
    latency_p99: float | None = None
    task: Task | None = None
    classes: Mapping[str, int] = field(default_factory=dict)
    score_edges: tuple[float, ...] = SCORE_EDGES
    score_counts: tuple[int, ...] | None = None
    value_edges: tuple[float, ...] | None = None
    value_counts: tuple[int, ...] | None = None

    @property
    def successes(self) -> int:
        return self.requests - self.errors

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "arm": self.arm,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "latency_ms": {"p50": self.latency_p50, "p95": self.latency_p95, "p99": self.latency_p99},
            "task": self.task,
            "classes": dict(self.classes),
            "score_edges": list(self.score_edges) if self.score_counts is not None else None,
            "score_counts": list(self.score_counts) if self.score_counts is not None else None,
            "value_edges": list(self.value_edges) if self.value_edges is not None else None,
            "value_counts": list(self.value_counts) if self.value_counts is not None else None,
        }


def summarize_arm(
    version: str,
    arm: str | None,
    *,
    latency_ms: Sequence[float],
    failed: Sequence[bool],
    labels: Iterable[str] = (),
    scores: Sequence[float] = (),
    values: Sequence[float] = (),
    task: Task | None = None,
    value_edges: Sequence[float] | None = None,
) -> ArmWindow:
    """An :class:`ArmWindow` from raw per-request values (what the store query gathers; tests and
    offline analyses build windows the same way). ``labels``/``scores``/``values`` are of the
    requests that succeeded."""
    latency = np.asarray(latency_ms, dtype=np.float64)
    if len(failed) != latency.size:
        raise ValueError(f"{len(failed)} failure flags for {latency.size} latencies")
    classes = dict(sorted(Counter(labels).items()))
    score_counts = None
    if len(scores):
        counts, _ = np.histogram(np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0), bins=SCORE_EDGES)
        score_counts = tuple(int(c) for c in counts)
    edges = tuple(float(e) for e in value_edges) if value_edges is not None else None
    value_counts = None
    if len(values):
        x = np.asarray(values, dtype=np.float64)
        x = x[np.isfinite(x)]
        if edges is None:
            edges = _quantile_edges(x)
        # Values beyond the shared edges belong to the outer bins: the histogram keeps every value.
        counts, _ = np.histogram(np.clip(x, edges[0], edges[-1]), bins=edges)
        value_counts = tuple(int(c) for c in counts)
    if task is None:
        task = "classification" if classes and not len(values) else "regression" if len(values) else None
    return ArmWindow(
        version=str(version),
        arm=arm,
        requests=int(latency.size),
        errors=int(sum(bool(f) for f in failed)),
        latency_p50=_percentile(latency, 50),
        latency_p95=_percentile(latency, 95),
        latency_p99=_percentile(latency, 99),
        task=task,
        classes=classes,
        score_counts=score_counts,
        value_edges=edges if value_counts is not None else None,
        value_counts=value_counts,
    )


def _quantile_edges(x: np.ndarray[Any, Any]) -> tuple[float, ...]:
    if not x.size:
        return (0.0, 1.0)
    edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, VALUE_BINS + 1)))
    if edges.size < 2:  # a constant prediction: one bin around it
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    return tuple(float(e) for e in edges)


def _score(probabilities: Mapping[str, Any]) -> float | None:
    try:
        p = [float(probabilities[k]) for k in sorted(probabilities)]
    except (TypeError, ValueError):
        return None
    if len(p) < 2:
        return None
    return p[1] if len(p) == 2 else max(p)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Gather:
    """Raw values of one (version, arm) while rows stream in (the hot loop of :func:`window_stats`)."""

    __slots__ = ("failed", "labels", "latency", "order", "scores", "values")

    def __init__(self) -> None:
        self.latency: list[float] = []
        self.failed: list[bool] = []
        self.labels: list[str] = []
        self.scores: list[float] = []
        self.values: list[float] = []
        self.order: dict[tuple[str, ...], tuple[int, bool]] = {}  # class keys -> (score column, max?)

    def add(self, latency_ms: float, error: str | None, outputs: str, task: Task | None) -> None:
        self.latency.append(latency_ms)
        self.failed.append(error is not None)
        if error is not None:
            return
        try:
            out = orjson.loads(outputs)
            prediction = out["prediction"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            return
        probabilities = out.get("probabilities")
        if task == "regression" or (task is None and probabilities is None and _is_number(prediction)):
            if _is_number(prediction) and math.isfinite(prediction):
                self.values.append(float(prediction))
            return
        self.labels.append(prediction if type(prediction) is str else _label(prediction))
        if type(probabilities) is dict and len(probabilities) > 1:
            keys = tuple(probabilities)
            found = self.order.get(keys)
            if found is None:
                found = self.order[keys] = (keys.index(sorted(keys)[1]), len(keys) > 2)
            try:
                values = [float(v) for v in probabilities.values()]
            except (TypeError, ValueError):
                return
            self.scores.append(max(values) if found[1] else values[found[0]])


def _in_window(query: Any, table: Any, model: str, since: float | None, until: float | None) -> Any:
    query = query.where(table.c.model == model)
    if since is not None:
        query = query.where(table.c.ts >= since)
    if until is not None:
        query = query.where(table.c.ts < until)
    return query


def window_stats(
    store: Store,
    model: str,
    since: float | None = None,
    until: float | None = None,
    *,
    include_shadow: bool = True,
    task: Task | None = None,
    value_edges: Sequence[float] | None = None,
    max_rows_per_arm: int | None = None,
) -> list[ArmWindow]:
    """Per (version, arm) summaries of ``model``'s rows with ``since <= ts < until``, sorted by arm
    then version. ``task`` forces how predictions are read (else: numbers without probabilities are
    regression). ``max_rows_per_arm`` keeps only the newest rows of each (version, arm): the
    database picks them (a window function), so a long window at high traffic costs the caller a
    bounded amount of parsing."""
    p = predictions.c
    query = _in_window(
        select(p.version, p.arm, p.latency_ms, p.error, p.outputs), predictions, model, since, until
    )
    if not include_shadow:
        query = query.where(or_(p.arm.is_(None), p.arm != SHADOW))
    if max_rows_per_arm is not None:
        rank = func.row_number().over(partition_by=(p.version, p.arm), order_by=p.id.desc()).label("rank")
        ranked = query.add_columns(rank).subquery()
        query = select(
            ranked.c.version, ranked.c.arm, ranked.c.latency_ms, ranked.c.error, ranked.c.outputs
        ).where(ranked.c.rank <= max_rows_per_arm)
    groups: dict[tuple[str, str | None], _Gather] = defaultdict(_Gather)
    with store.read() as conn:
        rows = conn.execute(query).all()
    for version, arm, latency_ms, error, outputs in rows:
        groups[(str(version), arm)].add(float(latency_ms), error, outputs, task)
    if value_edges is None:
        pooled = np.asarray([v for g in groups.values() for v in g.values], dtype=np.float64)
        if pooled.size:
            value_edges = _quantile_edges(pooled[np.isfinite(pooled)])
    out = [
        summarize_arm(
            version,
            arm,
            latency_ms=g.latency,
            failed=g.failed,
            labels=g.labels,
            scores=g.scores,
            values=g.values,
            task=task,
            value_edges=value_edges,
        )
        for (version, arm), g in groups.items()
    ]
    return sorted(out, key=lambda w: (w.arm or "", _version_key(w.version)))


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 62, version)


@dataclass(frozen=True, slots=True)
class ShadowAgreement:
    """How the shadow's answers compare with the primary's, request by request.

    ``compared`` counts the requests where both answered; ``agreement`` is the share of them with the
    same label (classifiers), ``mean_abs_diff`` the mean absolute difference of predictions
    (regressors) and ``mean_score_diff`` that of scores (classifiers with probabilities).
    ``unmatched`` counts shadow rows whose primary row is not (yet) in the log.
    """

    model: str
    shadow_versions: tuple[str, ...]
    primary_versions: tuple[str, ...]
    shadow_rows: int
    compared: int
    unmatched: int
    shadow_errors: int
    primary_errors: int
    agreement: float | None
    mean_abs_diff: float | None
    mean_score_diff: float | None
    shadow_latency_p50: float | None
    shadow_latency_p95: float | None
    primary_latency_p50: float | None
    primary_latency_p95: float | None

    @property
    def shadow_error_rate(self) -> float | None:
        return self.shadow_errors / self.shadow_rows if self.shadow_rows else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "shadow_versions": list(self.shadow_versions),
            "primary_versions": list(self.primary_versions),
            "shadow_rows": self.shadow_rows,
            "compared": self.compared,
            "unmatched": self.unmatched,
            "shadow_errors": self.shadow_errors,
            "shadow_error_rate": self.shadow_error_rate,
            "primary_errors": self.primary_errors,
            "agreement": self.agreement,
            "mean_abs_diff": self.mean_abs_diff,
            "mean_score_diff": self.mean_score_diff,
            "shadow_latency_ms": {"p50": self.shadow_latency_p50, "p95": self.shadow_latency_p95},
            "primary_latency_ms": {"p50": self.primary_latency_p50, "p95": self.primary_latency_p95},
        }


def _prediction(outputs: str) -> tuple[Any, float | None] | None:
    try:
        out = orjson.loads(outputs)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(out, dict) or "prediction" not in out:
        return None
    probabilities = out.get("probabilities")
    return out["prediction"], _score(probabilities) if isinstance(probabilities, dict) else None


def shadow_agreement(
    store: Store, model: str, since: float | None = None, until: float | None = None
) -> ShadowAgreement:
    """Join the window's shadow rows to the primary rows of the same request id and compare them."""
    s = predictions.alias("s")
    prim = predictions.alias("p")
    shadow_query = _in_window(
        select(s.c.request_id, s.c.version, s.c.latency_ms, s.c.error), s, model, since, until
    ).where(s.c.arm == SHADOW)
    join = (
        select(
            s.c.id.label("s_id"),
            s.c.ts.label("s_ts"),
            s.c.outputs.label("s_outputs"),
            s.c.error.label("s_error"),
            prim.c.ts.label("p_ts"),
            prim.c.version.label("p_version"),
            prim.c.outputs.label("p_outputs"),
            prim.c.error.label("p_error"),
            prim.c.latency_ms.label("p_latency"),
        )
        .select_from(
            s.join(
                prim,
                and_(
                    prim.c.request_id == s.c.request_id,
                    prim.c.model == s.c.model,
                    or_(prim.c.arm.is_(None), prim.c.arm != SHADOW),
                ),
            )
        )
        .where(s.c.arm == SHADOW)
    )
    join = _in_window(join, s, model, since, until)
    with store.read() as conn:
        shadow_rows = conn.execute(shadow_query).all()
        candidates = conn.execute(join).all()
    # A request id seen more than once (a client reusing ids): the primary row nearest in time.
    nearest: dict[int, Any] = {}
    for r in candidates:
        best = nearest.get(r.s_id)
        if best is None or abs(r.p_ts - r.s_ts) < abs(best.p_ts - best.s_ts):
            nearest[r.s_id] = r
    matched = list(nearest.values())
    shadow_latency = np.asarray([r.latency_ms for r in shadow_rows], dtype=np.float64)
    primary_latency = np.asarray([r.p_latency for r in matched], dtype=np.float64)
    same = 0
    labelled = 0
    diffs: list[float] = []
    score_diffs: list[float] = []
    compared = 0
    for r in matched:
        if r.s_error is not None or r.p_error is not None:
            continue
        a, b = _prediction(r.p_outputs), _prediction(r.s_outputs)
        if a is None or b is None:
            continue
        compared += 1
        (pa, sa), (pb, sb) = a, b
        if _is_number(pa) and _is_number(pb) and sa is None and sb is None:
            diffs.append(abs(float(pa) - float(pb)))
        else:
            labelled += 1
            same += _label(pa) == _label(pb)
            if sa is not None and sb is not None:
                score_diffs.append(abs(sa - sb))
    return ShadowAgreement(
        model=model,
        shadow_versions=tuple(sorted({str(r.version) for r in shadow_rows}, key=_version_key)),
        primary_versions=tuple(sorted({str(r.p_version) for r in matched}, key=_version_key)),
        shadow_rows=len(shadow_rows),
        compared=compared,
        unmatched=len(shadow_rows) - len({r.s_id for r in matched}),
        shadow_errors=sum(r.error is not None for r in shadow_rows),
        primary_errors=sum(r.p_error is not None for r in matched),
        agreement=same / labelled if labelled else None,
        mean_abs_diff=float(np.mean(diffs)) if diffs else None,
        mean_score_diff=float(np.mean(score_diffs)) if score_diffs else None,
        shadow_latency_p50=_percentile(shadow_latency, 50),
        shadow_latency_p95=_percentile(shadow_latency, 95),
        primary_latency_p50=_percentile(primary_latency, 50),
        primary_latency_p95=_percentile(primary_latency, 95),
    )
