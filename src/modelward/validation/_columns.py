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
import re
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

from modelward.errors import FieldProblem, RequestInvalid  # importable here as before
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
    "is_text",
    "parse_json",
    "validate_columns",
]

MAX_PROBLEMS: Final = 50
MAX_STRING_LENGTH: Final = 10_000
MAX_REQUEST_ID_LENGTH: Final = 128
_PREVIEW: Final = 40
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


def _converter(field: Field) -> Callable[[object], object]:
    if field.nested:
        from modelward.validation._nested import nested_converter  # it builds on this module

        return nested_converter(field)
    return _CONVERT[field.type]


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
    convert = _converter(field)
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
    if field.nested:  # one list (object, tensor) per row: never a 2-d array
        column = np.empty(n, dtype=object)
        column[:] = out
        return column
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
        # typed numpy columns checked at once; text and the values of lists, objects, tensors as lists
        elif isinstance(values, np.ndarray) and values.dtype.kind not in "OSU" and not field.nested:
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
        raise RequestInvalid([FieldProblem(f"{most} rows, more than the limit of {limit}")], kind="too-large")
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
    """Parse a request body; NaN and Infinity literals get through, for validation to name their row.

    A body that is not UTF-8 text, or that has a string (a value or a member name) with a lone UTF-16
    surrogate (``"\\ud800"``: no character, so no text a model, a store or a log could take), is
    malformed: refused here, so that no path passes one on.
    """
    if not body.strip():
        raise RequestInvalid([FieldProblem("empty body")], kind="malformed")
    try:
        return orjson.loads(body)  # refuses lone surrogates itself
    except orjson.JSONDecodeError as error:
        first = error
    try:  # the standard parser also takes NaN, Infinity and 1e400 (as inf), and lone surrogates
        text = body.decode("utf-8-sig")  # strict: surrogates encoded as UTF-8 bytes are refused
        value = json.loads(text, parse_constant=_CONSTANTS.__getitem__)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise RequestInvalid([FieldProblem(f"malformed JSON: {first}")], kind="malformed") from None
    if _SURROGATE_ESCAPE.search(text):
        where = _lone_surrogate(value)
        if where is not None:
            detail = f"malformed JSON: {where} has a lone UTF-16 surrogate, which is not Unicode text"
            raise RequestInvalid([FieldProblem(detail)], kind="malformed")
    return value


_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


def is_text(s: str) -> bool:
    """True when ``s`` is Unicode text (no lone UTF-16 surrogate): what can be encoded as UTF-8."""
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short(path: str) -> str:
    return path if len(path) <= _PREVIEW * 2 else path[: _PREVIEW * 2 - 3] + "..."


def _lone_surrogate(value: object) -> str | None:
    """Where the first string with a lone surrogate is (``"features.geography"``, ``"a member name
    in items[3]"``), or None. A loop, not recursion: the value may be nested a thousand deep."""
    stack: list[tuple[object, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if not is_text(item):
                return f"the string at {_short(path) or 'the top'}"
        elif isinstance(item, dict):
            for key, member in item.items():
                if not is_text(key):
                    return f"a member name in {_short(path) or 'the body'}"
                stack.append((member, f"{path}.{key}" if path else key))
        elif isinstance(item, list):
            stack.extend((member, f"{path}[{i}]") for i, member in enumerate(item))
    return None
