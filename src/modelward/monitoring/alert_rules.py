"""Alert rules: typed inputs in, signals out (firing or not, a value, a message). Pure: no I/O.

A rule never sees the store or a notifier; :class:`~modelward.monitoring.alerts.AlertCenter` turns
signals into alert state, notifications and history. Each rule reads one kind of input from
:class:`AlertInputs` and answers, per subject, one :class:`Signal` whose ``firing`` is

* ``True``: the condition holds;
* ``False``: the condition is clear (this is the evidence a resolve needs);
* ``None``: the rule cannot tell (no input, too few labels or requests, an untrusted estimate).
  ``None`` changes nothing: a firing alert keeps firing rather than resolving for lack of data.

The inputs are modelward's own small records rather than the other modules' report types, so that
rules stay testable with numbers and stable while those reports grow; the monitor task
(``modelward.control.monitor``) converts live drift reports, performance reports, estimates and
prediction-log window statistics into them.
"""

from __future__ import annotations

import hashlib
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal, TypeAlias

from modelward.errors import ConfigError

if TYPE_CHECKING:
    from modelward.drift import DriftReport

__all__ = [
    "SEVERITIES",
    "AlertInputs",
    "AlertRule",
    "DatasetDriftRule",
    "ErrorRateRule",
    "EstimateSnapshot",
    "EstimatedDropRule",
    "FeatureDriftRule",
    "LatencyRule",
    "PerformanceRule",
    "PerformanceSnapshot",
    "Severity",
    "Signal",
    "TrafficStats",
    "fingerprint",
    "parse_condition",
]

Severity: TypeAlias = Literal["info", "warning", "critical"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
Comparison: TypeAlias = Literal["<", "<=", ">", ">="]
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_NEGATION = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}
_CONDITION = re.compile(
    r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*$"
)


def _check(ok: bool, problem: str) -> None:
    if not ok:
        raise ConfigError(problem)


def fingerprint(rule: str, model: str | None, subject: str, version: str | None = None) -> str:
    """The identity of an alert: the same rule on the same model, subject and version is the same
    alert; a new version is a new incident. Without a version (one-shot events), rule, model and
    subject alone."""
    parts = (rule, model or "", subject) if version is None else (rule, model or "", subject, version)
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def parse_condition(text: str) -> tuple[str, Comparison, float]:
    """``"roc_auc < 0.80"`` as ``("roc_auc", "<", 0.8)``; :class:`ConfigError` when malformed."""
    match = _CONDITION.match(text)
    if match is None:
        raise ConfigError(f"cannot read condition {text!r}: write METRIC OP NUMBER, e.g. 'roc_auc < 0.80'")
    op = match.group(2)
    return match.group(1), op, float(match.group(3))  # type: ignore[return-value]


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _num(x: float) -> str:
    return f"{x:.4g}"


# ------------------------------------------------------------------------------------------ inputs


@dataclass(frozen=True, slots=True)
class TrafficStats:
    """Served traffic of one model over a window: requests, failed requests, p95 latency (ms).

    ``p95_ms`` is None when the window has no request.
    """

    requests: int
    errors: int
    p95_ms: float | None = None
    window_seconds: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


@dataclass(frozen=True, slots=True)
class PerformanceSnapshot:
    """Realized metrics over a window (``{"roc_auc": 0.83, ...}``) and how many labels they rest on."""

    metrics: Mapping[str, float]
    labels: int


@dataclass(frozen=True, slots=True)
class EstimateSnapshot:
    """Label-free estimates over a window (``{"accuracy": 0.86}``), the same metrics on the
    reference data where known, the rows they rest on, and, per metric, why an estimate cannot be
    trusted (its calibration check on reference data failed or is missing)."""

    metrics: Mapping[str, float]
    reference: Mapping[str, float]
    rows: int
    untrusted: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlertInputs:
    """What the rules may look at for one model's ``version``; any part may be missing (None). The
    signals carry the version: the same condition on another version is another alert."""

    model: str
    version: str | None = None
    drift: DriftReport | None = None
    performance: PerformanceSnapshot | None = None
    estimate: EstimateSnapshot | None = None
    traffic: TrafficStats | None = None

    @property
    def label(self) -> str:
        return f"{self.model}:{self.version}" if self.version else self.model


@dataclass(frozen=True, slots=True)
class Signal:
    """One rule's answer for one subject of one model's version (see the module docstring for
    ``firing``); ``version`` None when the answer is not about a version."""

    rule: str
    model: str | None
    subject: str
    severity: Severity
    firing: bool | None
    value: float | None
    message: str
    version: str | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rule, self.model, self.subject, self.version)


# ------------------------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class _Base:
    name: str = ""
    models: tuple[str, ...] = ()
    severity: Severity = "warning"
    window: float | None = None  # seconds of data the rule judges; None: the monitor's window

    kind: ClassVar[str] = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name or self.kind)
        object.__setattr__(self, "models", tuple(self.models))
        _check(
            bool(re.fullmatch(r"[A-Za-z0-9_.:/-]{1,200}", self.name)), f"rule name {self.name!r} is invalid"
        )
        _check(
            self.severity in SEVERITIES, f"severity {self.severity!r} is not one of {', '.join(SEVERITIES)}"
        )
        window = self.window
        _check(
            window is None or (math.isfinite(window) and window > 0),
            f"window {window} must be a duration > 0 seconds",
        )

    def applies_to(self, model: str) -> bool:
        return not self.models or model in self.models

    def _signal(
        self, inputs: AlertInputs, subject: str, firing: bool | None, value: float | None, text: str
    ) -> Signal:
        return Signal(
            self.name,
            inputs.model,
            subject,
            self.severity,
            firing,
            value,
            f"{inputs.label}: {text}",
            inputs.version,
        )

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class DatasetDriftRule(_Base):
    """Fires while the live window's dataset verdict is drift (the share of drifted features reached
    the drift configuration's threshold, 50% by default)."""

    kind: ClassVar[str] = "dataset_drift"

    def describe(self) -> str:
        return "dataset drift (share of drifted features >= the drift threshold)"

    def evaluate(self, inputs: AlertInputs) -> list[Signal]:
        report = inputs.drift
        if report is None or not report.features:
            return [self._signal(inputs, "dataset", None, None, "no live drift report")]
        n, k = len(report.features), len(report.drifted_features)
        share = (
            f"{k} of {n} features drifted "
            f"({_pct(report.share_drifted)}, threshold {_pct(report.threshold_share)})"
        )
        if report.dataset_drift:
            names = ", ".join(report.drifted_features[:10]) + (", ..." if k > 10 else "")
            return [
                self._signal(
                    inputs, "dataset", True, report.share_drifted, f"dataset drift: {share}: {names}"
                )
            ]
        return [self._signal(inputs, "dataset", False, report.share_drifted, f"no dataset drift: {share}")]


@dataclass(frozen=True, slots=True)
class FeatureDriftRule(_Base):
    """Fires while ``feature`` drifted; with no feature, one alert (subject ``features``) fires while
    any feature drifted, its value the number of drifted features. One alert rather than one per
    feature keeps a broad shift from sending a notification per column."""

    feature: str | None = None

    kind: ClassVar[str] = "feature_drift"

    def describe(self) -> str:
        return f"feature '{self.feature}' drifted" if self.feature else "any feature drifted"

    def evaluate(self, inputs: AlertInputs) -> list[Signal]:
        report = inputs.drift
        subject = f"feature:{self.feature}" if self.feature else "features"
        if report is None or not report.features:
            return [self._signal(inputs, subject, None, None, "no live drift report")]
        if self.feature is None:
            drifted = report.drifted_features
            if drifted:
                text = f"{len(drifted)} feature(s) drifted: {', '.join(drifted[:10])}" + (
                    ", ..." if len(drifted) > 10 else ""
                )
                return [self._signal(inputs, subject, True, float(len(drifted)), text)]
            return [self._signal(inputs, subject, False, 0.0, "no feature drifted")]
        found = next((f for f in report.features if f.feature == self.feature), None)
        if found is None or found.method == "none":
            return [
                self._signal(
                    inputs, subject, None, None, f"feature '{self.feature}' is not in the drift report"
                )
            ]
        stat = found.statistic if math.isfinite(found.statistic) else None
        if found.drifted:
            return [
                self._signal(inputs, subject, True, stat, f"feature '{self.feature}' drifted: {found.reason}")
            ]
        return [
            self._signal(
                inputs, subject, False, stat, f"feature '{self.feature}' does not drift: {found.reason}"
            )
        ]


@dataclass(frozen=True, slots=True)
class PerformanceRule(_Base):
    """Fires while the realized ``metric`` compares with ``threshold`` as ``op`` says (``roc_auc <
    0.80``), once at least ``min_labels`` labels back it; fewer labels cannot tell."""

    metric: str = "roc_auc"
    op: Comparison = "<"
    threshold: float = 0.8
    min_labels: int = 100
    severity: Severity = "critical"

    kind: ClassVar[str] = "performance"

    def __post_init__(self) -> None:
        _Base.__post_init__(self)
        _check(self.op in _OPS, f"comparison {self.op!r} is not one of <, <=, >, >=")
        _check(math.isfinite(self.threshold), f"threshold {self.threshold} must be finite")
        _check(self.min_labels >= 1, f"min_labels {self.min_labels} must be at least 1")

    def describe(self) -> str:
        return f"{self.metric} {self.op} {_num(self.threshold)} (at least {self.min_labels} labels)"

    def evaluate(self, inputs: AlertInputs) -> list[Signal]:
        perf, subject = inputs.performance, f"performance:{self.metric}"
        if perf is None:
            return [self._signal(inputs, subject, None, None, "no live performance")]
        value = perf.metrics.get(self.metric)
        if perf.labels < self.min_labels:
            text = f"{perf.labels} labels, fewer than the {self.min_labels} needed to judge {self.metric}"
            return [self._signal(inputs, subject, None, value, text)]
        if value is None or not math.isfinite(value):
            return [self._signal(inputs, subject, None, None, f"{self.metric} is not available")]
        on = f"on {perf.labels} labels"
        if _OPS[self.op](value, self.threshold):
            return [
                self._signal(
                    inputs,
                    subject,
                    True,
                    value,
                    f"{self.metric} {_num(value)} {self.op} {_num(self.threshold)} {on}",
                )
            ]
        back = _NEGATION[self.op]
        return [
            self._signal(
                inputs,
                subject,
                False,
                value,
                f"{self.metric} {_num(value)} {back} {_num(self.threshold)} {on}",
            )
        ]


@dataclass(frozen=True, slots=True)
class EstimatedDropRule(_Base):
    """Fires while the label-free estimate of ``metric`` is more than ``max_drop`` (absolute) below
    its reference value, on at least ``min_rows`` predictions. The reference is ``reference`` when
    given, else the metric measured on the labelled reference data (known for accuracy). An estimate
    whose calibration check failed cannot tell (None), unless ``require_trusted`` is off."""

    metric: str = "accuracy"
    max_drop: float = 0.05
    min_rows: int = 100
    reference: float | None = None
    require_trusted: bool = True

    kind: ClassVar[str] = "estimated_drop"

    def __post_init__(self) -> None:
        _Base.__post_init__(self)
        _check(math.isfinite(self.max_drop) and self.max_drop >= 0, f"max_drop {self.max_drop} must be >= 0")
        _check(self.min_rows >= 1, f"min_rows {self.min_rows} must be at least 1")
        ref = self.reference
        _check(ref is None or math.isfinite(ref), f"reference {ref} must be finite")

    def describe(self) -> str:
        against = f"{_num(self.reference)}" if self.reference is not None else "the reference"
        return f"estimated {self.metric} more than {_num(self.max_drop)} below {against}"

    def evaluate(self, inputs: AlertInputs) -> list[Signal]:
        est, subject = inputs.estimate, f"estimate:{self.metric}"
        if est is None:
            return [self._signal(inputs, subject, None, None, "no label-free estimate")]
        value = est.metrics.get(self.metric)
        ref = self.reference if self.reference is not None else est.reference.get(self.metric)
        if value is None or not math.isfinite(value):
            return [self._signal(inputs, subject, None, None, f"no estimate of {self.metric}")]
        if ref is None or not math.isfinite(ref):
            text = f"no reference {self.metric} to compare the estimate with (set 'reference' in the rule)"
            return [self._signal(inputs, subject, None, None, text)]
        if est.rows < self.min_rows:
            text = f"{est.rows} predictions, fewer than {self.min_rows}"
            return [self._signal(inputs, subject, None, None, text)]
        if self.require_trusted and self.metric in est.untrusted:
            why = est.untrusted[self.metric]
            text = f"the {self.metric} estimate cannot be trusted" + (f" ({why})" if why else "")
            return [self._signal(inputs, subject, None, None, text)]
        drop = ref - value
        text = (
            f"estimated {self.metric} {_num(value)} vs {_num(ref)} on the reference (drop {_num(drop)}, "
            f"limit {_num(self.max_drop)}) over {est.rows} predictions"
        )
        return [self._signal(inputs, subject, drop > self.max_drop, drop, text)]


@dataclass(frozen=True, slots=True)
class ErrorRateRule(_Base):
    """Fires while the share of failed requests is above ``max_rate``, on at least ``min_requests``."""

    max_rate: float = 0.05
    min_requests: int = 100
    severity: Severity = "critical"

    kind: ClassVar[str] = "error_rate"

    def __post_init__(self) -> None:
        _Base.__post_init__(self)
        _check(0 <= self.max_rate < 1, f"max_rate {self.max_rate} must be in [0, 1)")
        _check(self.min_requests >= 1, f"min_requests {self.min_requests} must be at least 1")

    def describe(self) -> str:
        return f"error rate > {_pct(self.max_rate)} (at least {self.min_requests} requests)"

    def evaluate(self, inputs: AlertInputs) -> list[Signal]:
        traffic = inputs.traffic
        if traffic is None:
            return [self._signal(inputs, "error_rate", None, None, "no traffic statistics")]
        rate = traffic.error_rate
        if rate is None or traffic.requests < self.min_requests:
            text = f"{traffic.requests} requests, fewer than the {self.min_requests} needed"
            return [self._signal(inputs, "error_rate", None, rate, text)]
        text = (
            f"error rate {_pct(rate)} ({traffic.errors} of {traffic.requests} requests; "
            f"limit {_pct(self.max_rate)})"
        )
        return [self._signal(inputs, "error_rate", rate > self.max_rate, rate, text)]


@dataclass(frozen=True, slots=True)
class LatencyRule(_Base):
    """Fires while the p95 latency of the window's requests (failed ones included: what clients
    waited) is above ``p95_ms``, on at least ``min_requests`` requests."""

    p95_ms: float = 500.0
    min_requests: int = 20

    kind: ClassVar[str] = "latency"

    def __post_init__(self) -> None:
        _Base.__post_init__(self)
        _check(math.isfinite(self.p95_ms) and self.p95_ms > 0, f"p95_ms {self.p95_ms} must be > 0")
        _check(self.min_requests >= 1, f"min_requests {self.min_requests} must be at least 1")

    def describe(self) -> str:
        return f"p95 latency > {_num(self.p95_ms)} ms (at least {self.min_requests} requests)"

    def evaluate(self, inputs: AlertInputs) -> list[Signal]:
        traffic = inputs.traffic
        if traffic is None:
            return [self._signal(inputs, "latency_p95", None, None, "no traffic statistics")]
        p95 = traffic.p95_ms
        if p95 is None or traffic.requests < self.min_requests:
            text = f"{traffic.requests} requests, fewer than the {self.min_requests} needed"
            return [self._signal(inputs, "latency_p95", None, p95, text)]
        text = f"p95 latency {p95:.1f} ms over {traffic.requests} requests (SLO {_num(self.p95_ms)} ms)"
        return [self._signal(inputs, "latency_p95", p95 > self.p95_ms, p95, text)]


AlertRule: TypeAlias = (
    DatasetDriftRule | FeatureDriftRule | PerformanceRule | EstimatedDropRule | ErrorRateRule | LatencyRule
)
RULE_TYPES: dict[str, type[AlertRule]] = {
    cls.kind: cls
    for cls in (
        DatasetDriftRule,
        FeatureDriftRule,
        PerformanceRule,
        EstimatedDropRule,
        ErrorRateRule,
        LatencyRule,
    )
}


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Rules with unique names, evaluated together for one model."""

    rules: tuple[AlertRule, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))
        seen: set[str] = set()
        for rule in self.rules:
            _check(rule.name not in seen, f"two alert rules are named {rule.name!r}; give each a unique name")
            seen.add(rule.name)

    def evaluate(self, inputs: AlertInputs) -> list[Signal]:
        return [s for rule in self.rules if rule.applies_to(inputs.model) for s in rule.evaluate(inputs)]
