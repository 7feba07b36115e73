"""Many single-record requests at once -> one column per field; private.

A busy server receives many ``{"features": {...}}`` bodies in the same turn of its event loop. Each
would take :func:`modelward.validation._request._single` alone; :func:`records_columns` checks them
all together instead: one list per field, one type check per field (a set of the values' types),
one ``np.array`` per field. It takes the records ``_single`` takes (every required field present
with a plain value, nothing else: the rules of :mod:`modelward.validation._plain`) and gives the
same values and dtypes, so a request is answered the same whichever way it went.

Each record stands alone: one that is not plain (a wrong type, a value out of range, a missing or
unknown field) is left out and named, for the caller to validate it on its own (which words its
problems); the others' columns are still made. One client's bad value never costs its neighbours
their answers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelward.schema import FeatureSchema
from modelward.validation._columns import _MISSING, Column
from modelward.validation._plain import build_column, fill, plain_column, plan

__all__ = ["records_columns", "simple_schema"]

_NOT_A_RECORD: dict[str, Any] = {}  # stands in for a record of the wrong shape: every field missing


def simple_schema(schema: FeatureSchema) -> bool:
    """True when single records of this schema can be checked together (every field required, of a
    number, boolean or text type)."""
    return plan(schema) is not None


def records_columns(records: list[Any], schema: FeatureSchema) -> tuple[dict[str, Column], list[int]] | None:
    """The columns of the plain records among ``records`` (dicts of field -> value), and the
    positions of the others, in order (validate each of those with ``validate_request``). None when
    the schema's records cannot be checked together, or there are none."""
    fields = plan(schema)
    if fields is None or not records:
        return None
    width = len(fields)
    odd: set[int] = set()
    for i, rec in enumerate(records):
        if type(rec) is not dict or len(rec) != width:
            odd.add(i)
    rows = [_NOT_A_RECORD if i in odd else rec for i, rec in enumerate(records)] if odd else records
    columns: dict[str, Column] = {}
    for name, kind, rule in fields:
        values = [rec.get(name, _MISSING) for rec in rows]
        array = plain_column(kind, values)
        if array is None:  # rare: find the records at fault, value by value
            stand_in = fill(kind)
            for i, v in enumerate(values):
                if not rule(v):
                    odd.add(i)
                    values[i] = stand_in
            array = build_column(kind, values)
        columns[name] = array
    if not odd:
        return columns, []
    keep = np.array([i for i in range(len(records)) if i not in odd], dtype=np.intp)
    return {name: column[keep] for name, column in columns.items()}, sorted(odd)
