"""The triggers of a retraining policy, judged at a moment ``now`` (the clock is an argument).

Each judge reads the store (and the registry for references and version facts) and answers a
:class:`Firing` (the trigger, a reason a person reads, the figures it saw) or None. Nothing here
remembers anything between calls: the drift trigger looks at the last N windows each time, and the
schedule compares the cron's last due time with the last scheduled run in the store, so any
replica that takes the controller lease over judges the same way.

* drift: the dataset drift verdict of the judged version (the champion, else the newest version
  with traffic) in each of the ``windows`` consecutive windows of ``window`` seconds ending at
  ``now``; a window without traffic is no evidence, so it breaks the streak;
* performance: the live metric of that version over ``window``, from feedback, on at least
  ``min_labels`` labels, below ``min`` (or above ``max``);
* estimated: the label-free estimate of that version over ``window``, trusted only (its
  calibration check passed), on at least ``min_predictions`` predictions, below ``min``;
* schedule: the cron expression's last due time (UTC) is later than both the policy's last change
  and the start of the last scheduled run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelward.errors import ConfigError
from modelward.governance.retrain_policy import RetrainPolicy

if TYPE_CHECKING:
    from modelward.drift import DatasetProfile
    from modelward.registry.registry import Registry

__all__ = [
    "Firing",
    "judge_drift",
    "judge_estimated",
    "judge_performance",
    "judge_schedule",
    "judge_triggers",
]

MAX_ROWS = 50_000  # the newest rows of a performance window (the controller may run inside a server)


@dataclass(frozen=True, slots=True)
class Firing:
    """A trigger that fired: which, why (for people), and the figures it saw (for scripts)."""

    trigger: str
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"trigger": self.trigger, "reason": self.reason, "figures": self.figures}


def _version(registry: Registry, model: str, since: float, now: float) -> str | None:
    from modelward.monitoring.live_drift import default_version

    try:
        return default_version(registry, model, since=since, until=now)
    except ConfigError:  # no champion and no traffic: nothing to judge
        return None


def judge_drift(
    registry: Registry,
    model: str,
    policy: RetrainPolicy,
    now: float,
    references: dict[tuple[str, str], DatasetProfile] | None = None,
) -> Firing | None:
    from modelward.monitoring.live_drift import live_report, load_reference

    rule = policy.drift
    if rule is None:
        return None
    version = _version(registry, model, now - rule.windows * rule.window, now)
    if version is None:
        return None
    cache = references if references is not None else {}
    if (model, version) not in cache:
        cache[model, version] = load_reference(registry, model, version)
    shares: list[float] = []
    drifted: set[str] = set()
    for k in range(rule.windows):  # newest first: the streak ends at the first window without drift
        live = live_report(
            registry, model, version, rule.window, reference=cache[model, version], now=now - k * rule.window
        )
        if live.report is None or not live.report.dataset_drift:
            return None
        shares.append(round(live.report.share_drifted, 4))
        drifted.update(live.report.drifted_features)
    figures = {
        "version": version,
        "windows": rule.windows,
        "window_seconds": rule.window,
        "share_drifted": shares,
        "drifted_features": sorted(drifted),
    }
    reason = (
        f"dataset drift of {model} v{version} in {rule.windows} consecutive windows of "
        f"{rule.window:g} s (share of drifted features: {', '.join(f'{s:.2f}' for s in shares)})"
    )
    return Firing("drift", reason, figures)


def _group(registry: Registry, model: str, window: float, now: float) -> tuple[str, Any] | None:
    from modelward.feedback.performance import performance_report

    version = _version(registry, model, now - window, now)
    if version is None:
        return None
    report = performance_report(
        registry, model, since=now - window, until=now, version=version, max_rows=MAX_ROWS
    )
    group = report.of_version(version)
    return None if group is None else (version, group)


def judge_performance(registry: Registry, model: str, policy: RetrainPolicy, now: float) -> Firing | None:
    rule = policy.performance
    if rule is None:
        return None
    found = _group(registry, model, rule.window, now)
    if found is None:
        return None
    version, group = found
    value = group.value(rule.metric)
    if value is None or not math.isfinite(value) or group.n_used < rule.min_labels:
        return None
    low = rule.min is not None and value < rule.min
    high = rule.max is not None and value > rule.max
    if not (low or high):
        return None
    bound = f"below its floor {rule.min:g}" if low else f"above its ceiling {rule.max:g}"
    figures = {
        "version": version,
        "metric": rule.metric,
        "value": value,
        "min": rule.min,
        "max": rule.max,
        "labels": group.n_used,
        "window_seconds": rule.window,
    }
    reason = f"live {rule.metric} of {model} v{version} is {value:.4f}, {bound} ({group.n_used} labels)"
    return Firing("performance", reason, figures)


def judge_estimated(registry: Registry, model: str, policy: RetrainPolicy, now: float) -> Firing | None:
    rule = policy.estimated
    if rule is None:
        return None
    found = _group(registry, model, rule.window, now)
    if found is None:
        return None
    version, group = found
    estimate = group.estimated.get(rule.metric)
    if estimate is None or estimate.value is None or not estimate.trusted:
        return None
    if group.n_predictions < rule.min_predictions or not estimate.value < rule.min:
        return None
    figures = {
        "version": version,
        "metric": rule.metric,
        "estimate": estimate.value,
        "min": rule.min,
        "predictions": group.n_predictions,
        "window_seconds": rule.window,
    }
    reason = (
        f"estimated {rule.metric} of {model} v{version} is {estimate.value:.4f}, below its floor "
        f"{rule.min:g} ({group.n_predictions} predictions, no labels needed)"
    )
    return Firing("estimated", reason, figures)


def judge_schedule(
    model: str, policy: RetrainPolicy, now: float, *, policy_set_at: float, last_scheduled: float | None
) -> Firing | None:
    if policy.schedule is None:
        return None
    from croniter import croniter

    due = float(croniter(policy.schedule, now).get_prev(float))
    if due <= policy_set_at or (last_scheduled is not None and due <= last_scheduled):
        return None
    figures = {"schedule": policy.schedule, "due": due}
    return Firing("schedule", f"scheduled retrain of {model} ({policy.schedule}, UTC)", figures)


def judge_triggers(
    registry: Registry,
    model: str,
    policy: RetrainPolicy,
    now: float,
    *,
    policy_set_at: float,
    last_scheduled: float | None,
    references: dict[tuple[str, str], DatasetProfile] | None = None,
    problems: dict[str, str] | None = None,
) -> Firing | None:
    """The first trigger of ``policy`` that fires at ``now`` (drift, performance, estimated,
    schedule), or None. A judge that fails is reported in ``problems`` and the others still run."""
    judges: list[tuple[str, Callable[[], Firing | None]]] = [
        ("drift", lambda: judge_drift(registry, model, policy, now, references)),
        ("performance", lambda: judge_performance(registry, model, policy, now)),
        ("estimated", lambda: judge_estimated(registry, model, policy, now)),
        (
            "schedule",
            lambda: judge_schedule(
                model, policy, now, policy_set_at=policy_set_at, last_scheduled=last_scheduled
            ),
        ),
    ]
    for name, judge in judges:
        if getattr(policy, name) is None:
            continue
        try:
            firing = judge()
        except Exception as exc:  # a reference that cannot load, a store hiccup: judge the others
            if problems is not None:
                problems[name] = f"{type(exc).__name__}: {exc}"
            continue
        if firing is not None:
            return firing
    return None
