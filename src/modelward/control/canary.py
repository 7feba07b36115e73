"""Canary analysis: compare a canary with its baseline over a step's window and decide. Pure.

:func:`decide` takes the plan, its rules, one :class:`~modelward.monitoring.window_stats.ArmWindow`
per arm (and, when labels exist, each arm's live performance) and returns a :class:`CanaryDecision`:
``rollback`` as soon as the canary's error rate is shown to be too high, otherwise nothing until the
step's duration has passed; then ``rollback`` if any check with enough data fails, ``hold`` while a
required check lacks data, and ``advance`` (``promote`` on the last step) when every check passes.
The rules and why they are shaped so are in docs/routing.md ("Canary").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from modelward.drift.stats import chi_square, js_distance
from modelward.monitoring.arm_performance import LOWER_IS_BETTER, ArmPerformance
from modelward.monitoring.window_stats import ArmWindow
from modelward.routing.spec import CanaryPlan, CanaryRules

__all__ = [
    "CONFIDENCE_Z",
    "DIVERGENCE_ALPHA",
    "EARLY_ERROR_REQUESTS",
    "Action",
    "CanaryDecision",
    "Check",
    "decide",
    "newcombe_lower",
    "wilson_interval",
]

Action = Literal["advance", "hold", "promote", "rollback"]
Status = Literal["pass", "fail", "insufficient", "skipped"]

CONFIDENCE_Z = 1.6448536269514722
"""z of a one-sided 95 % bound: every "with 95 % confidence" below."""
EARLY_ERROR_REQUESTS = 20
"""Canary requests before the error-rate test may roll back mid-step (or ``min_requests`` if fewer)."""
DIVERGENCE_ALPHA = 0.01
"""A divergence above the threshold fails only if a chi-square test also says it is not noise."""


@dataclass(frozen=True, slots=True)
class Check:
    """One rule's outcome: ``pass``, ``fail``, ``insufficient`` (not enough data yet) or ``skipped``
    (does not apply, e.g. no labels). ``value`` and ``threshold`` are in the rule's own unit."""

    name: str
    status: Status
    detail: str
    value: float | None = None
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "value": self.value,
            "threshold": self.threshold,
        }


@dataclass(frozen=True, slots=True)
class CanaryDecision:
    action: Action
    reasons: list[str]
    checks: list[Check] = field(default_factory=list)
    step: int = 0
    percent: float = 0.0
    at: float = 0.0
    waiting: Literal["time", "data"] | None = None  # what a hold waits for

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "reasons": list(self.reasons),
            "checks": [c.to_dict() for c in self.checks],
            "step": self.step,
            "percent": self.percent,
            "at": self.at,
            "waiting": self.waiting,
        }

    @property
    def signature(self) -> tuple[str, str | None, tuple[tuple[str, str], ...]]:
        """What makes two decisions "the same" for logging: action, what a hold waits for, and every
        check's status (not the numbers, which move with each request)."""
        return self.action, self.waiting, tuple((c.name, c.status) for c in self.checks)


def wilson_interval(failures: int, n: int, z: float = CONFIDENCE_Z) -> tuple[float, float]:
    """Wilson score interval of a proportion; ``(0, 1)`` without observations."""
    if n <= 0:
        return 0.0, 1.0
    p = failures / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_lower(x1: int, n1: int, x2: int, n2: int, z: float = CONFIDENCE_Z) -> float:
    """Lower bound of ``p1 - p2`` (Newcombe's hybrid score method, from two Wilson intervals)."""
    p1, p2 = x1 / n1 if n1 else 0.0, x2 / n2 if n2 else 0.0
    l1, _ = wilson_interval(x1, n1, z)
    _, u2 = wilson_interval(x2, n2, z)
    return p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f} ms"


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds}s"


def _error_check(rules: CanaryRules, base: ArmWindow, can: ArmWindow) -> Check:
    n, x = can.requests, can.errors
    lower, _ = wilson_interval(x, n)
    detail = (
        f"canary {x}/{n} failed ({_pct(can.error_rate)}, 95% lower bound {_pct(lower)}) vs baseline "
        f"{base.errors}/{base.requests} ({_pct(base.error_rate)})"
    )
    early = min(EARLY_ERROR_REQUESTS, rules.min_requests)
    if n >= early and lower > rules.max_error_rate:
        # Without baseline traffic (e.g. at 100 %) only the absolute bound can speak.
        excess = newcombe_lower(x, n, base.errors, base.requests) if base.requests else math.inf
        if excess > rules.max_error_rate_increase:
            why = (
                f"error rate above {_pct(rules.max_error_rate)} and "
                f"{_pct(rules.max_error_rate_increase)} above the baseline's with 95% confidence: "
            )
            return Check("error_rate", "fail", why + detail, can.error_rate, rules.max_error_rate)
    if n < rules.min_requests:
        return Check(
            "error_rate",
            "insufficient",
            f"canary has {n} of {rules.min_requests} requests; " + detail,
            can.error_rate,
            rules.max_error_rate,
        )
    return Check("error_rate", "pass", detail, can.error_rate, rules.max_error_rate)


def _enough(
    rules: CanaryRules, base: ArmWindow, can: ArmWindow, what: str, *, ok_only: bool = False
) -> str | None:
    nb = base.successes if ok_only else base.requests
    nc = can.successes if ok_only else can.requests
    if nb >= rules.min_requests and nc >= rules.min_requests:
        return None
    return f"{what} needs {rules.min_requests} per arm (baseline {nb}, canary {nc})"


def _latency_check(rules: CanaryRules, base: ArmWindow, can: ArmWindow, q: Literal[95, 99]) -> Check:
    name = f"latency_p{q}"
    limit = rules.max_latency_p95_ratio if q == 95 else rules.max_latency_p99_ratio
    b = base.latency_p95 if q == 95 else base.latency_p99
    c = can.latency_p95 if q == 95 else can.latency_p99
    short = _enough(rules, base, can, f"p{q} latency")
    if short is not None or b is None or c is None:
        return Check(name, "insufficient", short or f"no p{q} latency yet", None, limit)
    detail = f"canary p{q} {_ms(c)} vs baseline {_ms(b)}"
    ratio = c / b if b > 0 else math.inf
    if c - b <= rules.latency_slack_ms:
        # Within the slack (in particular when both arms are faster than it) a ratio is noise:
        # 1 ms vs 3 ms is "3x" and matters to nobody.
        within = f" (within {rules.latency_slack_ms:g} ms of the baseline)"
        return Check(name, "pass", detail + within, ratio if b > 0 else None, limit)
    status: Status = "fail" if ratio > limit else "pass"
    return Check(name, status, f"{detail}: {ratio:.2f}x (limit {limit:g}x)", ratio, limit)


def _aligned(base: Mapping[str, int], can: Mapping[str, int]) -> tuple[list[int], list[int]]:
    keys = sorted(set(base) | set(can))
    return [base.get(k, 0) for k in keys], [can.get(k, 0) for k in keys]


def _divergence_check(rules: CanaryRules, base: ArmWindow, can: ArmWindow, percent: float) -> Check:
    limit = rules.max_divergence
    if percent >= 100:
        # The baseline gets no traffic now: its window is an earlier one, and comparing what two
        # periods' inputs produced would measure input drift, not the canary. The earlier steps
        # compared the arms on the same traffic.
        detail = "no concurrent baseline traffic at 100%: compared on the earlier steps"
        return Check("divergence", "skipped", detail, None, limit)
    short = _enough(rules, base, can, "prediction divergence", ok_only=True)
    if short is not None:
        return Check("divergence", "insufficient", short, None, limit)
    if base.classes and can.classes:
        b, c = _aligned(base.classes, can.classes)
        what = "predicted labels"
        extra = ""
        if base.score_counts is not None and can.score_counts is not None:
            extra = f"; scores {js_distance(base.score_counts, can.score_counts):.3f} (for information)"
    elif base.value_counts is not None and can.value_counts is not None:
        if base.value_edges != can.value_edges:
            return Check(
                "divergence", "skipped", "the arms' value histograms have different edges", None, limit
            )
        b, c = list(base.value_counts), list(can.value_counts)
        what, extra = "predicted values", ""
    else:
        return Check("divergence", "skipped", "the arms' predictions are not comparable", None, limit)
    distance = js_distance(b, c)
    p_value = chi_square(b, c).p_value
    detail = (
        f"Jensen-Shannon distance of {what} {distance:.3f} "
        f"(limit {limit:g}, chi-square p {p_value:.3g}){extra}"
    )
    failed = distance > limit and p_value < DIVERGENCE_ALPHA
    return Check("divergence", "fail" if failed else "pass", detail, distance, limit)


def _performance_check(rules: CanaryRules, performance: Mapping[str, ArmPerformance] | None) -> Check:
    limit = rules.max_performance_drop
    base = performance.get("baseline") if performance else None
    can = performance.get("canary") if performance else None
    if base is None or can is None or base.labels < rules.min_labels or can.labels < rules.min_labels:
        nb, nc = (base.labels if base else 0), (can.labels if can else 0)
        return Check(
            "performance",
            "skipped",
            f"{rules.metric} needs {rules.min_labels} labels per arm (baseline {nb}, canary {nc})",
            None,
            limit,
        )
    if base.value is None or can.value is None:
        return Check(
            "performance", "skipped", f"{rules.metric} is not computed from feedback here", None, limit
        )
    if rules.metric in LOWER_IS_BETTER:
        drop = can.value - base.value
        if rules.metric != "error_rate" and base.value > 0:
            drop /= base.value  # losses (mae, rmse, log loss) have no fixed scale: compare relatively
    else:
        drop = base.value - can.value
    detail = (
        f"{rules.metric} canary {can.value:.4g} ({can.labels} labels) vs baseline {base.value:.4g} "
        f"({base.labels} labels): drop {drop:.4g} (limit {limit:g})"
    )
    significant = True
    se_b, se_c = _stderr(base, rules.metric), _stderr(can, rules.metric)
    if se_b is not None and se_c is not None and (se_b > 0 or se_c > 0):
        raw = abs(can.value - base.value)
        significant = raw / math.sqrt(se_b**2 + se_c**2) > CONFIDENCE_Z
        detail += "" if significant else " but not significant at 95%"
    failed = drop > limit and significant
    return Check("performance", "fail" if failed else "pass", detail, drop, limit)


def _stderr(perf: ArmPerformance, metric: str) -> float | None:
    if perf.stderr is not None:
        return perf.stderr
    ok = perf.value is not None and perf.labels > 0 and 0 <= perf.value <= 1
    if ok and perf.value is not None and metric in ("accuracy", "error_rate"):
        return math.sqrt(perf.value * (1 - perf.value) / perf.labels)
    return None


def decide(
    plan: CanaryPlan,
    rules: CanaryRules | None,
    baseline: ArmWindow,
    canary: ArmWindow,
    now: float,
    performance: Mapping[str, ArmPerformance] | None = None,
) -> CanaryDecision:
    """What to do with a running canary now. ``baseline``/``canary`` cover the current step (or, for
    a baseline without traffic at 100 %, the previous one); ``performance`` maps ``"baseline"`` and
    ``"canary"`` to live metrics from feedback. ``rules`` defaults to the plan's."""
    rules = rules or plan.rules
    position = f"step {plan.step + 1}/{len(plan.steps)} ({plan.percent:g}%)"

    def verdict(
        action: Action,
        reasons: list[str],
        checks: list[Check],
        waiting: Literal["time", "data"] | None = None,
    ) -> CanaryDecision:
        return CanaryDecision(action, reasons, checks, plan.step, plan.percent, now, waiting)

    if plan.state != "running":
        return verdict("hold", [f"the canary is {plan.state.replace('_', ' ')}; nothing to do"], [])
    checks = [
        _error_check(rules, baseline, canary),
        _latency_check(rules, baseline, canary, 95),
        _latency_check(rules, baseline, canary, 99),
        _divergence_check(rules, baseline, canary, plan.percent),
        _performance_check(rules, performance),
    ]
    if checks[0].status == "fail":
        return verdict("rollback", [checks[0].detail], checks)
    started = plan.step_started_at if plan.step_started_at is not None else now
    left = started + plan.step_seconds - now
    if left > 0:
        return verdict("hold", [f"{position}: {_duration(left)} left in the step"], checks, "time")
    failed = [c for c in checks if c.status == "fail"]
    if failed:
        return verdict("rollback", [c.detail for c in failed], checks)
    waiting = [c for c in checks if c.status == "insufficient"]
    if waiting:
        names = ", ".join(c.name.replace("_", " ") for c in waiting)
        counts = f"baseline {baseline.requests}, canary {canary.requests}"
        need = f"{names} need {rules.min_requests} requests per arm ({counts})"
        return verdict("hold", [f"{position}: not enough data: {need}"], checks, "data")
    if plan.last_step:
        return verdict("promote", [f"{position}: every check passed on the last step"], checks)
    nxt = plan.steps[plan.step + 1]
    return verdict("advance", [f"{position}: every check passed; going to {nxt:g}%"], checks)
