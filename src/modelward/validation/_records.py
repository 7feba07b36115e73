"""Many single-record requests at once -> one column per field; private.

A busy server receives many ``{"features": {...}}`` bodies in the same turn of its event loop. Each
would take :func:`modelward.validation._request._single` alone; :func:`records_columns` checks them
all together instead: one list per field, one type check per field (a set of the values' types),
one ``np.array`` per field. It accepts exactly the records ``_single`` accepts (every required
field present with exactly the wanted type, nothing else) and gives the same values and dtypes, so
a request is answered the same whichever way it went; when any record is not of that kind it
returns None and the caller validates each record on its own (which names the problems).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelward.schema import FeatureSchema
from modelward.validation._columns import _MISSING, MAX_STRING_LENGTH, Column
from modelward.validation._request import _plan

__all__ = ["records_columns", "simple_schema"]

_EXACT = float(2**53)  # _single takes ints as doubles while they are exact: |v| <= 2**53


def simple_schema(schema: FeatureSchema) -> bool:
    """True when single records of this schema can be checked together (every field required, of a
    number, boolean or text type)."""
    return _plan(schema) is not None


def records_columns(records: list[Any], schema: FeatureSchema) -> dict[str, Column] | None:
    """The columns of ``records`` (dicts of field -> value), or None when one of them is not a plain
    well-typed record (then validate each with ``validate_request``)."""
    plan = _plan(schema)
    if plan is None or not records:
        return None
    width = len(plan)
    for rec in records:
        if type(rec) is not dict or len(rec) != width:
            return None
    columns: dict[str, Column] = {}
    for name, kind in plan:
        values = [rec.get(name, _MISSING) for rec in records]
        types = set(map(type, values))
        if kind == "f":
            if not types <= {float, int}:
                return None
            array = np.array(values, dtype=np.float64)
            # Non-finite floats are refused; ints must be exact as doubles. Values of exactly 2**53
            # in magnitude (or ints rounding to it) go the careful way, record by record.
            if not (np.abs(array) < _EXACT).all():
                return None
        elif kind[0] == "i":
            if types != {int}:
                return None
            bits = int(kind[1:])
            try:
                array = np.array(values, dtype=np.int64)
            except OverflowError:
                return None
            if array.min() < -(2**bits) or array.max() >= 2**bits:
                return None
        elif kind == "b":
            if types != {bool}:
                return None
            array = np.array(values, dtype=bool)
        else:
            if types != {str} or max(map(len, values)) > MAX_STRING_LENGTH:
                return None
            array = np.empty(len(values), dtype=object)
            array[:] = values
        columns[name] = array
    return columns
