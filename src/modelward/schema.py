"""Feature schema, taken from a model's MLflow signature: names, types, whether a value is required.

Pure: the signature arrives as its JSON form, so this module never imports MLflow.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from modelward.errors import SchemaError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FeatureSchema", "Field"]

FieldType = Literal["double", "float", "long", "integer", "boolean", "string", "binary", "datetime"]
_NUMERIC = {"double", "float", "long", "integer"}
_KNOWN: set[str] = {"double", "float", "long", "integer", "boolean", "string", "binary", "datetime"}


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: FieldType
    required: bool = True

    @property
    def numeric(self) -> bool:
        return self.type in _NUMERIC

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "required": self.required}


@dataclass(frozen=True, slots=True)
class FeatureSchema:
    fields: tuple[Field, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def __getitem__(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def __len__(self) -> int:
        return len(self.fields)

    @classmethod
    def from_mlflow_inputs(cls, inputs: str | Sequence[dict[str, Any]]) -> FeatureSchema:
        """From the ``inputs`` member of an MLflow signature (column-based schemas only)."""
        specs = json.loads(inputs) if isinstance(inputs, str) else list(inputs)
        fields: list[Field] = []
        for i, spec in enumerate(specs):
            name = spec.get("name")
            kind = spec.get("type")
            if not name:
                raise SchemaError(
                    [f"signature input {i} has no name: only column-based signatures are supported"]
                )
            if kind not in _KNOWN:
                raise SchemaError([f"signature input '{name}' has unsupported type {kind!r}"])
            fields.append(Field(str(name), kind, bool(spec.get("required", True))))
        return cls(tuple(fields))

    def to_dict(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.fields]

    def select(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The schema's columns of ``frame`` in schema order; extra columns (ids, the target) are left out.

        A missing required column is an error; a missing optional one is filled with nulls.
        """
        missing = [f.name for f in self.fields if f.name not in frame.columns and f.required]
        if missing:
            raise SchemaError([f"missing column '{name}'" for name in missing])
        out = frame.reindex(columns=list(self.names))
        return out
