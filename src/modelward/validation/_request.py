"""Request bodies (features / instances / inputs) -> a validated :class:`Batch`; private.

A single record whose values all have exactly the types the schema wants (the common case of an
online prediction) takes :func:`_single`, which builds the columns in a few microseconds; anything
else, and every invalid body, takes the general path, which names every problem.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from modelward.schema import FeatureSchema
from modelward.validation._columns import (
    _ID_RULE,
    _MISSING,
    MAX_REQUEST_ID_LENGTH,
    Batch,
    Column,
    FieldProblem,
    RequestInvalid,
    _describe,
    _prepare_columns,
    _preview,
    _Problems,
    _unknown,
    _validate_fields,
)
from modelward.validation._forms import DATA_MEMBERS, normalise
from modelward.validation._plain import build_column, plan

_MEMBERS = (*DATA_MEMBERS, "key", "request_id", "request_ids", "params")


def _records(
    records: list[Any], schema: FeatureSchema, probs: _Problems, extra: str | None = None
) -> dict[str, list[object]]:
    """Records to columns: one pass over the records for their shape, then one list per field (and
    per ``extra`` member, a routing key field that is not a feature)."""
    known = set(schema.names) | ({extra} if extra else set())
    first_seen: dict[str, int] = {}
    invalid = False  # rows that are not objects: their fields are not checked
    for i, rec in enumerate(records):
        if type(rec) is not dict:
            probs.add(f"row {i} must be an object mapping field names to values, got {_describe(rec)}", row=i)
            invalid = True
        elif not rec.keys() <= known:
            for name in sorted(rec.keys() - known):
                first_seen.setdefault(name, i)
    for name, row in first_seen.items():
        probs.add(_unknown(name, schema, None if probs.form == "features" else row), name, row)
    if invalid:
        probs.check()
    names = [*schema.names, extra] if extra and extra not in schema.names else schema.names
    return {name: [rec.get(name, _MISSING) for rec in records] for name in names}


def _row_keys(values: Sequence[object], field: str, probs: _Problems) -> tuple[str | None, ...]:
    """Routing keys of each row: strings and integers as text; missing or null: None (random arm)."""
    keys: list[str | None] = []
    for i, v in enumerate(values):
        if v is _MISSING or v is None or (isinstance(v, float) and v != v):
            keys.append(None)
        elif isinstance(v, str) and len(v) <= 256:
            keys.append(v)
        elif isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_):
            keys.append(str(int(v)))
        elif isinstance(v, float | np.floating) and math.isfinite(v):
            keys.append(str(int(v)) if float(v).is_integer() else repr(float(v)))
        else:
            probs.at(field, i, f"a routing key must be a string or a number, got {_describe(v)}")
            keys.append(None)
    return tuple(keys)


def _valid_id(v: object) -> bool:
    return isinstance(v, str) and 0 < len(v) <= MAX_REQUEST_ID_LENGTH


def _request_ids(ids: object, n: int, probs: _Problems) -> tuple[str, ...] | None:
    if not isinstance(ids, list) or len(ids) != n:
        if ids is not None:
            got = f"{len(ids)} for {n} rows" if isinstance(ids, list) else _describe(ids)
            probs.add(f"'request_ids' must be a list of strings, one per row, got {got}")
        return None
    seen: dict[str, int] = {}
    for i, v in enumerate(ids):
        if not _valid_id(v):
            probs.add(f"'request_ids' entry {i} {_ID_RULE}, got {_describe(v)}", row=i)
        elif v in seen:
            probs.add(f"'request_ids' has {_preview(v)} twice (rows {seen[v]} and {i})", row=i)
        else:
            seen[v] = i
    return tuple(seen) if len(seen) == n else None


_SINGLE_MEMBERS = frozenset({"features", "request_id", "key"})
_SHOW_UNKNOWN = 10  # unknown top-level members named in the problem


def _bare_form(payload: dict[str, Any], schema: FeatureSchema) -> str | None:
    """How to wrap a body whose members are the model's fields themselves (a record or columns sent
    without ``features`` / ``inputs``), or None when it does not look like one."""
    fields = [m for m in payload if m in schema.names]
    if not fields:
        return None
    if all(isinstance(payload[m], list) for m in fields):
        return 'it looks like bare columns: wrap them as {"inputs": {...}}'
    return 'it looks like a bare record: wrap it as {"features": {...}}'


def _single(payload: dict[str, Any], schema: FeatureSchema, key_field: str | None) -> Batch | None:
    """One record with every value of exactly the wanted type, or None (take the general path)."""
    if not payload.keys() <= _SINGLE_MEMBERS:
        return None
    rec = payload.get("features")
    request_id, key = payload.get("request_id"), payload.get("key")
    if type(rec) is not dict or (request_id is not None and not _valid_id(request_id)):
        return None
    if key is not None and type(key) not in (str, int):
        return None
    fields = plan(schema)
    if fields is None:
        return None
    extra = key_field is not None and key_field not in schema.names and key_field in rec
    if len(rec) != len(fields) + extra:
        return None
    by_kind: dict[str, list[Any]] = {"f": [], "i": [], "b": [], "s": []}  # the values of each kind
    where: list[tuple[str, str, int]] = []
    for name, kind, rule in fields:
        v = rec.get(name, _MISSING)
        if not rule(v):
            return None
        group = by_kind[kind[0]]
        where.append((name, kind[0], len(group)))
        group.append(v)
    typed = {kind: build_column(kind, values) for kind, values in by_kind.items() if values}
    columns = {name: typed[kind][i : i + 1] for name, kind, i in where}
    row_keys = None
    if key_field is not None and key is None:
        raw = rec.get(key_field)
        if raw is not None:
            if type(raw) not in (str, int, float) or (type(raw) is str and len(raw) > 256):
                return None
            row_keys = _row_keys([raw], key_field, _Problems())
    return Batch(columns, 1, None, request_id, None if key is None else str(key), row_keys)


def validate_request(
    payload: object, schema: FeatureSchema, *, max_rows: int = 10_000, key_field: str | None = None
) -> Batch:
    """Validate a parsed prediction request body; raises :class:`RequestInvalid` listing every problem.

    ``key_field`` names a per-row routing key (a deployment's ``key``): a feature, or a member each
    record (or column set) may carry besides the features; its values come back as ``row_keys``.
    """
    if not isinstance(payload, dict):
        hint = '; for a list of records, send {"instances": [...]}' if isinstance(payload, list) else ""
        message = f"the body must be a JSON object, got {_describe(payload)}{hint}"
        raise RequestInvalid([FieldProblem(message)])
    single = _single(payload, schema, key_field)
    if single is not None:
        return single
    probs = _Problems()
    unknown = [m for m in payload if m not in _MEMBERS]
    present = [m for m in DATA_MEMBERS if m in payload]
    if len(present) != 1:
        has = " and ".join(f"'{m}'" for m in present) or "none"
        message = (
            "the body must have exactly one of 'features' (one record), 'instances' (a list of records), "
            "'inputs' (an object of columns), 'dataframe_split' or 'dataframe_records' (MLflow's forms); "
            f"it has {has}"
        )
        bare = _bare_form(payload, schema) if not present else None
        if bare is not None:  # the one thing to change: its members are the features, unwrapped
            raise RequestInvalid([FieldProblem(f"{message}; {bare}")])
        probs.add(message)
    if unknown:
        names = ", ".join(f"'{m}'" for m in unknown[:_SHOW_UNKNOWN])
        more = f" and {len(unknown) - _SHOW_UNKNOWN} more" if len(unknown) > _SHOW_UNKNOWN else ""
        member = "member" if len(unknown) == 1 else "members"
        probs.add(f"unknown {member} {names}{more} (the body may have: {', '.join(_MEMBERS)})")
    if len(present) != 1:
        probs.check()
    member = present[0]
    form, data = normalise(member, payload[member], schema, probs)
    if not isinstance(data, list if form == "instances" else dict):
        shape = "a list of objects" if form == "instances" else "an object keyed by field name"
        if member == "features":
            shape += " (or a list of values in the signature's order)"
        elif member != "dataframe_records":
            shape += " (or a list of records)"
        probs.add(f"'{member}' must be {shape}, got {_describe(data)}")
        probs.check()
    columns: Mapping[str, list[object] | Column]
    extra = key_field if key_field is not None and key_field not in schema.names else None
    raw_keys: Sequence[object] | None = None
    if form == "inputs":
        if extra is not None and extra in data:
            data = dict(data)
            raw = data.pop(extra)
            raw_keys = raw if isinstance(raw, list) else None
            if raw_keys is None:
                probs.at(extra, None, f"expected a list of routing keys, got {_describe(raw)}")
        columns, n = _prepare_columns(data, schema, probs, max_rows, json=True)
        if raw_keys is not None and len(raw_keys) != n:
            probs.add(f"field '{extra}' has {len(raw_keys)} values, but the other fields have {n}", extra)
            raw_keys = None
    else:
        records = [data] if form == "features" else data
        if (n := len(records)) > max_rows:
            raise RequestInvalid(
                [FieldProblem(f"{n} rows, more than the limit of {max_rows}")], kind="too-large"
            )
        if n == 0:
            probs.add(f"no rows: '{member}' is empty")
            probs.check()
        probs.form = form
        record_columns = _records(records, schema, probs, extra)
        if extra is not None:
            raw_keys = record_columns.pop(extra)
        columns = record_columns
    request_ids = _request_ids(payload.get("request_ids"), n, probs)
    request_id, key = payload.get("request_id"), payload.get("key")
    if request_id is not None and not _valid_id(request_id):
        probs.add(f"'request_id' {_ID_RULE}, got {_describe(request_id)}")
    if key is not None and (isinstance(key, bool) or not isinstance(key, str | int)):
        probs.add(f"'key' must be a string or an integer, got {_describe(key)}")
    if key_field is not None and extra is None:
        raw_keys = cast("Sequence[object] | None", columns.get(key_field))
    row_keys = _row_keys(raw_keys, key_field or "", probs) if raw_keys is not None else None
    out = _validate_fields(columns, n, schema, probs)
    if row_keys is not None and all(k is None for k in row_keys):
        row_keys = None
    return Batch(out, n, request_ids, request_id, None if key is None else str(key), row_keys)
