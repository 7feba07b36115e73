"""A model's retraining policy: when to retrain (triggers) and how (an action), the ``retrain:``
section of its policy (``modelward policy set``; docs/loop.md, "Retraining: triggers and actions").

```yaml
retrain:
  drift: {windows: 3, window: 1h}       # dataset drift held in 3 consecutive windows of an hour
  performance: {metric: roc_auc, min: 0.8, min_labels: 200, window: 1d}   # live, from feedback
  estimated: {metric: accuracy, min: 0.75, window: 1d}                     # label-free estimate
  schedule: "0 3 * * 1"                 # cron: every Monday at 03:00 UTC
  cooldown: 6h                          # one incident, one retrain (a failed run waits too)
  timeout: 2h                           # the action is stopped after that
  command: python train.py --data "$MODELWARD_RETRAIN_EXPORT"
  cwd: /srv/churn
  # or, instead of command:
  # webhook: {url: http://airflow:8080/api/v1, kind: airflow, dag_id: retrain_churn}
```

Durations read ``90s``, ``15m``, ``6h``, ``2d`` or a number of seconds. A manual retrain
(``modelward retrain NAME --reason ...``) needs only the action.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modelward.errors import RoutingError
from modelward.routing.spec import parse_duration

__all__ = [
    "DriftTrigger",
    "EstimatedTrigger",
    "PerformanceTrigger",
    "RetrainPolicy",
    "RetrainWebhook",
    "check_cron",
]

TRIGGERS = ("drift", "performance", "estimated", "schedule", "manual")
LiveMetric = Literal[
    "roc_auc", "accuracy", "precision", "recall", "f1", "log_loss", "brier", "mae", "rmse", "r2"
]
EstimatedMetric = Literal["accuracy", "precision", "recall", "f1", "roc_auc"]


def _metric(value: Any) -> Any:
    """``auc`` (the gates' name) is the live ``roc_auc``."""
    return "roc_auc" if value == "auc" else value


def _seconds(value: Any) -> float:
    try:
        return parse_duration(value)
    except RoutingError as exc:
        raise ValueError(str(exc)) from exc


def check_cron(expression: str) -> str:
    """``expression`` when croniter reads it as a cron schedule, else ValueError saying why."""
    from croniter import croniter

    if not croniter.is_valid(expression):
        raise ValueError(f"{expression!r} is not a cron expression (e.g. '0 3 * * 1': Mondays at 03:00)")
    return expression


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Windowed(_Strict):
    window: float = Field(default=86_400.0, description="seconds of data judged (e.g. 1d)")

    @field_validator("window", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return _seconds(value)


class DriftTrigger(_Windowed):
    """Dataset drift in each of the last ``windows`` consecutive windows of ``window`` seconds."""

    windows: int = Field(default=3, ge=1, le=100)
    window: float = 3600.0


class PerformanceTrigger(_Windowed):
    """The live ``metric`` (from feedback) below ``min`` (or above ``max``: rmse, mae, log_loss) over
    the last ``window``, measured on at least ``min_labels`` labels."""

    metric: LiveMetric = "roc_auc"
    min: float | None = None
    max: float | None = None
    min_labels: int = Field(default=100, ge=1)

    _alias = field_validator("metric", mode="before")(_metric)

    @model_validator(mode="after")
    def _one_bound(self) -> PerformanceTrigger:
        if self.min is None and self.max is None:
            raise ValueError("give min (a floor) or max (a ceiling)")
        return self


class EstimatedTrigger(_Windowed):
    """The label-free estimate of ``metric`` below ``min`` over the last ``window`` (a trusted
    estimate only: its calibration check passed)."""

    metric: EstimatedMetric = "accuracy"
    min: float
    min_predictions: int = Field(default=100, ge=1)

    _alias = field_validator("metric", mode="before")(_metric)


class RetrainWebhook(_Strict):
    """A POST with the run's facts: ``generic`` to ``url`` as it is; ``airflow`` triggers a DAG run
    (``url`` is the stable REST API's root, e.g. ``http://airflow:8080/api/v1``); ``prefect`` runs a
    deployment (``url`` is the Prefect API, e.g. ``http://prefect:4200/api``)."""

    url: str = Field(min_length=1)
    kind: Literal["generic", "airflow", "prefect"] = "generic"
    headers: dict[str, str] = Field(default_factory=dict)
    dag_id: str | None = None
    deployment_id: str | None = None
    allow_private: bool = False
    allowed_hosts: list[str] = Field(default_factory=list)
    timeout: float = Field(default=10.0, gt=0, le=300)

    @model_validator(mode="after")
    def _target(self) -> RetrainWebhook:
        if self.kind == "airflow" and not self.dag_id:
            raise ValueError("an airflow webhook needs dag_id")
        if self.kind == "prefect" and not self.deployment_id:
            raise ValueError("a prefect webhook needs deployment_id")
        return self


class RetrainPolicy(_Strict):
    """Triggers, cool-down and the action of one model's retraining."""

    drift: DriftTrigger | None = None
    performance: PerformanceTrigger | None = None
    estimated: EstimatedTrigger | None = None
    schedule: str | None = None
    cooldown: float = Field(default=21_600.0, description="seconds between two runs (6h)")
    timeout: float = Field(default=7_200.0, description="seconds an action may take (2h)")
    command: str | list[str] | None = None
    cwd: str | None = None
    webhook: RetrainWebhook | None = None
    export_since: float | None = Field(default=None, description="seconds of labelled data exported")

    @field_validator("cooldown", "timeout", "export_since", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else _seconds(value)

    @field_validator("schedule", mode="after")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)

    @field_validator("command", mode="after")
    @classmethod
    def _command(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value is not None and not (value.strip() if isinstance(value, str) else value):
            raise ValueError("the command is empty")
        return value

    @model_validator(mode="after")
    def _one_action(self) -> RetrainPolicy:
        if self.command is None and self.webhook is None:
            raise ValueError("give an action: command (run here) or webhook (call a pipeline)")
        if self.command is not None and self.webhook is not None:
            raise ValueError("give one action: command or webhook, not both")
        return self

    @property
    def action(self) -> str:
        return (
            "command" if self.command is not None else f"webhook:{self.webhook.kind if self.webhook else ''}"
        )

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)
