"""Feature schema, taken from a model's MLflow signature: names, types, whether a value is required.

Pure: the signature arrives as its JSON form (``Schema.to_json()`` of MLflow's public API, or the
MLmodel file's ``signature.inputs``), so this module never imports MLflow.

Besides scalar columns, MLflow's nested types are fields too: ``Array`` (``{"type": "array",
"items": ...}``), ``Object`` (``{"type": "object", "properties": {...}}``) and named tensors
(``{"type": "tensor", "tensor-spec": {"dtype", "shape"}}``: each row is one tensor of the shape
without its first, batch, dimension). Their element types nest as :class:`Field` values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from modelward.errors import SchemaError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FeatureSchema", "Field"]

FieldType = Literal[
    "double",
    "float",
    "long",
    "integer",
    "boolean",
    "string",
    "binary",
    "datetime",
    "array",
    "object",
    "tensor",
]
_NUMERIC = {"double", "float", "long", "integer"}
_KNOWN: set[str] = {"double", "float", "long", "integer", "boolean", "string", "binary", "datetime"}
NESTED: frozenset[str] = frozenset({"array", "object", "tensor"})
# Tensor dtypes (NumPy names, as MLflow writes them) -> the scalar type of their elements.
_TENSOR_DTYPES = {
    "float64": "double",
    "float32": "float",
    "float16": "float",
    "int64": "long",
    "int32": "integer",
    "int16": "integer",
    "int8": "integer",
    "uint8": "integer",
    "uint16": "integer",
    "uint32": "long",
    "bool": "boolean",
    "str": "string",
    "object": "string",
    "bytes": "binary",
}


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: FieldType
    required: bool = True
    items: Field | None = None  # an array's elements; a tensor's element type
    properties: tuple[Field, ...] = ()  # an object's members
    shape: tuple[int, ...] | None = None  # a tensor row's shape (-1: any length); dtype in ``items``
    dtype: str | None = None  # a tensor's NumPy dtype name

    @property
    def numeric(self) -> bool:
        return self.type in _NUMERIC

    @property
    def nested(self) -> bool:
        """An array, object or tensor: each row's value is a list or an object, not a scalar."""
        return self.type in NESTED

    def describe(self) -> str:
        """The type as a reader would write it: ``long``, ``array<long>``, ``object{a: double}``."""
        if self.type == "array" and self.items is not None:
            return f"array<{self.items.describe()}>"
        if self.type == "object":
            members = ", ".join(
                f"{p.name}{'' if p.required else '?'}: {p.describe()}" for p in self.properties
            )
            return f"object{{{members}}}"
        if self.type == "tensor":
            dims = ", ".join("*" if d < 0 else str(d) for d in self.shape or ())
            return f"tensor<{self.dtype}>[{dims}]"
        return self.type

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, **self._type_dict(), "required": self.required}
        return out

    def _type_dict(self) -> dict[str, Any]:  # MLflow's JSON form of the type
        if self.type == "array" and self.items is not None:
            return {"type": "array", "items": self.items._type_dict()}
        if self.type == "object":
            props = {p.name: {**p._type_dict(), "required": p.required} for p in self.properties}
            return {"type": "object", "properties": props}
        if self.type == "tensor":
            return {
                "type": "tensor",
                "tensor-spec": {"dtype": self.dtype, "shape": [-1, *(self.shape or ())]},
            }
        return {"type": self.type}


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

    @property
    def has_tensors(self) -> bool:
        return any(f.type == "tensor" for f in self.fields)

    @classmethod
    def from_mlflow_inputs(cls, inputs: str | Sequence[dict[str, Any]]) -> FeatureSchema:
        """From the ``inputs`` member of an MLflow signature: named columns (scalars, ``Array``,
        ``Object``) or named tensors."""
        specs = json.loads(inputs) if isinstance(inputs, str) else list(inputs)
        fields: list[Field] = []
        for i, spec in enumerate(specs):
            name = spec.get("name")
            if not name:
                kind = "tensor" if spec.get("type") == "tensor" else "column"
                raise SchemaError(
                    [
                        f"signature input {i} ({kind}) has no name: "
                        "modelward needs named inputs (columns or tensors)"
                    ]
                )
            fields.append(_field(str(name), spec, bool(spec.get("required", True)), str(name)))
        return cls(tuple(fields))

    def to_dict(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.fields]

    def model_input(self, frame: pd.DataFrame) -> Any:
        """``frame`` as MLflow's pyfunc takes input of this signature: the schema's columns, or for a
        tensor signature a dict of arrays, one per named input, rows first."""
        selected = self.select(frame) if self.fields else frame
        if not self.has_tensors:
            return selected
        import numpy as np

        out: dict[str, Any] = {}
        for f in self.fields:
            values = selected[f.name].tolist()
            if f.type != "tensor":
                out[f.name] = np.asarray(values)
                continue
            # parquet gives nested lists as arrays of arrays: as lists, NumPy stacks them
            rows = [np.asarray(v.tolist() if hasattr(v, "tolist") else v, dtype=f.dtype) for v in values]
            empty = np.empty([0, *(max(d, 0) for d in f.shape or ())], dtype=f.dtype)
            out[f.name] = np.stack(rows) if rows else empty
        return out

    def nested_names(self) -> tuple[str, ...]:
        """The fields whose values are lists or objects (arrays, objects, tensors)."""
        return tuple(f.name for f in self.fields if f.nested)

    def select(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The schema's columns of ``frame`` in schema order; extra columns (ids, the target) are left out.

        A missing required column is an error; a missing optional one is filled with nulls.
        """
        missing = [f.name for f in self.fields if f.name not in frame.columns and f.required]
        if missing:
            raise SchemaError([f"missing column '{name}'" for name in missing])
        out = frame.reindex(columns=list(self.names))
        return out


def _field(name: str, spec: Any, required: bool, where: str) -> Field:
    """A field from MLflow's JSON form of one type; ``where`` names it in messages (``ctx.tags``)."""
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind in _KNOWN:
        return Field(name, cast("FieldType", kind), required)
    if kind == "array":
        return Field(name, "array", required, items=_field("", spec.get("items"), True, f"{where}[]"))
    if kind == "object":
        props = spec.get("properties")
        if not isinstance(props, dict) or not props:
            raise SchemaError([f"signature input '{where}' is an object without properties"])
        members = tuple(
            _field(str(k), v, bool(v.get("required", True)) if isinstance(v, dict) else True, f"{where}.{k}")
            for k, v in props.items()
        )
        return Field(name, "object", required, properties=members)
    if kind == "tensor":
        tensor = spec.get("tensor-spec") or {}
        dtype, shape = str(tensor.get("dtype")), tensor.get("shape")
        element = _TENSOR_DTYPES.get(dtype)
        if element is None:
            raise SchemaError([f"signature input '{where}' is a tensor of unsupported dtype {dtype!r}"])
        if not isinstance(shape, list) or not shape or not all(isinstance(d, int) for d in shape):
            raise SchemaError([f"signature input '{where}' is a tensor without a shape"])
        if shape[0] != -1:
            raise SchemaError(
                [
                    f"signature input '{where}' is a tensor of shape {shape}: "
                    "its first dimension must be -1 (the rows)"
                ]
            )
        return Field(
            name,
            "tensor",
            required,
            items=Field("", cast("FieldType", element)),
            shape=tuple(shape[1:]),
            dtype=dtype,
        )
    shown = kind if kind is not None else spec
    raise SchemaError([f"signature input '{where}' has unsupported type {shown!r}"])
