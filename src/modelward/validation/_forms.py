"""The body forms a prediction request may take, brought to the three that validation reads; private.

modelward's own forms are ``features`` (one record), ``instances`` (records) and ``inputs`` (an
object of columns). Clients written for other servers send others, taken here as well:

- a positional record: ``{"features": [42, 3, 1000.0]}``, the values in the signature's column
  order (also a row of ``instances`` or of ``inputs``, as a list);
- MLflow's scoring-server forms: ``dataframe_split`` (``{"columns": [...], "data": [[...], ...]}``;
  without ``columns``, the signature's order), ``dataframe_records`` (a list of records) and
  ``inputs`` as a list (of records or of positional rows);
- ``instances`` of positional rows (TensorFlow Serving's row form).

Each becomes records keyed by field name (or stays columns), so the same checks and the same
problem messages follow whatever the form.
"""

from __future__ import annotations

from typing import Any, Final, cast

from modelward.schema import FeatureSchema
from modelward.validation._columns import _describe, _Problems

__all__ = ["DATA_MEMBERS", "normalise"]

# Every member that carries the data; a body has exactly one.
DATA_MEMBERS: Final = ("features", "instances", "inputs", "dataframe_split", "dataframe_records")
_SHOW: Final = 8  # field names listed in a message about positional values


def _order(schema: FeatureSchema) -> str:
    names = schema.names
    shown = ", ".join(names[:_SHOW]) + (f", ... ({len(names)} in all)" if len(names) > _SHOW else "")
    return f"the signature's order: {shown}"


def _positional(row: list[Any], schema: FeatureSchema, probs: _Problems, i: int | None) -> Any:
    """One row of values in column order -> a record; a row of the wrong length is a problem."""
    names = schema.names
    if len(row) != len(names):
        where = "'features' as a list has " if i is None else f"row {i} has "
        probs.add(f"{where}{len(row)} values for {len(names)} fields ({_order(schema)})", row=i)
        return None
    return dict(zip(names, row, strict=True))


def _rows(rows: list[Any], schema: FeatureSchema, probs: _Problems) -> list[Any]:
    """Records as they are; positional rows (lists) as records of the signature's fields."""
    if not any(type(r) is list for r in rows):
        return rows
    out = [_positional(r, schema, probs, i) if type(r) is list else r for i, r in enumerate(rows)]
    probs.check()
    return out


def _split(data: object, schema: FeatureSchema, probs: _Problems) -> list[Any]:
    """``dataframe_split`` -> records."""
    if not isinstance(data, dict):
        probs.add(f"'dataframe_split' must be an object with 'columns' and 'data', got {_describe(data)}")
        probs.check()
    data = cast("dict[str, Any]", data)
    unknown = sorted(set(data) - {"columns", "data", "index"})
    if unknown:
        probs.add(
            f"'dataframe_split' has unknown member(s) {', '.join(map(repr, unknown))} "
            "(it may have: columns, data, index)"
        )
    columns, rows = data.get("columns"), data.get("data")
    if columns is None:
        columns = list(schema.names)
    elif not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        probs.add(f"'dataframe_split.columns' must be a list of field names, got {_describe(columns)}")
    elif len(set(columns)) != len(columns):
        probs.add("'dataframe_split.columns' names a field twice")
    if not isinstance(rows, list):
        probs.add(f"'dataframe_split.data' must be a list of rows (lists of values), got {_describe(rows)}")
    probs.check()
    rows, columns = cast("list[Any]", rows), cast("list[str]", columns)
    records: list[Any] = []
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            probs.add(
                f"row {i} of 'dataframe_split.data' must be a list of values, got {_describe(row)}", row=i
            )
        elif len(row) != len(columns):
            probs.add(
                f"row {i} of 'dataframe_split.data' has {len(row)} values for {len(columns)} columns", row=i
            )
        else:
            records.append(dict(zip(columns, row, strict=True)))
    probs.check()
    return records


def normalise(form: str, data: Any, schema: FeatureSchema, probs: _Problems) -> tuple[str, Any]:
    """``(form, data)`` in one of modelward's three forms: ``features`` (a record), ``instances``
    (records) or ``inputs`` (an object of columns); problems of shape are raised here."""
    if form == "features" and type(data) is list:
        probs.form = "features"
        record = _positional(data, schema, probs, None)
        probs.check()
        return "features", record
    if form == "dataframe_records":
        form = "instances"
    elif form == "dataframe_split":
        return "instances", _split(data, schema, probs)
    elif form == "inputs" and type(data) is list:
        form = "instances"
    if form == "instances" and type(data) is list:
        return "instances", _rows(data, schema, probs)
    return form, data
