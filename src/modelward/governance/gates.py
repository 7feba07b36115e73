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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelward.errors import ConfigError, IntegrityError
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
from modelward.schema import FeatureSchema

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["effective_policy", "latest_validation", "validate"]


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
    source = policy_source or source
    champion = _champion(registry, info, against)
    alone = f"{info.ref} holds {against}" if champion is None and _holds(info, against) else f"no {against}"
    frame, holdout_name = _holdout(data if data is not None else chosen.holdout)

    gates: list[GateResult] = []
    model: LoadedModel | None = None
    integrity, model = _integrity(registry, info)
    gates.append(integrity)
    gates.append(_schema_gate(registry, info, model, champion, chosen, alone))

    scored: Scored | None = None
    target: str | None = None
    why_no_holdout = "no holdout given (--data, or `holdout:` in the policy)"
    if frame is not None and model is not None:
        target = label or chosen.label or model.record.get("target")
        if not target:
            raise ConfigError(f"{info.ref} recorded no target column: name the holdout's label with --label")
        scored = score_holdout(model, frame, str(target))
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
        gates.append(_latency(registry, model, frame, chosen.latency, compile=compile, cache_dir=cache_dir))
    if chosen.calibration is not None:
        gates.append(_calibration(registry, info, chosen.calibration.max_ece))

    validation = Validation(
        model=info.name,
        version=info.version,
        against=champion.version if champion is not None else None,
        gates=tuple(gates),
        holdout=holdout_name,
        holdout_rows=scored.rows if scored is not None else None,
        policy_source=source,
        policy=chosen.to_dict(),
        seconds=round(time.perf_counter() - started, 3),
    )
    if save:
        VersionReports(registry.store).save(
            info.name, info.version, REPORT_KIND, validation.to_dict(), actor=actor or registry.actor
        )
    return validation


def _champion(registry: Registry, info: VersionInfo, against: str) -> VersionInfo | None:
    """The version to compare with; None when the alias is unset or the candidate holds it."""
    if against.isdigit():
        found = registry.version(info.name, against)
    else:
        holder = registry.model(info.name).aliases.get(against.lstrip("@"))
        if holder is None:
            return None
        found = registry.version(info.name, holder)
    return None if found.version == info.version else found


def _holds(info: VersionInfo, against: str) -> bool:
    return against == info.version or against.lstrip("@") in info.aliases


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
    registry: Registry,
    info: VersionInfo,
    model: LoadedModel | None,
    champion: VersionInfo | None,
    policy: GatePolicy,
    alone: str,
) -> GateResult:
    if champion is None:
        return GateResult("schema", "skipped", reason=f"nothing to compare with: {alone}")
    mine = model.schema if model is not None else registry.signature(info)
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
    registry: Registry,
    model: LoadedModel | None,
    frame: pd.DataFrame | None,
    policy: LatencyPolicy,
    *,
    compile: bool,
    cache_dir: Path | None,
) -> GateResult:
    from modelward.governance.latency import single_row_latency
    from modelward.runtime.predictor import model_digest

    if model is None:
        return GateResult("latency", "skipped", reason="the candidate failed the integrity gate")
    digest = model_digest(registry.manifest(model.name, model.version))
    sample = single_row_latency(
        model, frame, sample=policy.sample, compile=compile, cache_dir=cache_dir, digest=digest
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


def _calibration(registry: Registry, info: VersionInfo, max_ece: float) -> GateResult:
    from modelward.feedback.calibrate import version_facts

    facts = version_facts(registry, info.name, info.version)
    calibration = facts.calibration if facts is not None else None
    if calibration is None:
        return GateResult("calibration", "skipped", reason="no calibration recorded for this version")
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
