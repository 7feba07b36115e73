"""Promotion gates: every check a candidate version must pass before it takes an alias.

:func:`validate` evaluates a candidate against the champion under the model's policy
(:mod:`modelward.governance.policy`: a file, the policy stored with ``modelward policy set``, else
the defaults) and stores the result with the version (report kind ``validation``). Gates that need
data nobody gave (a holdout, a champion, a recorded calibration) are ``skipped`` with the reason, never
passed silently. The candidate and the champion are both scored here, on the same holdout rows.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelward.errors import ConfigError, IntegrityError, NotFound
from modelward.governance.gate_result import REPORT_KIND, GateResult, Validation, Verdict
from modelward.governance.holdout import Scored, primary_metric, score_holdout
from modelward.governance.policy import (
    LOWER_IS_BETTER,
    GatePolicy,
    LatencyPolicy,
    RegressionPolicy,
    parse_policy,
)
from modelward.governance.reports import VersionReports
from modelward.registry import DEFAULT_ALIAS, Registry, VersionInfo
from modelward.runtime.model import LoadedModel
from modelward.runtime.predictor import model_digest
from modelward.schema import FeatureSchema

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


@dataclass(frozen=True, eq=False)
class _Candidate:
    """What the gates judge: a registered version, or an MLflow model not registered yet."""

    name: str
    ref: str  # how the reasons name it: name:version, or the model's URI
    version: str | None  # None: not registered
    model: LoadedModel | None  # None when it failed the integrity gate
    integrity: GateResult
    signature: FeatureSchema | None  # its input schema when it could not be loaded
    digest: str | None  # the compiled cache's key (the pinned files); None: keyed by the model's bytes


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
    integrity, model = _integrity(registry, info)
    target: str | None = None
    if frame is not None and model is not None:
        target = label or chosen.label or model.record.get("target")
        if not target:
            raise ConfigError(f"{info.ref} recorded no target column: name the holdout's label with --label")
    candidate = _Candidate(
        name=info.name,
        ref=info.ref,
        version=info.version,
        model=model,
        integrity=integrity,
        signature=registry.signature(info) if model is None and champion is not None else None,
        digest=model_digest(registry.manifest(info.name, info.version)) if model is not None else None,
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
    candidate = _Candidate(name, model_uri, None, model, integrity, None, None)
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
    candidate: _Candidate,
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
    gates.append(_schema_gate(candidate, champion, chosen, alone, registry))

    scored: Scored | None = None
    why_no_holdout = "no holdout given (--data, or `holdout:` in the policy)"
    if frame is not None and model is not None and target is not None:
        scored = score_holdout(model, frame, target)
    elif frame is not None:
        why_no_holdout = "the candidate failed the integrity gate"

    for metric, bound in chosen.metrics.items():
        gates.extend(_floor(metric, bound.min, bound.max, scored, why_no_holdout))
    if chosen.regression is not None:
        gates.append(
            _regression(registry, champion, chosen.regression, scored, frame, target, why_no_holdout, alone)
        )
    if chosen.fairness is not None:
        from modelward.governance.fairness_gate import fairness_gates

        gates.extend(fairness_gates(chosen.fairness, scored, frame, why_no_holdout))
    if chosen.latency is not None:
        gates.append(_latency(candidate, frame, chosen.latency, compile=compile, cache_dir=cache_dir))
    if chosen.calibration is not None:
        gates.append(_calibration(registry, candidate, scored, chosen.calibration.max_ece))

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


def _integrity(registry: Registry, info: VersionInfo) -> tuple[GateResult, LoadedModel | None]:
    """The pins are vouched for by the audit chain, and every artifact, downloaded, matches its pin
    (:func:`modelward.runtime.load_version` hashes them before loading)."""
    from modelward.runtime import load_version

    try:
        pins = registry.verified_manifest(info.name, info.version).pins
        model = load_version(registry, info)
    except IntegrityError as exc:
        return GateResult(
            "integrity", "fail", reason="; ".join(exc.problems), detail={"problems": list(exc.problems)}
        ), None
    files = len(pins)
    detail = {"pinned_files": files}
    return GateResult(
        "integrity", "pass", value=0, threshold=0, op="==", unit="changed", detail=detail
    ), model


def _schema_gate(
    candidate: _Candidate,
    champion: VersionInfo | None,
    policy: GatePolicy,
    alone: str,
    registry: Registry,
) -> GateResult:
    if champion is None:
        return GateResult("schema", "skipped", reason=f"nothing to compare with: {alone}")
    if candidate.model is not None:
        mine = candidate.model.schema
    elif candidate.signature is not None:
        mine = candidate.signature
    else:
        return GateResult("schema", "skipped", reason="the candidate's input schema is unknown")
    theirs = registry.signature(champion)
    removed, retyped, added = _schema_changes(theirs, mine)
    allowed = policy.schema_
    bad_removed = [n for n in removed if n not in allowed.allow_removed]
    bad_retyped = [n for n in retyped if n not in allowed.allow_retyped]
    detail = {"removed": removed, "retyped": retyped, "added": added, "champion": champion.version}
    problems = [f"removed {n}" for n in bad_removed] + [f"retyped {n} ({retyped[n]})" for n in bad_retyped]
    if problems:
        reason = f"against {champion.ref}: " + ", ".join(problems)
        return GateResult(
            "schema",
            "fail",
            value=len(problems),
            threshold=0,
            op="==",
            unit="breaking",
            reason=reason,
            detail=detail,
        )
    return GateResult("schema", "pass", value=0, threshold=0, op="==", unit="breaking", detail=detail)


def _schema_changes(old: FeatureSchema, new: FeatureSchema) -> tuple[list[str], dict[str, str], list[str]]:
    before = {f.name: f.describe() for f in old.fields}
    after = {f.name: f.describe() for f in new.fields}
    removed = [n for n in before if n not in after]
    retyped = {n: f"{before[n]} -> {after[n]}" for n in before if n in after and before[n] != after[n]}
    added = [n for n in after if n not in before]
    return removed, retyped, added


def _floor(
    metric: str, low: float | None, high: float | None, scored: Scored | None, why: str
) -> list[GateResult]:
    name = f"metric:{metric}"
    if scored is None:
        return [GateResult(name, "skipped", reason=why)]
    value = scored.metric(metric)
    if value is None:
        return [GateResult(name, "skipped", reason=f"{metric} does not apply to this model or holdout")]
    out: list[GateResult] = []
    for bound, op in ((low, ">="), (high, "<=")):
        if bound is None:
            continue
        ok = value >= bound if op == ">=" else value <= bound
        verdict: Verdict = "pass" if ok else "fail"
        reason = None if verdict == "pass" else f"{metric} {value:.4g} is not {op} {bound:.4g}"
        out.append(
            GateResult(
                name,
                verdict,
                value=value,
                threshold=bound,
                op=op,
                reason=reason,
                detail={"rows": scored.rows},
            )
        )
    return out


def _regression(
    registry: Registry,
    champion: VersionInfo | None,
    policy: RegressionPolicy,
    scored: Scored | None,
    frame: pd.DataFrame | None,
    target: str | None,
    why: str,
    alone: str,
) -> GateResult:
    from modelward.runtime import load_version

    if scored is None or frame is None or target is None:
        return GateResult("regression", "skipped", reason=why)
    if champion is None:
        return GateResult("regression", "skipped", reason=f"nothing to compare with: {alone}")
    metric = policy.metric or primary_metric(scored.model)
    margin = policy.margin
    mine = scored.metric(metric)
    theirs = score_holdout(load_version(registry, champion), frame, target).metric(metric)
    if mine is None or theirs is None:
        return GateResult("regression", "skipped", reason=f"{metric} cannot be measured for both versions")
    lower = metric in LOWER_IS_BETTER
    threshold = theirs + margin if lower else theirs - margin
    ok = mine <= threshold if lower else mine >= threshold
    op = "<=" if lower else ">="
    detail = {
        "metric": metric,
        "candidate": mine,
        "champion": theirs,
        "champion_version": champion.version,
        "margin": margin,
        "rows": scored.rows,
    }
    reason = None
    if not ok:
        reason = f"{metric} {mine:.4g} vs champion {champion.ref} {theirs:.4g}: worse by more than {margin:g}"
    return GateResult(
        "regression",
        "pass" if ok else "fail",
        value=mine,
        threshold=threshold,
        op=op,
        reason=reason,
        detail=detail,
    )


def _latency(
    candidate: _Candidate,
    frame: pd.DataFrame | None,
    policy: LatencyPolicy,
    *,
    compile: bool,
    cache_dir: Path | None,
) -> GateResult:
    from modelward.governance.latency import single_row_latency

    model = candidate.model
    if model is None:
        return GateResult("latency", "skipped", reason="the candidate failed the integrity gate")
    sample = single_row_latency(
        model, frame, sample=policy.sample, compile=compile, cache_dir=cache_dir, digest=candidate.digest
    )
    p95 = sample.percentile_ms(95)
    budget = policy.p95_ms
    detail = {
        "runtime": sample.runtime,
        "rows": sample.rows,
        "p50_ms": sample.percentile_ms(50),
        "p99_ms": sample.percentile_ms(99),
    }
    ok = p95 <= budget
    reason = None if ok else f"p95 {p95:.4g} ms on {sample.runtime} is over the {budget:g} ms budget"
    return GateResult(
        "latency",
        "pass" if ok else "fail",
        value=p95,
        threshold=budget,
        op="<=",
        unit="ms",
        reason=reason,
        detail=detail,
    )


def _calibration(
    registry: Registry, candidate: _Candidate, scored: Scored | None, max_ece: float
) -> GateResult:
    """A version's recorded calibration (``modelward calibrate``'s newest, else registration's); a
    model not registered yet has none recorded: it is measured on the holdout rows."""
    from modelward.feedback.calibrate import version_facts
    from modelward.registry.calibration import Calibration, compute_calibration

    calibration: Calibration | None = None
    missing = "no probabilities on a holdout to measure the calibration on"
    if candidate.version is not None:
        facts = version_facts(registry, candidate.name, candidate.version)
        calibration = facts.calibration if facts is not None else None
        missing = "no calibration recorded for this version"
    elif scored is not None and scored.proba is not None and candidate.model is not None:
        classes = candidate.model.classes
        try:
            calibration = compute_calibration(list(scored.y_true), scored.proba, classes, source="holdout")
        except ValueError as exc:
            missing = f"cannot measure the calibration on the holdout: {exc}"
    if calibration is None:
        return GateResult("calibration", "skipped", reason=missing)
    ok = calibration.ece <= max_ece
    detail = {"source": calibration.source, "rows": calibration.n}
    reason = None if ok else f"ECE {calibration.ece:.4g} ({calibration.source}) is over {max_ece:g}"
    return GateResult(
        "calibration",
        "pass" if ok else "fail",
        value=calibration.ece,
        threshold=max_ece,
        op="<=",
        reason=reason,
        detail=detail,
    )
