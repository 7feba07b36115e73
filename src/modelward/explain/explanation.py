"""What an explanation says: per input feature contributions that, with the base value, add up to
the model's output for the row, in the output space named."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Explanation", "OutputSpace", "RowExplanation"]

# probability: predict_proba of the class explained; log_odds: the margin before the sigmoid or
# softmax (decision_function); value: a regressor's prediction.
OutputSpace = Literal["probability", "log_odds", "value"]


@dataclass(frozen=True, slots=True)
class RowExplanation:
    contributions: dict[str, float]
    base_value: float
    output: float
    label: Any = None  # the class whose output is explained; None for a regressor

    def top(self, k: int) -> list[dict[str, Any]]:
        """The ``k`` largest contributions by magnitude, largest first."""
        ranked = sorted(self.contributions.items(), key=lambda kv: (-abs(kv[1]), kv[0]))
        return [{"feature": f, "contribution": v} for f, v in ranked[: max(k, 0)]]

    def to_dict(self, top_k: int = 5) -> dict[str, Any]:
        out: dict[str, Any] = {
            "contributions": dict(self.contributions),
            "base_value": self.base_value,
            "output": self.output,
            "top": self.top(top_k),
        }
        if self.label is not None:
            out["class"] = self.label
        return out


@dataclass(frozen=True, slots=True)
class Explanation:
    """One request's explanations: ``rows[i]`` explains the i-th input row."""

    model: str
    version: str
    method: str  # tree, linear or permutation
    output_space: OutputSpace
    rows: list[RowExplanation] = field(default_factory=list)

    def to_dict(self, top_k: int = 5) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "method": self.method,
            "output_space": self.output_space,
            "explanations": [{**row.to_dict(top_k), "output_space": self.output_space} for row in self.rows],
        }
