"""The promotion gates one by one: each takes the candidate (registered or not, see :class:`Candidate`)
and what it was scored on, and returns its :class:`GateResult`. :mod:`modelward.governance.gates`
decides which run, in which order, and against which champion."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelward.errors import IntegrityError
from modelward.governance.gate_result import GateResult, Verdict
from modelward.governance.holdout import Scored, primary_metric, score_holdout
from modelward.governance.policy import LOWER_IS_BETTER, GatePolicy, LatencyPolicy, RegressionPolicy
from modelward.registry import Registry, VersionInfo
from modelward.runtime.model import LoadedModel
from modelward.schema import FeatureSchema

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Candidate",
    "calibration_gate",
    "floor_gates",
    "integrity_gate",
    "latency_gate",
    "regression_gate",
    "schema_gate",
]


@dataclass(frozen=True, eq=False)
class Candidate:
    """What the gates judge: a registered version, or an MLflow model not registered yet."""

    name: str
    ref: str  # how the reasons name it: name:version, or the model's URI
    version: str | None  # None: not registered
    model: LoadedModel | None  # None when it failed the integrity gate
    integrity: GateResult
    signature: FeatureSchema | None  # its input schema when it could not be loaded
    digest: str | None  # the compiled cache's key (the pinned files); None: keyed by the model's bytes


def integrity_gate(registry: Registry, info: VersionInfo) -> tuple[GateResult, LoadedModel | None]:
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


def schema_gate(
    candidate: Candidate,
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


def floor_gates(
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


def regression_gate(
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


def latency_gate(
    candidate: Candidate,
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


def calibration_gate(
    registry: Registry, candidate: Candidate, scored: Scored | None, max_ece: float
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
