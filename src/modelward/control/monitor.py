"""The monitor task: every interval, for each served model, gather what the alert rules read and
evaluate them through the :class:`~modelward.monitoring.alerts.AlertCenter`.

For each model, over each window its rules judge (a rule's own ``window``, else
``window_seconds``, the alerts file's ``window``, an hour by default; each window is gathered once,
and the monitor's own always, for the gauges):

* the version: the champion alias, else the newest version with live traffic
  (:func:`modelward.monitoring.live_drift.default_version`);
* live drift of that version against its reference profile
  (:func:`~modelward.monitoring.live_drift.live_report`; references are loaded once per version and
  kept), pushed to the drift gauges (the monitor's window only) when given;
* live performance and label-free estimates
  (:func:`~modelward.feedback.performance.performance_report`) of every version and arm, pushed to
  the performance gauges (the monitor's window only: each arm, and the model as a whole); the
  rules read that version's figures over all its arms, and
  the estimate's reference is the accuracy measured on labelled reference data (its calibration);
* traffic from the prediction log (:func:`traffic_by_version`): requests, failed requests, p95
  latency of each version that answered clients, over all its arms (shadow traffic left out).

Every signal names the version it judges, and a new version is a new incident: the drift and
performance rules judge that version; ``error_rate`` and ``latency`` judge it and every other
version with requests in the window. The signals go to the alert center with ``supersede=True``:
the alert of a version no longer judged (the champion moved; its requests left the window) is
closed as superseded.

A part that fails (a reference that cannot be loaded, a store hiccup) is logged and reported, and
the rules that read it are not evaluated (no resolve, no supersede for lack of data); the others
still run.

Plugging it in (the controller is ``modelward.control.controller``; it runs tasks only while it
holds the controller lease, so one replica evaluates at a time, and the alert center's state in
the store de-duplicates in any case)::

    config = load_alert_config(settings.alerts_file, allow_private=settings.alerts_allow_private)
    center = config.center(registry.store)
    monitor = MonitorTask(registry, center, rules=config.rules, models=served_names,
                          window_seconds=config.window, drift_gauges=DriftGauges(prom),
                          performance_gauges=PerformanceGauges(prom))
    Controller(registry, tasks=[monitor], alert=center.event)

The controller ticks every few seconds; the task does its work at most every ``interval`` seconds
(default 60) and answers None on the ticks in between.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection, func, or_, select
from sqlalchemy.sql import ColumnElement

from modelward.drift import DatasetProfile, DriftReport
from modelward.durations import format_duration
from modelward.errors import ConfigError
from modelward.feedback.performance import PerformanceReport, performance_report
from modelward.monitoring.alert_config import DEFAULT_RULES, DEFAULT_WINDOW
from modelward.monitoring.alert_rules import (
    AlertInputs,
    AlertRule,
    EstimateSnapshot,
    PerformanceSnapshot,
    RuleSet,
    Signal,
    TrafficStats,
)
from modelward.monitoring.alerts import AlertCenter, Transition
from modelward.monitoring.live_drift import default_version, live_report, load_reference
from modelward.registry.registry import Registry
from modelward.routing.spec import SHADOW_ARM
from modelward.store.store import Store
from modelward.store.tables import predictions

__all__ = ["ModelCheck", "MonitorResult", "MonitorTask", "traffic_by_version", "traffic_stats"]

log = logging.getLogger("modelward.monitor")

_DRIFT_KINDS = ("dataset_drift", "feature_drift")
_PERFORMANCE_KINDS = ("performance", "estimated_drop")
_TRAFFIC_KINDS = ("error_rate", "latency")
# The rule kinds that read each part of the inputs (a part that fails leaves them out).
_PARTS: dict[str, tuple[str, ...]] = {
    "version": _DRIFT_KINDS + _PERFORMANCE_KINDS,
    "drift": _DRIFT_KINDS,
    "performance": _PERFORMANCE_KINDS,
    "traffic": _TRAFFIC_KINDS,
}


class DriftGaugeSink(Protocol):
    """What :class:`~modelward.monitoring.drift_gauges.DriftGauges` offers."""

    def update(self, model: str, version: str, report: DriftReport) -> Any: ...


class PerformanceGaugeSink(Protocol):
    """What :class:`~modelward.monitoring.performance_gauges.PerformanceGauges` offers."""

    def update(self, report: PerformanceReport) -> Any: ...


def _served(model: str, since: float, until: float) -> list[ColumnElement[bool]]:
    p = predictions.c
    return [p.model == model, p.ts >= since, p.ts < until, or_(p.arm.is_(None), p.arm != SHADOW_ARM)]


def _p95(conn: Connection, where: list[ColumnElement[bool]], total: int) -> float | None:
    if not total:
        return None
    p = predictions.c
    # The two ranks around 0.95 * (n - 1), counted from the top: the database keeps the top 5% in
    # its sorter rather than sorting the whole window (ten times faster on SQLite).
    position = 0.95 * (total - 1)
    low = math.floor(position)
    high = min(low + 1, total - 1)
    query = (
        select(p.latency_ms)
        .where(*where)
        .order_by(p.latency_ms.desc())
        .offset(total - 1 - high)
        .limit(high - low + 1)
    )
    top = [float(v) for (v,) in conn.execute(query)]
    upper, lower = top[0], top[-1]
    return lower + (upper - lower) * (position - low)


def traffic_stats(
    store: Store, model: str, since: float, until: float, *, version: str | None = None
) -> TrafficStats:
    """Requests, failed requests and the p95 latency of ``model`` (of one ``version``, when given)
    in ``[since, until)``.

    Rows of every version and arm that answered clients count; shadow rows do not. The p95 is over
    every request, failed or not (what clients waited, as the canary's window statistics count it),
    interpolated linearly between ranks like NumPy's default percentile; the database finds the two
    ranks, so only two latencies leave it (a 500,000-row window takes about 0.3 s on SQLite).
    """
    p = predictions.c
    where = _served(model, since, until)
    if version is not None:
        where.append(p.version == version)
    with store.read() as conn:
        total, errors = conn.execute(select(func.count(), func.count(p.error)).where(*where)).one()
        total, errors = int(total or 0), int(errors or 0)
        return TrafficStats(total, errors, _p95(conn, where, total), until - since)


def traffic_by_version(store: Store, model: str, since: float, until: float) -> dict[str, TrafficStats]:
    """:func:`traffic_stats` of each version of ``model`` that answered clients in ``[since, until)``."""
    p = predictions.c
    where = _served(model, since, until)
    out: dict[str, TrafficStats] = {}
    with store.read() as conn:
        counts = conn.execute(
            select(p.version, func.count(), func.count(p.error)).where(*where).group_by(p.version)
        ).all()
        for version, total, errors in sorted(counts, key=lambda row: _version_order(str(row[0]))):
            mine = [*where, p.version == version]
            stats = TrafficStats(int(total), int(errors), _p95(conn, mine, int(total)), until - since)
            out[str(version)] = stats
    return out


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 62, version)


def _traffic_dict(traffic: TrafficStats | None) -> dict[str, Any] | None:
    if traffic is None:
        return None
    return {"requests": traffic.requests, "errors": traffic.errors, "p95_ms": traffic.p95_ms}


def _inputs_dict(inputs: AlertInputs) -> dict[str, Any]:
    drift = inputs.drift
    return {
        "version": inputs.version,
        "drift": None
        if drift is None
        else {"dataset_drift": drift.dataset_drift, "share": drift.share_drifted},
        "traffic": _traffic_dict(inputs.traffic),
        "labels": None if inputs.performance is None else inputs.performance.labels,
    }


@dataclass(frozen=True, slots=True)
class ModelCheck:
    """What one model's evaluation saw and sent. ``version``, ``inputs`` and ``traffic`` are of the
    monitor's window; ``windows`` holds the inputs of every window a rule judges (the monitor's too)."""

    model: str
    version: str | None  # the version judged (the champion, else the newest with traffic)
    inputs: AlertInputs  # what the rules read of that version
    transitions: tuple[Transition, ...] = ()
    problems: dict[str, str] = field(default_factory=dict)
    traffic: Mapping[str, TrafficStats] = field(default_factory=dict)  # of each version served
    windows: Mapping[float, AlertInputs] = field(default_factory=dict)  # by window, in seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            **_inputs_dict(self.inputs),
            "traffic_by_version": {v: _traffic_dict(t) for v, t in self.traffic.items()},
            "windows": {f"{seconds:g}": _inputs_dict(inputs) for seconds, inputs in self.windows.items()},
            "sent": [
                {
                    "kind": t.kind,
                    "rule": t.notification.rule,
                    "version": t.notification.version,
                    "subject": t.notification.subject,
                    "delivered": t.delivered,
                }
                for t in self.transitions
            ],
            "problems": dict(self.problems),
        }


@dataclass(frozen=True, slots=True)
class _Judged:
    """One window's gathering: the judged version's inputs, each version's traffic, the signals."""

    inputs: AlertInputs
    traffic: dict[str, TrafficStats]
    signals: list[Signal]


@dataclass(frozen=True, slots=True)
class MonitorResult:
    """One run: when, and each model's check."""

    at: float
    checks: tuple[ModelCheck, ...]

    @property
    def transitions(self) -> tuple[Transition, ...]:
        return tuple(t for c in self.checks for t in c.transitions)

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "models": [c.to_dict() for c in self.checks]}


class MonitorTask:
    """Evaluates ``rules`` for each of ``models`` (None: every registered model) every ``interval``
    seconds; see the module docstring. Constructing it does no I/O."""

    name = "monitor"

    def __init__(
        self,
        registry: Registry,
        alert_center: AlertCenter,
        *,
        rules: RuleSet | Sequence[AlertRule] = DEFAULT_RULES,
        models: Sequence[str] | None = None,
        window_seconds: float = DEFAULT_WINDOW,
        interval: float = 60.0,
        drift_gauges: DriftGaugeSink | None = None,
        performance_gauges: PerformanceGaugeSink | None = None,
        max_rows: int = 50_000,
    ) -> None:
        if not window_seconds > 0:
            raise ConfigError("the monitor's window must be positive")
        if interval < 0:
            raise ConfigError("the monitor's interval must be >= 0")
        self.registry = registry
        self.alert_center = alert_center
        self.rules = rules if isinstance(rules, RuleSet) else RuleSet(tuple(rules))
        self.models = None if models is None else tuple(models)
        self.window_seconds = float(window_seconds)
        self.interval = float(interval)
        # The newest rows of the performance window only: the monitor runs inside the server, and
        # parsing a million logged rows every minute would take seconds of its CPU each time.
        self.max_rows = max_rows
        self.drift_gauges = drift_gauges
        self.performance_gauges = performance_gauges
        self._references: dict[tuple[str, str], DatasetProfile] = {}
        self._last_run: float | None = None

    def _needs(self, *kinds: str) -> bool:
        return any(r.kind in kinds for r in self.rules.rules)

    def run(self, now: float | None = None) -> MonitorResult | None:
        """One round at ``now`` (default: the time); None when the last round is under ``interval`` ago."""
        moment = time.time() if now is None else now
        if self._last_run is not None and moment - self._last_run < self.interval:
            return None
        self._last_run = moment
        names = self.models if self.models is not None else tuple(m.name for m in self.registry.models())
        return MonitorResult(moment, tuple(self.check(name, moment) for name in names))

    def check(self, model: str, now: float) -> ModelCheck:
        """Gather one model's inputs over each window its rules judge and evaluate the rules (no
        interval check). The monitor's own window is always gathered: the gauges show it."""
        problems: dict[str, str] = {}
        windows: dict[float, list[AlertRule]] = {self.window_seconds: []}
        for rule in self.rules.rules:
            if rule.applies_to(model):
                windows.setdefault(self.window_seconds if rule.window is None else rule.window, []).append(
                    rule
                )
        judged = {
            seconds: self._judge(model, seconds, rules, now, problems)
            for seconds, rules in sorted(windows.items())
        }
        transitions: tuple[Transition, ...] = ()
        try:
            signals = [s for j in judged.values() for s in j.signals]
            transitions = tuple(self.alert_center.apply(signals, now=now, supersede=True))
        except Exception as exc:
            problems["alerts"] = _problem(exc)
        for part, problem in problems.items():
            log.warning("monitor %s: %s: %s", model, part, problem)
        own = judged[self.window_seconds]
        return ModelCheck(
            model,
            own.inputs.version,
            own.inputs,
            transitions,
            problems,
            own.traffic,
            {seconds: j.inputs for seconds, j in judged.items()},
        )

    def _judge(
        self, model: str, seconds: float, rules: list[AlertRule], now: float, problems: dict[str, str]
    ) -> _Judged:
        """Gather what ``rules`` read over the last ``seconds`` and evaluate them. Problems are
        reported by part, with the window when it is not the monitor's (``performance (1d)``)."""
        own = seconds == self.window_seconds
        kinds = {r.kind for r in rules}
        since = now - seconds
        failed: dict[str, str] = {}
        version: str | None = None
        try:
            version = default_version(self.registry, model, since=since, until=now)
        except ConfigError:
            version = None  # no champion and no live traffic: nothing to judge drift or performance on
        except Exception as exc:
            failed["version"] = _problem(exc)
        drift = None
        if version and (
            kinds & set(_DRIFT_KINDS)
            or (own and self.drift_gauges is not None and self._needs(*_DRIFT_KINDS))
        ):
            drift = self._drift(model, version, seconds, now, failed, gauges=own)
        performance, estimate = None, None
        if version and (
            kinds & set(_PERFORMANCE_KINDS)
            or (own and self.performance_gauges is not None and self._needs(*_PERFORMANCE_KINDS))
        ):
            performance, estimate = self._performance(model, version, seconds, now, failed, gauges=own)
        traffic: dict[str, TrafficStats] = {}
        if kinds & set(_TRAFFIC_KINDS):
            try:
                traffic = traffic_by_version(self.registry.store, model, since, now)
            except Exception as exc:
                failed["traffic"] = _problem(exc)
        mine = None
        if kinds & set(_TRAFFIC_KINDS) and "traffic" not in failed and version is not None:
            mine = traffic.get(version, TrafficStats(0, 0, None, seconds))
        inputs = AlertInputs(model, version, drift, performance, estimate, mine)
        # Rules whose input could not be gathered are left out rather than asked: they could not
        # tell anyway, and their silence must not count as judging the version (see ``supersede``).
        left_out = {k for part, ks in _PARTS.items() if part in failed for k in ks}
        rules = [r for r in rules if r.kind not in left_out]
        signals = [s for r in rules for s in r.evaluate(inputs)] if version is not None else []
        # Traffic rules also judge every other version that answered clients (a challenger, the
        # version a promotion replaced while its requests are still in the window).
        for other, stats in traffic.items():
            if other != version:
                served = AlertInputs(model, other, traffic=stats)
                signals += [s for r in rules if r.kind in _TRAFFIC_KINDS for s in r.evaluate(served)]
        where = "" if own else f" ({format_duration(seconds)})"
        problems.update({part + where: problem for part, problem in failed.items()})
        return _Judged(inputs, traffic, signals)

    def _drift(
        self, model: str, version: str, seconds: float, now: float, problems: dict[str, str], *, gauges: bool
    ) -> DriftReport | None:
        try:
            key = (model, version)
            if key not in self._references:
                self._references[key] = load_reference(self.registry, model, version)
            live = live_report(
                self.registry, model, version, seconds, reference=self._references[key], now=now
            )
            if gauges and self.drift_gauges is not None and live.report is not None:
                # A window without traffic leaves the last verdict showing: no rows is no evidence.
                self.drift_gauges.update(model, version, live.report)
            return live.report
        except Exception as exc:
            problems["drift"] = _problem(exc)
            return None

    def _performance(
        self, model: str, version: str, seconds: float, now: float, problems: dict[str, str], *, gauges: bool
    ) -> tuple[PerformanceSnapshot | None, EstimateSnapshot | None]:
        try:
            # Every version and arm: the gauges show each arm and the model as a whole; the rules
            # judge ``version`` over all its arms.
            report = performance_report(
                self.registry, model, since=now - seconds, until=now, max_rows=self.max_rows
            )
        except Exception as exc:
            problems["performance"] = _problem(exc)
            return None, None
        if gauges and self.performance_gauges is not None:
            try:
                self.performance_gauges.update(report)
            except Exception as exc:
                problems["performance_gauges"] = _problem(exc)
        return _snapshots(report, version)


def _snapshots(
    report: PerformanceReport, version: str
) -> tuple[PerformanceSnapshot | None, EstimateSnapshot | None]:
    overall = report.of_version(version)
    if overall is None or overall.n_predictions == 0:
        return None, None
    metrics = {
        k: m.value for k, m in overall.metrics.items() if m.value is not None and math.isfinite(m.value)
    }
    performance = PerformanceSnapshot(metrics, overall.n_used)
    estimated = {k: e.value for k, e in overall.estimated.items() if e.value is not None}
    if not estimated:
        return performance, None
    calibration = overall.calibration
    reference = {"accuracy": calibration.accuracy} if calibration is not None else {}
    untrusted = {k: e.reason or "" for k, e in overall.estimated.items() if not e.trusted}
    return performance, EstimateSnapshot(estimated, reference, overall.n_predictions, untrusted)


def _problem(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
