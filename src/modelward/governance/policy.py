"""A model's promotion policy: the gates a candidate version must pass, read from YAML.

```yaml
holdout: data/holdout.parquet       # scored by both versions (or `--data` at validate/promote time)
label: churn                        # its label column (default: the target recorded at registration)
metrics: {auc: {min: 0.8}}          # floors (or ceilings, `max:`) on the holdout
regression: {metric: auc, margin: 0.01}
fairness: {sensitive: [gender], max_demographic_parity_difference: 0.1, min_demographic_parity_ratio: 0.8}
latency: {p95_ms: 5, sample: 200}   # single-row p95 of the served (compiled) runtime
schema: {allow_removed: [tenure], allow_retyped: []}
calibration: {max_ece: 0.05}
rollout: canary                     # new versions: gates, then a canary (governance.rollout_policy)
live: {metric: auc, min: 0.80, window: 1h, sustain: 15m, on_breach: rollback}
retrain: {drift: {windows: 3}, cooldown: 6h, command: python train.py}   # docs/loop.md
```

Without a policy (or for what a policy leaves out) the defaults apply: artifact integrity, schema
compatibility with the champion, and no regression of the primary metric (AUC for classifiers, RMSE
for regressors) beyond 0.01. ``regression: null`` turns the regression gate off. A bad policy (unknown
key, wrong type) raises :class:`~modelward.errors.ConfigError` naming the field and its line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from modelward.errors import ConfigError
from modelward.governance.retrain_policy import RetrainPolicy
from modelward.governance.rollout_policy import LivePolicy, RolloutField

__all__ = [
    "CLASSIFIER_METRICS",
    "LOWER_IS_BETTER",
    "REGRESSOR_METRICS",
    "CalibrationPolicy",
    "FairnessPolicy",
    "GatePolicy",
    "LatencyPolicy",
    "MetricBound",
    "MetricName",
    "RegressionPolicy",
    "SchemaPolicy",
    "parse_policy",
    "read_policy_file",
]

MetricName = Literal["auc", "accuracy", "f1", "precision", "recall", "log_loss", "rmse", "mae", "r2"]
CLASSIFIER_METRICS = frozenset({"auc", "accuracy", "f1", "precision", "recall", "log_loss"})
REGRESSOR_METRICS = frozenset({"rmse", "mae", "r2"})
LOWER_IS_BETTER = frozenset({"rmse", "mae", "log_loss"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricBound(_Strict):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> MetricBound:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        return self


class RegressionPolicy(_Strict):
    metric: MetricName | None = None  # None: the primary metric (auc or rmse)
    margin: float = Field(default=0.01, ge=0)


class FairnessPolicy(_Strict):
    sensitive: list[str] = Field(min_length=1)
    max_demographic_parity_difference: float | None = Field(default=None, ge=0, le=1)
    min_demographic_parity_ratio: float | None = Field(default=None, ge=0, le=1)
    max_equalized_odds_difference: float | None = Field(default=None, ge=0, le=1)
    min_group: int = Field(default=30, ge=1)
    bins: int = Field(default=4, ge=2)


class LatencyPolicy(_Strict):
    p95_ms: float = Field(gt=0)
    sample: int = Field(default=200, ge=10, le=100_000)


class SchemaPolicy(_Strict):
    allow_removed: list[str] = Field(default_factory=list)
    allow_retyped: list[str] = Field(default_factory=list)


class CalibrationPolicy(_Strict):
    max_ece: float = Field(ge=0, le=1)


class GatePolicy(_Strict):
    """The gates of one model; ``GatePolicy()`` is the default policy."""

    holdout: str | None = None
    label: str | None = None
    metrics: dict[MetricName, MetricBound] = Field(default_factory=dict)
    regression: RegressionPolicy | None = Field(default_factory=RegressionPolicy)
    fairness: FairnessPolicy | None = None
    latency: LatencyPolicy | None = None
    schema_: SchemaPolicy = Field(default_factory=SchemaPolicy, alias="schema")
    calibration: CalibrationPolicy | None = None
    rollout: RolloutField = None
    live: LivePolicy | None = None
    retrain: RetrainPolicy | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def parse_policy(text: str, *, source: str = "policy") -> GatePolicy:
    """The policy a YAML text describes; ConfigError names the bad field and its line."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a policy is a YAML mapping (holdout, metrics, regression, ...)")
    try:
        return GatePolicy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first.get("loc", ()) if p != "[key]"]
        field = ".".join(loc) or "(top level)"
        line = _line_of(text, loc)
        at = f" (line {line})" if line is not None else ""
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        raise ConfigError(f"{source}: {field}{at}: {message}") from exc


def read_policy_file(path: str | os.PathLike[str]) -> GatePolicy:
    """The policy in a YAML file; ConfigError when it is missing or bad."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"policy file {file} does not exist")
    return parse_policy(file.read_text("utf-8"), source=str(file))


def _line_of(text: str, loc: list[str]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (the deepest one found)."""
    import yaml

    try:
        node: Any = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line: int | None = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if str(k.value) == part), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            break
    return line
