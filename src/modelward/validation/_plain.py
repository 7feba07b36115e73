"""Which values a field takes without a closer look: the type rules of the fast paths; private.

A value is *plain* for a field when it already has exactly the type the field wants, within range:

- ``double``/``float``: a finite float, or an int of at most 2**53 in magnitude (exact as a double);
- ``long``/``integer``: an int within the signed 64/32-bit range (not a bool);
- ``boolean``: a bool; ``string``/``binary``: a str of at most ``MAX_STRING_LENGTH`` characters.

The one-record path (:func:`modelward.validation._request._single`) and the path that checks many
records at once (:func:`modelward.validation.records_columns`) both decide with these rules, so a
record is answered the same whichever way it went; any other value takes the general path, which
accepts more (floats holding integers, nulls of optional fields) and names every problem.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from modelward.schema import FeatureSchema
from modelward.validation._columns import MAX_STRING_LENGTH, Column

__all__ = ["Plan", "build_column", "fill", "plain_column", "plan"]

_EXACT: Final = 2**53  # ints up to this magnitude are exact as doubles
_FLOAT_TYPES: Final = ("double", "float")
_INT_BITS: Final = {"long": 63, "integer": 31}
# Stands in for a value that is not plain while the other records' columns are built.
_FILL: Final[dict[str, object]] = {"f": 0.0, "i31": 0, "i63": 0, "b": False, "s": ""}


def _float(v: Any) -> bool:
    t = type(v)
    return (t is float and math.isfinite(v)) or (t is int and -_EXACT <= v <= _EXACT)


def _int(bits: int) -> Callable[[Any], bool]:
    low, high = -(2**bits), 2**bits

    def check(v: Any) -> bool:
        return type(v) is int and low <= v < high

    return check


def _bool(v: Any) -> bool:
    return type(v) is bool


def _str(v: Any) -> bool:
    return type(v) is str and len(v) <= MAX_STRING_LENGTH


# (field name, kind, the rule) per field: kind "f" float64, "i<bits>" int64, "b" bool, "s" text.
Plan = tuple[tuple[str, str, Callable[[Any], bool]], ...]
_RULES: Final = {"f": _float, "i31": _int(31), "i63": _int(63), "b": _bool, "s": _str}
_PLANS: dict[int, tuple[FeatureSchema, Plan | None]] = {}


def plan(schema: FeatureSchema) -> Plan | None:
    """The fields' kinds and rules, or None when a field needs the general path (date-times,
    optional fields)."""
    # By identity: hashing a schema costs as much as validating a field; the entry keeps the schema
    # alive, so its id cannot be reused by another object while cached.
    entry = _PLANS.get(id(schema))
    if entry is not None and entry[0] is schema:
        return entry[1]
    if len(_PLANS) > 256:
        _PLANS.clear()
    made = _make_plan(schema)
    _PLANS[id(schema)] = (schema, made)
    return made


def _make_plan(schema: FeatureSchema) -> Plan | None:
    out: list[tuple[str, str, Callable[[Any], bool]]] = []
    for f in schema.fields:
        if not f.required:
            return None
        if f.type in _FLOAT_TYPES:
            kind = "f"
        elif f.type in _INT_BITS:
            kind = f"i{_INT_BITS[f.type]}"
        elif f.type == "boolean":
            kind = "b"
        elif f.type in ("string", "binary"):
            kind = "s"
        else:
            return None
        out.append((f.name, kind, _RULES[kind]))
    return tuple(out)


def build_column(kind: str, values: list[Any]) -> Column:
    """The array of plain values of one kind."""
    if kind == "f":
        return np.array(values, dtype=np.float64)
    if kind[0] == "i":
        return np.array(values, dtype=np.int64)
    if kind == "b":
        return np.array(values, dtype=bool)
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def plain_column(kind: str, values: list[Any]) -> Column | None:
    """The array of ``values`` when a check of the whole column shows every one is plain, else None
    (then a value may still be plain: ask the rule of each). One type check and one array per field."""
    types = set(map(type, values))
    if kind == "f":
        if not types <= {float, int}:
            return None
        try:
            array = np.array(values, dtype=np.float64)
        except OverflowError:  # an int beyond the range of a double
            return None
        # Strictly within 2**53: an int just beyond it rounds onto it. The edge goes value by value.
        return array if (np.abs(array) < _EXACT).all() else None
    if kind[0] == "i":
        if types != {int}:
            return None
        try:
            array = np.array(values, dtype=np.int64)
        except OverflowError:  # beyond 64 bits
            return None
        bits = int(kind[1:])
        return array if array.min() >= -(2**bits) and array.max() < 2**bits else None
    if kind == "b":
        return np.array(values, dtype=bool) if types == {bool} else None
    if types != {str} or max(map(len, values)) > MAX_STRING_LENGTH:
        return None
    return build_column(kind, values)


def fill(kind: str) -> object:
    """A plain value of ``kind``, standing in for one that is not plain."""
    return _FILL[kind]
