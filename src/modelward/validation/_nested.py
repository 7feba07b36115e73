"""Values of array, object and tensor fields (MLflow's ``Array``, ``Object`` and tensor types); private.

Each row's value is checked against the field's type, element by element, to the depth the schema
declares (data nested deeper than the schema fails at its first element, so a client's deeply
nested value costs no recursion). Problems name the element: ``item 3: expected an integer``,
``member 'tags': ...``. A value may also arrive as its JSON text (a string holding ``[1, 2]``): that
is how an Open Inference Protocol ``BYTES`` tensor or a CSV cell carries a list, so every path
takes it.

Arrays become lists, objects dicts, tensors NumPy arrays of the declared dtype and row shape.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Final

import numpy as np
import orjson

from modelward.schema import Field
from modelward.validation._columns import _CONVERT, _Bad, _describe

__all__ = ["MAX_ITEMS", "nested_converter"]

MAX_ITEMS: Final = 100_000  # elements of one value, all levels together
Convert = Callable[[object], object]


def _from_text(v: object) -> object:
    if isinstance(v, str | bytes):
        try:
            return orjson.loads(v)
        except orjson.JSONDecodeError:
            raise _Bad(f"expected a list or an object (or its JSON text), got {_describe(v)}") from None
    return v


@lru_cache(maxsize=256)
def nested_converter(field: Field) -> Convert:
    """The check-and-convert function of one row's value of an array, object or tensor field."""
    inner = _converter(field)

    def convert(v: object) -> object:
        budget = [MAX_ITEMS]
        return inner(_from_text(v), budget)

    return convert


def _scalar(field: Field) -> Callable[[object, list[int]], object]:
    base = _CONVERT[field.type]

    def convert(v: object, budget: list[int]) -> object:
        if v is None:
            raise _Bad("null is not allowed")
        return base(v)

    return convert


def _spend(budget: list[int], n: int) -> None:
    budget[0] -= n
    if budget[0] < 0:
        raise _Bad(f"more than {MAX_ITEMS} elements in one value")


def _converter(field: Field) -> Callable[[object, list[int]], object]:
    if field.type == "array" and field.items is not None:
        return _array(field.items)
    if field.type == "object":
        return _object(field)
    if field.type == "tensor":
        return _tensor(field)
    return _scalar(field)


def _array(items: Field) -> Callable[[object, list[int]], object]:
    element = _converter(items)

    def convert(v: object, budget: list[int]) -> object:
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if not isinstance(v, list | tuple):
            raise _Bad(f"expected a list of {items.describe()} values, got {_describe(v)}")
        _spend(budget, len(v))
        out: list[object] = []
        for i, x in enumerate(v):
            try:
                out.append(element(x, budget))
            except _Bad as exc:
                raise _Bad(f"item {i}: {exc}") from None
        return out

    return convert


def _object(field: Field) -> Callable[[object, list[int]], object]:
    members = {p.name: (p, _converter(p)) for p in field.properties}

    def convert(v: object, budget: list[int]) -> object:
        if not isinstance(v, dict):
            raise _Bad(f"expected an object with {', '.join(repr(m) for m in members)}, got {_describe(v)}")
        _spend(budget, len(v))
        unknown = [str(k) for k in v if k not in members]
        if unknown:
            raise _Bad(f"unknown member {unknown[0]!r} (the object may have: {', '.join(members)})")
        out: dict[str, object] = {}
        for name, (prop, check) in members.items():
            x = v.get(name)
            if x is None:
                if prop.required:
                    raise _Bad(f"member '{name}' is missing")
                continue
            try:
                out[name] = check(x, budget)
            except _Bad as exc:
                raise _Bad(f"member '{name}': {exc}") from None
        return out

    return convert


def _tensor(field: Field) -> Callable[[object, list[int]], object]:
    shape = field.shape or ()
    element = _converter(field.items) if field.items is not None else _scalar(Field("", "double"))
    dtype = np.dtype(field.dtype or "float64")
    wanted = _shape_text(shape)

    def walk(x: object, depth: int, sizes: list[int], out: list[object], budget: list[int]) -> None:
        if depth == len(shape):
            out.append(element(x, budget))
            return
        if isinstance(x, np.ndarray):
            x = x.tolist()
        if not isinstance(x, list | tuple):
            raise _Bad(f"expected a tensor of shape {wanted}, got {_describe(x)} at depth {depth}")
        if len(sizes) == depth:
            sizes.append(len(x))
        if len(x) != sizes[depth] or (shape[depth] >= 0 and len(x) != shape[depth]):
            raise _Bad(f"expected a tensor of shape {wanted}, a list at depth {depth} has {len(x)} items")
        _spend(budget, len(x))
        for y in x:
            walk(y, depth + 1, sizes, out, budget)

    def convert(v: object, budget: list[int]) -> object:
        sizes: list[int] = []
        flat: list[object] = []
        walk(v, 0, sizes, flat, budget)
        try:
            array = np.array(flat, dtype=dtype)
        except (TypeError, ValueError, OverflowError) as exc:
            raise _Bad(f"cannot hold the values as {dtype}: {exc}") from None
        return array.reshape([*sizes, *([0] * (len(shape) - len(sizes)))])

    return convert


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join("*" if d < 0 else str(d) for d in shape) + "]"
