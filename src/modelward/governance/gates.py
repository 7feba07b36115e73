"""Promotion gates: every check a candidate version must pass before it takes an alias.

:func:`validate` evaluates a candidate against the champion under the model's policy
(:mod:`modelward.governance.policy`: a file, the policy stored with ``modelward policy set``, else
the defaults) and stores the result with the version (report kind ``validation``);
:func:`validate_model` evaluates the same gates on an MLflow model before it is registered (the
verdict goes to the audit chain: there is no version to store it with). The gates themselves are in
:mod:`modelward.governance.gate_checks`. Gates that need
data nobody gave (a holdout, a champion, a recorded calibration) are ``skipped`` with the reason, never
passed silently. The candidate and the champion are both scored here, on the same holdout rows.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelward.errors import ConfigError, NotFound
from modelward.governance.gate_checks import (
    Candidate,
    calibration_gate,
    floor_gates,
    integrity_gate,
    latency_gate,
    regression_gate,
    schema_gate,
)
from modelward.governance.gate_result import REPORT_KIND, GateResult, Validation
from modelward.governance.holdout import Scored, score_holdout
from modelward.governance.policy import GatePolicy, parse_policy
from modelward.governance.reports import VersionReports
from modelward.registry import DEFAULT_ALIAS, Registry, VersionInfo
from modelward.runtime.model import LoadedModel
from modelward.runtime.predictor import model_digest

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["VALIDATE_MODEL_ACTION", "effective_policy", "latest_validation", "validate", "validate_model"]

VALIDATE_MODEL_ACTION = "validate_model"


def effective_policy(
    registry: Registry, name: str, policy: GatePolicy | None = None
) -> tuple[GatePolicy, str]:
    """The policy that applies to ``name`` and where it came from: the one given, else the stored one,
    else the defaults."""
    if policy is not None:
        return policy, "given"
    stored = VersionReports(registry.store).policy(name)
    if stored is not None:
        return parse_policy(stored.body, source=f"the stored policy of {name}"), "stored"
    return GatePolicy(), "default"


def latest_validation(registry: Registry, name: str, version: str) -> Validation | None:
    report = VersionReports(registry.store).latest(name, str(version), REPORT_KIND)
    return None if report is None else Validation.from_dict(report.body)


def validate(
    registry: Registry,
    ref: str,
    *,
    against: str = DEFAULT_ALIAS,
    data: pd.DataFrame | str | os.PathLike[str] | None = None,
    label: str | None = None,
    policy: GatePolicy | None = None,
    policy_source: str | None = None,
    compile: bool = True,
    cache_dir: Path | None = None,
    save: bool = True,
    actor: str | None = None,
) -> Validation:
    """Evaluate every gate of ``ref`` (``name:version``, ``name@alias``) against ``against`` (an alias
    of the same model, or a version number). Raises (NotFound, ConfigError, ...) only when the gates
    cannot be evaluated at all: an unknown model, a holdout that cannot be read or lacks its label."""
    started = time.perf_counter()
    info = registry.resolve(ref)
    chosen, source = effective_policy(registry, info.name, policy)
    champion, alone = _champion(registry, info.name, info, against)
    frame, holdout_name = _holdout(data if data is not None else chosen.holdout)
    integrity, model = integrity_gate(registry, info)
    target: str | None = None
    if frame is not None and model is not None:
        target = label or chosen.label or model.record.get("target")
        if not target:
            raise ConfigError(f"{info.ref} recorded no target column: name the holdout's label with --label")
    candidate = Candidate(
        name=info.name,
        ref=info.ref,
        version=info.version,
        model=model,
        integrity=integrity,
        signature=registry.signature(info) if model is None and champion is not None else None,
        digest=_digest(registry, info) if model is not None and chosen.latency is not None else None,
    )
    validation = _evaluate(
        registry,
        candidate,
        champion,
        alone,
        chosen,
        policy_source or source,
        (frame, holdout_name, target),
        compile=compile,
        cache_dir=cache_dir,
        started=started,
    )
    if save:
        VersionReports(registry.store).save(
            info.name, info.version, REPORT_KIND, validation.to_dict(), actor=actor or registry.actor
        )
    return validation


def validate_model(
    registry: Registry,
    model_uri: str,
    name: str,
    *,
    against: str = DEFAULT_ALIAS,
    data: pd.DataFrame | str | os.PathLike[str] | None = None,
    label: str | None = None,
    policy: GatePolicy | None = None,
    policy_source: str | None = None,
    task: str | None = None,
    trusted_types: Sequence[str] = (),
    allow_pickle: bool = False,
    compile: bool = True,
    cache_dir: Path | None = None,
    actor: str | None = None,
) -> Validation:
    """Evaluate the gates of model ``name`` (its policy, its champion) on an MLflow model that is NOT
    registered (``runs:/...``, ``models:/m-...``, a local folder): the check to pass before registering
    it. The model is loaded as registration loads it (pickle refused unless ``allow_pickle``; skops
    types beyond the reviewed list refused unless in ``trusted_types``) and judged on the labelled
    holdout, which is required. Its task is ``task``, else the champion's, else decided as
    registration decides it.

    Nothing is registered and no version's validation report is written (there is no version); the
    verdict is appended to the audit chain as a ``validate_model`` event on ``name`` naming the URI.
    Raises (RegistrationError for a URI that cannot be read or loaded, ConfigError, ...) when the
    gates cannot be evaluated at all."""
    from modelward.registry.from_mlflow import inspect_mlflow_model
    from modelward.registry.refs import validate_name

    started = time.perf_counter()
    validate_name(name)
    chosen, source = effective_policy(registry, name, policy)
    champion, alone = _champion(registry, name, None, against)
    frame, holdout_name = _holdout(data if data is not None else chosen.holdout)
    if frame is None:
        raise ConfigError(
            "a model that is not registered is judged on a labelled holdout: give --data "
            "(or `holdout:` in the policy)"
        )
    recorded = _record(registry, champion)
    target = label or chosen.label or recorded.get("target")
    if not target:
        why = f"{champion.ref} recorded no target" if champion is not None else alone
        raise ConfigError(f"no label column ({why}): name the holdout's label with --label")
    target = str(target)
    if target not in frame.columns:
        columns = ", ".join(map(str, frame.columns))
        raise ConfigError(f"the label column '{target}' is not in the holdout (columns: {columns})")
    inspected = inspect_mlflow_model(
        registry,
        model_uri,
        frame,
        target=target,
        trusted_types=trusted_types,
        allow_pickle=allow_pickle,
        task=task or recorded.get("task"),
    )
    info = VersionInfo(
        name=name,
        version="candidate",
        aliases=(),
        created_at=None,
        run_id=getattr(inspected.mlmodel, "run_id", None),
        source=model_uri,
        description="",
    )
    model = LoadedModel(
        info=info,
        native=inspected.native.model,
        runtime=inspected.native.runtime,
        task=inspected.task.task,
        classes=inspected.task.classes,
        schema=inspected.schema,
        profile=inspected.profile,
        record=inspected.record(target=target, trusted_types=trusted_types, allow_pickle=allow_pickle),
    )
    integrity = GateResult(
        "integrity",
        "skipped",
        reason="not registered yet: its files are pinned at registration and checked at every load",
    )
    candidate = Candidate(name, model_uri, None, model, integrity, None, None)
    validation = _evaluate(
        registry,
        candidate,
        champion,
        alone,
        chosen,
        policy_source or source,
        (frame, holdout_name, target),
        compile=compile,
        cache_dir=cache_dir,
        started=started,
    )
    payload = {"model_uri": model_uri, **validation.summary(), "policy_source": validation.policy_source}
    registry.audit.append(VALIDATE_MODEL_ACTION, name, payload, actor=actor or registry.actor)
    return validation


def _evaluate(
    registry: Registry,
    candidate: Candidate,
    champion: VersionInfo | None,
    alone: str,
    chosen: GatePolicy,
    source: str,
    holdout: tuple[pd.DataFrame | None, str | None, str | None],
    *,
    compile: bool,
    cache_dir: Path | None,
    started: float,
) -> Validation:
    """Every gate of the policy on the candidate, registered or not. ``holdout``: the frame, its name
    and its label column."""
    frame, holdout_name, target = holdout
    model = candidate.model
    gates: list[GateResult] = [candidate.integrity]
    gates.append(schema_gate(candidate, champion, chosen, alone, registry))

    scored: Scored | None = None
    why_no_holdout = "no holdout given (--data, or `holdout:` in the policy)"
    if frame is not None and model is not None and target is not None:
        scored = score_holdout(model, frame, target)
    elif frame is not None:
        why_no_holdout = "the candidate failed the integrity gate"

    for metric, bound in chosen.metrics.items():
        gates.extend(floor_gates(metric, bound.min, bound.max, scored, why_no_holdout))
    if chosen.regression is not None:
        gates.append(
            regression_gate(
                registry, champion, chosen.regression, scored, frame, target, why_no_holdout, alone
            )
        )
    if chosen.fairness is not None:
        from modelward.governance.fairness_gate import fairness_gates

        gates.extend(fairness_gates(chosen.fairness, scored, frame, why_no_holdout))
    if chosen.latency is not None:
        gates.append(latency_gate(candidate, frame, chosen.latency, compile=compile, cache_dir=cache_dir))
    if chosen.calibration is not None:
        gates.append(calibration_gate(registry, candidate, scored, chosen.calibration.max_ece))

    return Validation(
        model=candidate.name,
        version=candidate.version,
        against=champion.version if champion is not None else None,
        gates=tuple(gates),
        holdout=holdout_name,
        holdout_rows=scored.rows if scored is not None else None,
        policy_source=source,
        policy=chosen.to_dict(),
        seconds=round(time.perf_counter() - started, 3),
        model_uri=None if candidate.version is not None else candidate.ref,
    )


def _champion(
    registry: Registry, name: str, info: VersionInfo | None, against: str
) -> tuple[VersionInfo | None, str]:
    """The version to compare with, or None and why: the alias is unset, the candidate holds it, or
    (a model not registered yet) ``name`` has no version at all."""
    if against.isdigit():
        found = registry.version(name, against)
    else:
        try:
            holder = registry.model(name).aliases.get(against.lstrip("@"))
        except NotFound:
            if info is not None:
                raise
            return None, f"{name} has no registered version yet"
        if holder is None:
            return None, f"no {against}"
        found = registry.version(name, holder)
    if info is not None and found.version == info.version:
        return None, f"{info.ref} holds {against}"
    return found, ""


def _digest(registry: Registry, info: VersionInfo) -> str:
    """The compiled cache's key of a registered version: its pinned model files."""
    return model_digest(registry.manifest(info.name, info.version))


def _record(registry: Registry, version: VersionInfo | None) -> dict[str, Any]:
    """The registration record of ``version`` ({} without one)."""
    from modelward.feedback.calibrate import read_record

    record = read_record(registry, version) if version is not None else None
    return record or {}


def _holdout(data: Any) -> tuple[pd.DataFrame | None, str | None]:
    import pandas as pd

    if data is None:
        return None, None
    if isinstance(data, pd.DataFrame):
        return data, f"DataFrame ({len(data)} rows)"
    from modelward.registry.register import read_table

    path = Path(data).expanduser()
    return read_table(path), str(path)
