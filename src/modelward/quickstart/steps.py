"""The loop's closing steps as the quickstart runs them: retrain on fresh data and the labelled
export, then watch the server's controller take the new version through its gates and its canary
(the policy's ``rollout: canary``) to promotion."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from modelward.errors import ModelwardError

if TYPE_CHECKING:
    import pandas as pd

    from modelward.config import Settings
    from modelward.control.retrain_runs import RetrainRun
    from modelward.control.rollout_records import Rollout
    from modelward.registry import VersionInfo

__all__ = ["CanaryWatch", "Retrained", "await_promotion", "await_retrain", "await_rollout_gates", "retrain"]


@dataclass(frozen=True)
class Retrained:
    info: VersionInfo
    export_path: Path
    exported_rows: int
    train_rows: int
    test_auc: float


def retrain(
    settings: Settings, name: str, *, fresh: pd.DataFrame, export_path: Path, folder: Path, reason: str
) -> Retrained:
    """Train a new version on the labelled export at ``export_path`` (made by the retraining run, as
    ``modelward export --labeled`` makes it) and ``fresh`` labelled data, and register it with its
    reference profile."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    import modelward
    from modelward.quickstart.scenario import FEATURES, TARGET, fit_model, from_export

    rows = from_export(pd.read_parquet(export_path), like=fresh)
    exported = len(rows)
    if exported == 0:
        raise ModelwardError(f"the labelled export of {name} is empty: nothing to retrain on")
    data = pd.concat([fresh, rows], ignore_index=True)
    train, test = train_test_split(data, test_size=0.2, random_state=0, stratify=data[TARGET])
    model = fit_model(train)
    auc = float(roc_auc_score(test[TARGET], model.predict_proba(test[FEATURES])[:, 1]))
    train_path = folder / "data" / "train-v2.parquet"
    train.to_parquet(train_path, index=False)
    info = modelward.register(
        model,
        name,
        train_data=train_path,
        target=TARGET,
        metrics={"test_auc": auc},
        params={"model": "logistic_regression", "trigger": reason},
        description=f"churn logistic regression, retrained: {reason}",
        settings=settings,
    )
    return Retrained(info, export_path, exported, len(train), auc)


def await_retrain(settings: Settings, name: str, *, timeout: float) -> RetrainRun:
    """The first retraining run of ``name`` once it has ended: the server's controller starts it when
    the policy's ``retrain:`` triggers fire, and runs its command (the quickstart's retrain job)."""
    import modelward
    from modelward.control.retrain_runs import RetrainRuns

    deadline = time.monotonic() + timeout
    with modelward.open_registry(settings) as registry:
        runs = RetrainRuns(registry.store)
        while True:
            found = runs.history(name, limit=None)
            if found and not found[-1].in_progress:
                return found[-1]
            if time.monotonic() > deadline:
                state = found[-1].status if found else "no run started"
                raise ModelwardError(f"no retraining run of {name} ended within {timeout:g} s ({state})")
            time.sleep(0.2)


def await_rollout_gates(settings: Settings, name: str, version: str, *, timeout: float) -> Rollout:
    """The rollout of ``name:version`` once the controller has run its gates (policy ``rollout:``):
    status ``canary`` when they passed and its canary started, else ``rejected`` or ``failed``."""
    import modelward
    from modelward.control.rollout_records import Rollouts

    deadline = time.monotonic() + timeout
    with modelward.open_registry(settings) as registry:
        rollouts = Rollouts(registry.store)
        while True:
            row = rollouts.get(name, str(version))
            if row is not None and row.status != "validating":
                return row
            if time.monotonic() > deadline:
                raise ModelwardError(
                    f"the controller did not take {name}:{version} through its gates within {timeout:g} s"
                )
            time.sleep(0.2)


@dataclass
class CanaryWatch:
    """What was seen of a canary: each step's percent, the final state and the decision's reason."""

    steps: list[float] = field(default_factory=list)
    state: str = "running"
    reason: str | None = None
    rounds: int = 0


def await_promotion(
    settings: Settings,
    name: str,
    version: str,
    *,
    drive: Callable[[], None],
    on_step: Callable[[float], None],
    timeout: float,
) -> CanaryWatch:
    """Let the server's controller walk the canary of ``version``: call ``drive`` (traffic and labels)
    between looks at the stored deployment, report each new step, until the champion is ``version``
    (promoted), the canary is rolled back, or ``timeout`` passes."""
    import modelward
    from modelward.registry import DEFAULT_ALIAS

    watch = CanaryWatch()
    deadline = time.monotonic() + timeout
    with modelward.open_registry(settings) as registry:
        while True:
            dep = registry.deployments.get(name)
            plan = dep.spec.canary if dep is not None else None
            if plan is not None and plan.version == str(version):
                if plan.state == "running" and (not watch.steps or watch.steps[-1] != plan.percent):
                    watch.steps.append(plan.percent)
                    on_step(plan.percent)
                if plan.state == "rolled_back":
                    watch.state, watch.reason = "rolled_back", plan.reason
                    return watch
            # The controller moves the alias, then stores the spec that serves it: wait for both.
            if plan is None and registry.model(name).aliases.get(DEFAULT_ALIAS) == str(version):
                watch.state = "promoted"
                watch.reason = dep.reason if dep is not None else None
                return watch
            if time.monotonic() > deadline:
                raise ModelwardError(
                    f"the canary of {name}:{version} was neither promoted nor rolled back within "
                    f"{timeout:g} s (steps seen: {watch.steps})"
                )
            drive()
            watch.rounds += 1
