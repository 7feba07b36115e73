"""The loop's closing steps as the quickstart runs them, each one function over the public API:
retrain on fresh data and the labelled export, validate against the gates, start a canary as
``modelward deploy --canary`` does, and wait while the server's controller walks and promotes it.

Each is a seam: the retraining policies (``control``'s retrain action) and the automatic rollout
(``rollout: canary``) do the same work on their own; the quickstart then waits for them instead.
"""

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
    from modelward.governance.gate_result import Validation
    from modelward.registry import VersionInfo

__all__ = ["CanaryWatch", "Retrained", "await_promotion", "retrain", "start_canary", "validate"]


@dataclass(frozen=True)
class Retrained:
    info: VersionInfo
    export_path: Path
    exported_rows: int
    train_rows: int
    test_auc: float


def retrain(
    settings: Settings, name: str, *, fresh: pd.DataFrame, since: float, folder: Path, reason: str
) -> Retrained:
    """Export the labelled predictions served since ``since`` (``modelward export --labeled``), train
    a new version on them and ``fresh`` labelled data, and register it with its reference profile."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    import modelward
    from modelward.monitoring.prediction_query import export
    from modelward.quickstart.scenario import FEATURES, TARGET, fit_model, from_export

    export_path = folder / "labelled-export.parquet"
    with modelward.open_registry(settings) as registry:
        exported = export(registry.store, name, export_path, since=since, labeled=True)
    if exported == 0:
        raise ModelwardError(f"the labelled export of {name} since the drift is empty: nothing to retrain on")
    rows = from_export(pd.read_parquet(export_path), like=fresh)
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


def validate(settings: Settings, name: str, version: str) -> Validation:
    """The promotion gates of ``name:version`` against the champion, under the model's stored policy
    (``modelward validate``); stored with the version."""
    import modelward

    return modelward.validate(f"{name}:{version}", settings=settings)


def start_canary(
    settings: Settings,
    name: str,
    version: str,
    *,
    steps: tuple[float, ...],
    step_seconds: float,
    min_requests: int,
) -> int:
    """Start a canary of ``version`` against the champion, as ``modelward deploy NAME --canary VERSION``
    does (targets checked first); returns the deployment's revision. Its rules judge live AUC from the
    labels; divergence is allowed, since the new version is meant to answer differently, and latency
    is judged only beyond 250 ms."""
    import modelward
    from modelward.control.targets import check_targets
    from modelward.routing import CanaryRules, DeploymentSpec

    rules = CanaryRules(
        max_divergence=1.0,
        latency_slack_ms=250.0,  # a version just loaded on a busy laptop is slower for a while
        metric="roc_auc",
        min_requests=min_requests,
        min_labels=min_requests,
    )
    spec = DeploymentSpec.start_canary(name, version, steps=steps, step_seconds=step_seconds, rules=rules)
    with modelward.open_registry(settings) as registry:
        check_targets(registry, spec)
        current = registry.deployments.get(name)
        stored = registry.deployments.put(
            spec,
            reason=f"quickstart: canary of version {version}",
            expected_revision=current.revision if current else 0,
            action="deploy",
        )
    return int(stored.revision)


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
