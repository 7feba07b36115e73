"""The closed loop's part of a model's policy: how a new version is rolled out (``rollout:``) and what
happens when the champion's live performance falls below a floor (``live:``).

```yaml
rollout: canary                     # shorthand: {strategy: canary}, `deploy --canary`'s defaults
rollout:                            # or with the settings `modelward deploy --canary` takes
  strategy: canary
  steps: [5, 25, 50, 100]
  step_duration: 10m
  max_error_rate: 0.05
  metric: roc_auc
live:                               # the champion's live metric from feedback
  metric: auc                       # auc, accuracy, f1, precision, recall, log_loss, brier, mae, rmse, r2
  min: 0.80                         # its floor (`max:` for a ceiling on log_loss, rmse, ...)
  window: 1h                        # labelled predictions of the last hour (since the alias moved)
  sustain: 15m                      # below the floor on every check for this long
  min_labels: 200                   # fewer labels cannot tell
  on_breach: rollback               # or alert (the default): only the alert fires
```

Without ``rollout:`` a new version waits for a person (``modelward deploy NAME --canary N``); without
``live:`` only the alert rules of the alerts file watch live performance. The floor is judged by the
alert rules' own :class:`~modelward.monitoring.alert_rules.PerformanceRule`, so ``live:`` and a
``performance`` rule of the alerts file agree on the same figures.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from modelward.errors import ModelwardError

__all__ = ["LIVE_METRICS", "LivePolicy", "RolloutField", "RolloutPolicy"]

LIVE_METRICS: dict[str, str] = {
    "auc": "roc_auc",
    "roc_auc": "roc_auc",
    "accuracy": "accuracy",
    "f1": "f1",
    "precision": "precision",
    "recall": "recall",
    "log_loss": "log_loss",
    "brier": "brier",
    "mae": "mae",
    "rmse": "rmse",
    "r2": "r2",
}
"""The names ``live.metric`` accepts, and the name of each in the live performance report."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _seconds(value: str | float, *, zero: bool = False) -> float:
    from modelward.routing.spec import parse_duration

    if zero and value in (0, "0"):
        return 0.0
    try:
        return parse_duration(value)
    except ModelwardError as exc:
        raise ValueError(str(exc)) from None


class RolloutPolicy(_Strict):
    """``rollout:``: a canary started by the controller for each new version that passes the gates.
    Every field but ``strategy`` is the ``modelward deploy --canary`` option of the same name."""

    strategy: Literal["canary"] = "canary"
    steps: list[float] = Field(default_factory=lambda: [5.0, 25.0, 50.0, 100.0], min_length=1)
    step_duration: str | float = "10m"
    baseline: str = "@champion"
    max_error_rate: float | None = None
    max_error_rate_increase: float | None = None
    max_latency_p95_ratio: float | None = None
    max_latency_p99_ratio: float | None = None
    latency_slack_ms: float | None = None
    max_divergence: float | None = None
    max_performance_drop: float | None = None
    metric: str | None = None
    min_requests: int | None = None
    min_labels: int | None = None

    @model_validator(mode="after")
    def _valid_plan(self) -> RolloutPolicy:
        from modelward.routing.spec import DeploymentSpec

        try:  # the same checks as `modelward deploy --canary`: increasing steps, valid rules
            DeploymentSpec.start_canary(
                "m", 1, steps=self.steps, step_seconds=self.step_duration, rules=self.rules()
            )
        except ModelwardError as exc:
            raise ValueError(str(exc)) from None
        return self

    def rules(self) -> Any:
        """The :class:`~modelward.routing.CanaryRules` of the canary (the defaults where unset)."""
        from modelward.routing.spec import CanaryRules

        names = CanaryRules.__dataclass_fields__
        given = {k: v for k, v in self.model_dump().items() if k in names and v is not None}
        return CanaryRules(**given)

    def spec(self, model: str, version: str, current: Any = None) -> Any:
        """The :class:`~modelward.routing.DeploymentSpec` of ``version``'s canary; the routing key,
        salt and shadow of ``current`` (the stored spec) are kept, as ``modelward deploy`` keeps them."""
        from modelward.routing.spec import DeploymentSpec

        keep: dict[str, Any] = {}
        if current is not None:
            keep = {
                "key": current.key,
                "salt": current.salt,
                "shadow": current.shadow if current.shadow not in (version,) else None,
                "shadow_rate": current.shadow_rate,
            }
        return DeploymentSpec.start_canary(
            model,
            version,
            steps=self.steps,
            step_seconds=self.step_duration,
            baseline=self.baseline,
            rules=self.rules(),
            **keep,
        )


def _shorthand(value: Any) -> Any:
    """``rollout: canary`` is ``rollout: {strategy: canary}``; ``rollout: none`` is no rollout."""
    if isinstance(value, str):
        if value.strip().lower() in ("none", "manual", ""):
            return None
        return {"strategy": value.strip()}
    return value


RolloutField = Annotated[RolloutPolicy | None, BeforeValidator(_shorthand)]
"""The type of ``GatePolicy.rollout``: a mapping, the shorthand ``canary``, or none."""


class LivePolicy(_Strict):
    """``live:``: the champion's live ``metric`` must stay at or above ``min`` (at or below ``max``)."""

    metric: str = "auc"
    min: float | None = None
    max: float | None = None
    window: str | float = "1h"
    sustain: str | float = "15m"
    min_labels: int = Field(default=200, ge=1)
    on_breach: Literal["alert", "rollback"] = "alert"

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in LIVE_METRICS:
            raise ValueError(f"{value!r} is not a live metric; use one of {', '.join(LIVE_METRICS)}")
        return value

    @model_validator(mode="after")
    def _one_bound(self) -> LivePolicy:
        if (self.min is None) == (self.max is None):
            raise ValueError("give the floor as min (or a ceiling as max), one of them")
        _seconds(self.window)
        _seconds(self.sustain, zero=True)
        return self

    @property
    def report_metric(self) -> str:
        """The metric's name in the live performance report (``auc`` is ``roc_auc`` there)."""
        return LIVE_METRICS[self.metric]

    @property
    def window_seconds(self) -> float:
        return _seconds(self.window)

    @property
    def sustain_seconds(self) -> float:
        return _seconds(self.sustain, zero=True)

    def rule(self, name: str = "live_floor") -> Any:
        """The alert rule that judges the floor: the alert rules' performance rule, so the alerts file
        and the policy judge a floor alike."""
        from modelward.monitoring.alert_rules import PerformanceRule

        if self.min is not None:
            op: Literal["<", ">"] = "<"
            bound = self.min
        else:
            op, bound = ">", float(self.max or 0.0)  # _one_bound: max is set when min is not
        return PerformanceRule(
            name=name,
            metric=self.report_metric,
            op=op,
            threshold=float(bound),
            min_labels=self.min_labels,
            window=self.window_seconds,
            severity="critical",
        )
