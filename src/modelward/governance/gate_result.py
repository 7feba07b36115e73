"""What the promotion gates found: a :class:`GateResult` per gate and the :class:`Validation` of a
candidate version, stored with it as the ``validation`` report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["REPORT_KIND", "GateResult", "Validation", "Verdict"]

REPORT_KIND = "validation"
Verdict = Literal["pass", "fail", "skipped"]


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate: its measured ``value`` against ``threshold`` (``op`` says how they compare: the value
    must be ``<=`` or ``>=`` the threshold, or ``==`` for a count that must be 0), its verdict, and
    ``reason`` (why it failed or was skipped). ``detail`` holds the figures behind it (fairness: the
    group and by how much; regression: both versions' metric)."""

    name: str
    verdict: Verdict
    value: float | None = None
    threshold: float | None = None
    op: str | None = None
    unit: str = ""
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.verdict == "fail"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict,
            "value": self.value,
            "threshold": self.threshold,
            "op": self.op,
            "unit": self.unit,
            "reason": self.reason,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> GateResult:
        return cls(
            name=str(value["name"]),
            verdict=value["verdict"],
            value=value.get("value"),
            threshold=value.get("threshold"),
            op=value.get("op"),
            unit=str(value.get("unit") or ""),
            reason=value.get("reason"),
            detail=dict(value.get("detail") or {}),
        )

    def describe(self) -> str:
        """The measurement in words: ``0.812 >= 0.8``, or the reason when there is none."""
        if self.value is None:
            return self.reason or ""
        unit = f" {self.unit}" if self.unit else ""
        text = f"{_num(self.value)}{unit}"
        if self.threshold is not None and self.op:
            text += f" (must be {self.op} {_num(self.threshold)}{unit})"
        return text


@dataclass(frozen=True, slots=True)
class Validation:
    """Every gate of ``model:version`` against ``against`` (the champion's version, None without one).

    A model not registered yet (:func:`modelward.governance.gates.validate_model`) has no
    ``version``: ``model_uri`` names it instead."""

    model: str
    version: str | None
    against: str | None
    gates: tuple[GateResult, ...]
    holdout: str | None = None
    holdout_rows: int | None = None
    policy_source: str = "default"  # "default", "stored" or the policy file
    policy: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    model_uri: str | None = None

    @property
    def verdict(self) -> Literal["pass", "fail"]:
        return "fail" if any(g.failed for g in self.gates) else "pass"

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def failing(self) -> list[GateResult]:
        return [g for g in self.gates if g.failed]

    @property
    def skipped(self) -> list[GateResult]:
        return [g for g in self.gates if g.verdict == "skipped"]

    @property
    def ref(self) -> str:
        """``model:version``, or for a model not registered yet ``model candidate <its URI>``."""
        if self.version is None:
            return f"{self.model} candidate {self.model_uri}"
        return f"{self.model}:{self.version}"

    def summary(self) -> dict[str, Any]:
        """The audit chain's copy: the verdict and each gate's figures, without the details."""
        return {
            "verdict": self.verdict,
            "against": self.against,
            "holdout": self.holdout,
            "gates": [
                {k: g.to_dict()[k] for k in ("name", "verdict", "value", "threshold", "op", "reason")}
                for g in self.gates
            ],
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "model_uri": self.model_uri,
            "against": self.against,
            "verdict": self.verdict,
            "holdout": self.holdout,
            "holdout_rows": self.holdout_rows,
            "policy_source": self.policy_source,
            "policy": self.policy,
            "seconds": self.seconds,
            "gates": [g.to_dict() for g in self.gates],
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Validation:
        return cls(
            model=str(value["model"]),
            version=None if value.get("version") is None else str(value["version"]),
            against=value.get("against"),
            gates=tuple(GateResult.from_dict(g) for g in value.get("gates") or ()),
            holdout=value.get("holdout"),
            holdout_rows=value.get("holdout_rows"),
            policy_source=str(value.get("policy_source") or "default"),
            policy=dict(value.get("policy") or {}),
            seconds=float(value.get("seconds") or 0.0),
            model_uri=value.get("model_uri"),
        )


def _num(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
