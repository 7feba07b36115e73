"""The fairness gates: the candidate's predictions on the holdout, audited per sensitive feature by
:func:`modelward.governance.fairness.audit_fairness` (Fairlearn), against the policy's bounds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelward.errors import ConfigError
from modelward.governance.fairness import audit_fairness
from modelward.governance.fairness_report import FairnessReport, FeatureFairness, Measure
from modelward.governance.gate_result import GateResult
from modelward.governance.holdout import Scored
from modelward.governance.policy import FairnessPolicy

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["fairness_gates"]

# policy field -> (report attribute, "max" or "min", the gap measure that names the group)
_BOUNDS: dict[str, tuple[str, str, Measure]] = {
    "max_demographic_parity_difference": ("demographic_parity_difference", "max", "demographic_parity"),
    "min_demographic_parity_ratio": ("demographic_parity_ratio", "min", "demographic_parity"),
    "max_equalized_odds_difference": ("equalized_odds_difference", "max", "equalized_odds"),
}


def fairness_gates(
    policy: FairnessPolicy, scored: Scored | None, frame: pd.DataFrame | None, why: str
) -> list[GateResult]:
    """One gate per bound the policy sets (``fairness:<measure>``), judged on the feature where the
    measure is worst; the detail names that feature, its worst-off group and by how much."""
    names = [
        f"fairness:{attr}" for field, (attr, _, _) in _BOUNDS.items() if getattr(policy, field) is not None
    ]
    if not names:
        names = ["fairness"]
    if scored is None or frame is None:
        return [GateResult(name, "skipped", reason=why) for name in names]
    if not scored.model.is_classifier:
        return [GateResult(name, "skipped", reason="fairness gates are for classifiers") for name in names]
    missing = [c for c in policy.sensitive if c not in frame.columns]
    if missing:
        raise ConfigError(f"sensitive column(s) not in the holdout: {', '.join(missing)}")
    report = _audit(policy, scored, frame)
    out: list[GateResult] = []
    for field, (attr, kind, measure) in _BOUNDS.items():
        bound = getattr(policy, field)
        if bound is not None:
            out.append(_judge(report, attr, kind, measure, float(bound)))
    return out or [GateResult("fairness", "pass", reason="no bound set", detail={"report": report.to_dict()})]


def _audit(policy: FairnessPolicy, scored: Scored, frame: pd.DataFrame) -> FairnessReport:
    classes = scored.model.class_values
    # The selected class: the one registered as the answer's probability, else the second (as sklearn).
    named = scored.model.named_probability
    column = named[1] if named is not None else 1
    positive = classes[column] if len(classes) == 2 else None
    score = scored.proba[:, column] if scored.proba is not None and len(classes) == 2 else None
    sensitive = frame.loc[scored.keep, list(policy.sensitive)]
    return audit_fairness(
        list(scored.y_true),
        list(scored.y_pred),
        sensitive,
        y_score=score,
        positive_label=positive,
        min_group=policy.min_group,
        bins=policy.bins,
    )


def _judge(report: FairnessReport, attr: str, kind: str, measure: Measure, bound: float) -> GateResult:
    name = f"fairness:{attr}"
    measured = [(getattr(f, attr), f) for f in report.features if getattr(f, attr) is not None]
    if not measured:
        why = f"{attr.replace('_', ' ')} cannot be measured (too few groups of at least the minimum size)"
        return GateResult(name, "skipped", reason=why)
    value, feature = max(measured, key=lambda p: p[0]) if kind == "max" else min(measured, key=lambda p: p[0])
    ok = value <= bound if kind == "max" else value >= bound
    op = "<=" if kind == "max" else ">="
    detail = _detail(feature, measure)
    reason: str | None = None
    if not ok:
        gap = feature.worst_gap(measure)
        where = f": {gap.describe()}" if gap is not None else f" on {feature.feature}"
        reason = f"{attr.replace('_', ' ')} {value:.4f} is not {op} {bound:g}{where}"
    return GateResult(
        name,
        "pass" if ok else "fail",
        value=float(value),
        threshold=bound,
        op=op,
        reason=reason,
        detail=detail,
    )


def _detail(feature: FeatureFairness, measure: Measure) -> dict[str, Any]:
    gap = feature.worst_gap(measure)
    return {
        "feature": feature.feature,
        "worst_gap": gap.to_dict() if gap is not None else None,
        "small_groups": list(feature.small_groups),
        "groups": [g.to_dict() for g in feature.groups],
        "four_fifths": feature.four_fifths.to_dict(),
    }
