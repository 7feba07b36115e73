"""Lineage of a federated model: how many nodes trained it, over how many rounds, by which strategy.

A federated model's training data never leaves the nodes that hold it, so its registration has no
training data to fingerprint. The data given at registration is then the coordinator's reference
sample (the input schema, the input example, the drift reference), and the version's lineage names
the federation instead of a dataset: no ``dataset.sha256``, no dataset path or DVC pointer, and no
MLflow dataset input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelward.errors import RegistrationError
from modelward.registry.types import TAG_PREFIX

__all__ = ["Federation", "federation_of"]

PREFIX = TAG_PREFIX + "federation."
_REQUIRED = ("rounds", "nodes")
_OPTIONAL = ("strategy", "framework", "examples")


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RegistrationError(f"federation['{key}'] must be a positive integer, not {value!r}")
    return value


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RegistrationError(f"federation['{key}'] must be a non-empty string, not {value!r}")
    return value.strip()


@dataclass(frozen=True, slots=True)
class Federation:
    """How a federated model was trained.

    ``rounds`` of ``strategy`` (for example "FedAvg") over ``nodes`` nodes; ``framework`` names the
    software and its version ("flwr 1.42.0"); ``examples`` is the number of training rows the nodes
    reported (a count, not the data).
    """

    rounds: int
    nodes: int
    strategy: str | None = None
    framework: str | None = None
    examples: int | None = None

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any]) -> Federation:
        """Checked: ``rounds`` and ``nodes`` are required; an unknown key is refused, not dropped."""
        if not isinstance(value, Mapping):
            raise RegistrationError(f"federation must be a mapping, not {type(value).__name__}")
        unknown = sorted(set(value) - {*_REQUIRED, *_OPTIONAL})
        if unknown:
            raise RegistrationError(
                f"unknown federation key(s): {', '.join(map(str, unknown))}; "
                f"known: {', '.join((*_REQUIRED, *_OPTIONAL))}"
            )
        missing = [k for k in _REQUIRED if k not in value]
        if missing:
            raise RegistrationError(f"federation lineage needs {' and '.join(missing)}")
        examples = value.get("examples")
        return cls(
            rounds=_positive_int("rounds", value["rounds"]),
            nodes=_positive_int("nodes", value["nodes"]),
            strategy=_text("strategy", value["strategy"]) if value.get("strategy") is not None else None,
            framework=_text("framework", value["framework"]) if value.get("framework") is not None else None,
            examples=_positive_int("examples", examples) if examples is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in {
                "rounds": self.rounds,
                "nodes": self.nodes,
                "strategy": self.strategy,
                "framework": self.framework,
                "examples": self.examples,
            }.items()
            if v is not None
        }

    def describe(self) -> str:
        """One line for ``modelward show`` and the model card."""
        how = f"{self.strategy or 'federated'}, {self.rounds} rounds over {self.nodes} nodes"
        extra = [x for x in (self.framework, self.examples and f"{self.examples} examples") if x]
        return how + (f" ({', '.join(extra)})" if extra else "") + "; the training data stayed on the nodes"

    def tags(self) -> dict[str, str]:
        """The version's lineage tags: ``modelward.federation.rounds``, ``...nodes``, ..."""
        return {PREFIX + k: str(v) for k, v in self.to_dict().items()}

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> Federation | None:
        """Read back from a version's tags; ``None`` for a version that was not trained by a federation."""
        if PREFIX + "rounds" not in tags or PREFIX + "nodes" not in tags:
            return None
        examples = tags.get(PREFIX + "examples")
        return cls(
            rounds=int(tags[PREFIX + "rounds"]),
            nodes=int(tags[PREFIX + "nodes"]),
            strategy=tags.get(PREFIX + "strategy"),
            framework=tags.get(PREFIX + "framework"),
            examples=int(examples) if examples is not None else None,
        )


def federation_of(value: Federation | Mapping[str, Any] | None) -> Federation | None:
    if value is None or isinstance(value, Federation):
        return value
    return Federation.from_mapping(value)
