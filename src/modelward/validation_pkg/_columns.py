"""Validate prediction inputs against a model's feature schema; pure (no I/O, web framework or MLflow).

:func:`validate_request` turns a parsed request body into a :class:`Batch` of typed numpy columns or
raises :class:`RequestInvalid` naming the field and row of every problem. :func:`validate_columns`, the
core, also serves Open Inference Protocol tensors and batch files. Well-typed columns take a fast path
(one type pass, one ``np.array``); per-value checks run only to word the problems.
"""

from __future__ import annotations

import difflib
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np
import numpy.typing as npt
import orjson

from modelward.errors import SchemaError
from modelward.schema import FeatureSchema, Field

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MAX_PROBLEMS",
    "MAX_REQUEST_ID_LENGTH",
    "MAX_STRING_LENGTH",
    "Batch",
    "FieldProblem",
    "RequestInvalid",
    "parse_json",
    "validate_columns",
    "validate_request",
]

MAX_PROBLEMS: Final = 50
MAX_STRING_LENGTH: Final = 10_000
MAX_REQUEST_ID_LENGTH: Final = 128
_PREVIEW: Final = 40
_DATA_MEMBERS: Final = ("features", "instances", "inputs")
_MEMBERS: Final = (*_DATA_MEMBERS, "key", "request_id", "request_ids", "params")
_TITLE: Final = "invalid prediction request"
_CONSTANTS: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_ID_RULE: Final = f"must be a non-empty string of at most {MAX_REQUEST_ID_LENGTH} characters"
_BITS: Final = {"integer": 32, "long": 64}
_JSON_TYPES: Final = (
    (bool | np.bool_, "a boolean"),
    (int | np.integer, "an integer"),
    (float | np.floating, "a number"),
    (str, "a string"),
    (list | tuple, "an array"),
    (dict, "an object"),
)
_MISSING: Final = object()  # the record has no such member
Column = npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One problem with the input; ``message`` already names the row and field."""

    message: str
    field: str | None = None
    row: int | None = None

    def to_dict(self) -> dict[str, object]:
        members = (("message", self.message), ("field", self.field), ("row", self.row))
        return {name: value for name, value in members if value is not None}


class RequestInvalid(SchemaError):
    """Input that does not fit the schema: ``field_problems`` say where, ``status`` is the HTTP status."""

    def __init__(self, problems: Sequence[FieldProblem], *, status: int = 422, title: str = _TITLE) -> None:
        self.field_problems, self.status, self.title = tuple(problems), status, title
        # How many problems were found in all; field_problems keeps the first MAX_PROBLEMS of them.
        self.total = len(self.field_problems)
        super().__init__([p.message for p in self.field_problems])

    def __reduce__(self) -> tuple[Any, ...]:  # keyword-only arguments: pickle needs the state apart
        return (type(self), (self.field_problems,), {"status": self.status, "title": self.title})


@dataclass(frozen=True, slots=True, eq=False)
class Batch:
    """Validated input: one array per schema field, in schema order, each ``n_rows`` long."""

    columns: dict[str, Column]
    n_rows: int
    request_ids: tuple[str, ...] | None = None
    request_id: str | None = None
    key: str | None = None
    row_keys: tuple[str | None, ...] | None = None  # per-row routing keys, from the deployment's key field

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        data = {name: pd.Series(col, dtype=col.dtype, copy=False) for name, col in self.columns.items()}
        return pd.DataFrame(data, copy=False)


class _Bad(Exception):  # a value failed a check; the message words the problem, not naming row or field
    pass


class _Problems:  # keeps the first MAX_PROBLEMS problems and counts the rest
    def __init__(self) -> None:
        self.items: list[FieldProblem] = []
        self.count = 0
        self.form = "columns"  # or "instances", or "features" (one record: messages name no row)

    def add(self, message: str, field: str | None = None, row: int | None = None) -> None:
        self.count += 1
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(FieldProblem(message, field, row))

    def at(self, field: str, row: int | None, detail: str) -> None:
        where = f"row {row}, " if row is not None and self.form != "features" else ""
        self.add(f"{where}field '{field}': {detail}", field, row)

    def check(self) -> None:
        if self.count:
            extra = self.count - len(self.items)
            error = RequestInvalid(self.items + ([FieldProblem(f"... and {extra} more")] if extra else []))
            error.total = self.count
            raise error


def _preview(v: object) -> str:
    if isinstance(v, str):
        return json.dumps(v[:_PREVIEW], ensure_ascii=False) + ("..." if len(v) > _PREVIEW else "")
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, float | np.floating) and not math.isfinite(v):
        return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
    try:
        text = orjson.dumps(v, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError; ints beyond 64 bits
        try:
            text = repr(v)
        except RecursionError:  # a value nested hundreds deep: say so rather than fail
            return "a deeply nested value"
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 3] + "..."


def _describe(v: object) -> str:  # the value's JSON type and (shortened) text: 'a string ("abc")'
    if v is None:
        return "null"
    return f"{next((t for c, t in _JSON_TYPES if isinstance(v, c)), type(v).__name__)} ({_preview(v)})"


def _unknown(name: str, schema: FeatureSchema, row: int | None = None) -> str:
    hints = [f"first in row {row}"] if row is not None else []
    hints += [f"did you mean '{m}'?" for m in difflib.get_close_matches(name, schema.names, n=1)]
    return f"unknown field '{name}'" + (f" ({'; '.join(hints)})" if hints else "")


def _to_number(v: object, bits: int | None = None) -> int | float:  # bits: an integer of that size
    if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.integer | np.floating):
        raise _Bad(f"expected {'a number' if bits is None else 'an integer'}, got {_describe(v)}")
    if isinstance(v, float | np.floating) and not math.isfinite(v):
        raise _Bad(f"{_preview(v)} is not allowed")
    if bits is None:
        try:
            return float(v)
        except OverflowError:  # an integer beyond the range of a double
            raise _Bad(f"{_preview(v)} is out of range for a number") from None
    if isinstance(v, float | np.floating) and not float(v).is_integer():
        raise _Bad(f"expected an integer, got {_preview(v)}")
    if not -(2 ** (bits - 1)) <= int(v) < 2 ** (bits - 1):
        raise _Bad(f"{_preview(v)} is out of range for a {bits}-bit integer")
    return int(v)


def _to_bool(v: object) -> bool:
    if not isinstance(v, bool | np.bool_):
        raise _Bad(f"expected true or false, got {_describe(v)}")
    return bool(v)


def _to_str(v: object) -> str:
    if not isinstance(v, str):
        raise _Bad(f"expected a string, got {_describe(v)}")
    if len(v) > MAX_STRING_LENGTH:
        raise _Bad(f"a string of {len(v)} characters is longer than the limit of {MAX_STRING_LENGTH}")
    return v


def _to_datetime(v: object) -> datetime:
    if isinstance(v, datetime):
        return v
    try:
        return datetime.fromisoformat(_to_str(v))
    except (ValueError, _Bad):
        raise _Bad(f"expected an ISO 8601 date-time string, got {_describe(v)}") from None


_CONVERT: Final[dict[str, Callable[[object], object]]] = {
    "double": _to_number,
    "float": _to_number,
    "long": partial(_to_number, bits=64),
    "integer": partial(_to_number, bits=32),
    "boolean": _to_bool,
    "string": _to_str,
    "binary": lambda v: v if isinstance(v, bytes) else _to_str(v),
    "datetime": _to_datetime,
}


def _nulls(field: Field, n: int) -> Column:
    return np.full(n, math.nan) if field.numeric else np.full(n, None, dtype=object)


def _fast(field: Field, values: list[object]) -> Column | None:
    """The column as an array if every value already has the exact type wanted, else None."""
    t = field.type
    with suppress(OverflowError):  # an integer beyond 64 bits
        if t in ("double", "float") and all(type(v) in (int, float) for v in values):
            arr = np.array(values, dtype=np.float64)
            return arr if np.isfinite(arr).all() else None
        if t in ("long", "integer") and all(type(v) is int for v in values):
            arr = np.array(values, dtype=np.int64)
            if t == "long" or not arr.size or (arr.min() >= -(2**31) and arr.max() < 2**31):
                return arr
        if t == "boolean" and all(type(v) is bool for v in values):
            return np.array(values, dtype=bool)
        strings = cast("list[str]", values)
        if t in ("string", "binary") and all(type(v) is str and len(v) <= MAX_STRING_LENGTH for v in strings):
            return np.array(strings, dtype=object)
    return None


def _slow(field: Field, values: list[object], probs: _Problems) -> Column:
    """Check each value, naming the row of each problem; nulls (NaN too, in text fields) become None/NaN."""
    n, name, t = len(values), field.name, field.type
    if sum(1 for v in values if v is _MISSING) == n:
        if field.required:
            row = 0 if probs.form == "features" else None
            every = " in every row" if row is None and n > 1 else ""
            probs.add(f"missing field '{name}'{every}", name, row)
        return _nulls(field, n)
    convert = _CONVERT[t]
    out: list[object] = [math.nan if field.numeric else None] * n
    clean = True  # no nulls, no problems
    for i, v in enumerate(values):
        if v is None or v is _MISSING or (type(v) is float and v != v and not field.numeric):
            clean = False
            if field.required and v is _MISSING:
                probs.add(f"row {i}: missing field '{name}'", name, i)
            elif field.required:
                probs.at(name, i, "null is not allowed")
            continue
        try:
            out[i] = convert(v)
        except _Bad as exc:
            clean = False
            probs.at(name, i, str(exc))
    # integers and booleans with nulls (or problems) fall back to float64 and object arrays
    dtype = {"long": np.int64, "integer": np.int64, "boolean": np.bool_}.get(t) if clean else None
    return np.array(out, dtype=dtype or (np.float64 if field.numeric else object))


def _report_rows(field: Field, arr: Column, mask: npt.NDArray[np.bool_], probs: _Problems) -> None:
    rows = np.flatnonzero(mask)
    room = max(MAX_PROBLEMS - len(probs.items), 0)
    for i in rows[:room].tolist():
        try:
            _CONVERT[field.type](arr[i].item())
        except _Bad as exc:
            probs.at(field.name, i, str(exc))
    probs.count += max(len(rows) - room, 0)


def _from_numpy(field: Field, arr: Column, probs: _Problems) -> Column:
    """Vectorised checks of a typed numpy column; an array of the wrong kind is one problem."""
    kind, t = arr.dtype.kind, field.type
    integral = t in ("long", "integer")
    if kind == "f" and field.numeric:
        null = np.isnan(arr) & (not field.required)  # an optional field's NaN is a null (pandas' way)
        bound = 2.0 ** (_BITS[t] - 1) if integral else math.inf
        ok = np.isfinite(arr) & (arr >= -bound) & (arr < bound)
        if integral:
            ok &= arr == np.floor(arr)
        if not (ok | null).all():
            _report_rows(field, arr, ~(ok | null), probs)
        return arr.astype(np.int64) if integral and ok.all() else arr.astype(np.float64, copy=False)
    if kind in "iu" and field.numeric:
        if integral and arr.size:
            lo, hi = -(2 ** (_BITS[t] - 1)), 2 ** (_BITS[t] - 1) - 1
            if arr.min() < lo or arr.max() > hi:
                _report_rows(field, arr, (arr < lo) | (arr > hi), probs)
                return arr.astype(np.float64)
        return arr.astype(np.int64 if integral else np.float64, copy=False)
    if (t == "boolean" and kind == "b") or (t == "datetime" and kind == "M"):
        return arr
    probs.at(field.name, None, f"expected {t} values, got an array of {arr.dtype}")
    return _nulls(field, len(arr))


def _validate_fields(
    columns: Mapping[str, list[object] | Column], n: int, schema: FeatureSchema, probs: _Problems
) -> dict[str, Column]:
    out: dict[str, Column] = {}
    for field in schema.fields:
        values = columns.get(field.name)
        if values is None:
            if field.required:
                probs.add(f"missing field '{field.name}'", field.name)
            out[field.name] = _nulls(field, n)
        elif isinstance(values, np.ndarray) and values.dtype.kind not in "OSU":  # text: as a list
            out[field.name] = _from_numpy(field, values, probs)
        else:
            items: list[object] = values.tolist() if isinstance(values, np.ndarray) else values
            fast = _fast(field, items)
            out[field.name] = fast if fast is not None else _slow(field, items, probs)
    probs.check()
    return out


def _prepare_columns(
    columns: Mapping[str, object], schema: FeatureSchema, probs: _Problems, limit: int | None, json: bool
) -> tuple[dict[str, list[object] | Column], int]:
    """The known columns as lists or 1-d arrays of one length, and that length (the row count)."""
    usable: dict[str, list[object] | Column] = {}
    for name, values in columns.items():
        if name not in schema.names:
            probs.add(_unknown(name, schema), name)
        elif isinstance(values, list) or (isinstance(values, np.ndarray) and values.ndim == 1):
            usable[name] = values
        elif not json and isinstance(values, Sequence) and not isinstance(values, str | bytes):
            usable[name] = list(values)
        else:
            got = f"an array of shape {values.shape}" if isinstance(values, np.ndarray) else _describe(values)
            probs.at(name, None, f"expected a list of values, got {got}")
    lengths = {name: len(values) for name, values in usable.items()}
    if limit is not None and (most := max(lengths.values(), default=0)) > limit:
        raise RequestInvalid([FieldProblem(f"{most} rows, more than the limit of {limit}")], status=413)
    n = Counter(lengths.values()).most_common(1)[0][0] if lengths else 0
    for name, length in lengths.items():
        if length != n:
            probs.add(f"field '{name}' has {length} values, but the other fields have {n}", name)
    if n == 0 and not probs.count:
        probs.add("no rows")
    probs.check()
    return usable, n


def validate_columns(
    columns: Mapping[str, Sequence[object] | Column], schema: FeatureSchema, *, max_rows: int | None = None
) -> Batch:
    """Validate named columns (lists, sequences or 1-d numpy arrays) against ``schema``."""
    probs = _Problems()
    usable, n = _prepare_columns(columns, schema, probs, max_rows, json=False)
    return Batch(_validate_fields(usable, n, schema, probs), n)


def parse_json(body: bytes) -> object:
    """Parse a request body; NaN and Infinity literals get through, for validation to name their row."""
    if not body.strip():
        raise RequestInvalid([FieldProblem("empty body")], status=400)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        try:  # the standard parser also takes NaN, Infinity and 1e400 (as inf)
            return json.loads(body, parse_constant=_CONSTANTS.__getitem__)
        except (ValueError, RecursionError):
            raise RequestInvalid([FieldProblem(f"malformed JSON: {error}")], status=400) from None


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


def validate_request(
    payload: object, schema: FeatureSchema, *, max_rows: int = 10_000, key_field: str | None = None
) -> Batch:
    """Validate a parsed prediction request body; raises :class:`RequestInvalid` listing every problem.

    ``key_field`` names a per-row routing key (a deployment's ``key``): a feature, or a member each
    record (or column set) may carry besides the features; its values come back as ``row_keys``.
    """
    if not isinstance(payload, dict):
        raise RequestInvalid([FieldProblem(f"the body must be a JSON object, got {_describe(payload)}")])
    probs = _Problems()
    for member in [m for m in payload if m not in _MEMBERS]:
        probs.add(f"unknown member '{member}' (the body may have: {', '.join(_MEMBERS)})")
    present = [m for m in _DATA_MEMBERS if m in payload]
    if len(present) != 1:
        has = " and ".join(f"'{m}'" for m in present) or "none"
        probs.add(
            "the body must have exactly one of 'features' (one record), 'instances' (a list of records) "
            f"or 'inputs' (an object of columns); it has {has}"
        )
        probs.check()
    form, data = present[0], payload[present[0]]
    if not isinstance(data, list if form == "instances" else dict):
        shape = "a list of objects" if form == "instances" else "an object keyed by field name"
        probs.add(f"'{form}' must be {shape}, got {_describe(data)}")
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
            raise RequestInvalid([FieldProblem(f"{n} rows, more than the limit of {max_rows}")], status=413)
        if n == 0:
            probs.add("no rows: 'instances' is empty")
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
