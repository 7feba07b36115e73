"""Rows of the prediction log: one :class:`PredictionRecord` per prediction, or a :class:`RecordBatch`
of the rows a server answered together, column by column.

A batch is what the server submits: it costs one list per column to build, instead of a dict and a
record per row, and its rows are encoded straight into the tuples the database driver takes. Both
forms give identical stored rows: canonical JSON (sorted keys, NaN and infinities as null).

Text a store cannot hold (a lone UTF-16 surrogate, which a JSON body may carry as ``"\\ud800"``;
NUL, which PostgreSQL refuses; text longer than its column) must cost no other row. :func:`fits`
checks an item's text columns at once (its JSON columns are checked by orjson, which refuses what
UTF-8 cannot hold); an item that does not fit is encoded row by row by :func:`storable_rows`, where
each row is stored as it is, repaired (:func:`~modelward.monitoring.redaction.storable_text`), or
left out alone.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import orjson

from modelward.monitoring.redaction import Redactor, canonical_json, json_fallback, storable, storable_text

__all__ = [
    "COLUMNS",
    "JSON_MAX_VALUES",
    "TEXT_LIMITS",
    "PredictionRecord",
    "RecordBatch",
    "fits",
    "insert_sql",
    "json_insert_sql",
    "record_row",
    "storable_row",
    "storable_rows",
]

# The columns written, in the order of the row tuples.
COLUMNS = (
    "request_id",
    "ts",
    "model",
    "version",
    "arm",
    "routing_key",
    "inputs",
    "outputs",
    "latency_ms",
    "error",
    "consent",
)
# The longest text of each text column (its VARCHAR length: PostgreSQL refuses more, SQLite does not
# check); None: unbounded. In COLUMNS order.
TEXT_LIMITS: dict[str, int | None] = {
    "request_id": 128,
    "model": 256,
    "version": 32,
    "arm": 64,
    "routing_key": 256,
    "error": None,
}
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY  # keys are put in order by hand
# Values per row up to which a batch goes in as one JSON document. Measured in a busy server: one
# input and a regressor's prediction, the writer's CPU per row fell from 9-11 to 6.5-7 us; nine
# inputs and two probabilities, it rose from 14-15 to 20-22 us (SQLite parses each row once per
# value it takes out), so wide rows keep the multi-row insert.
JSON_MAX_VALUES = 3


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One prediction as served: what went in, what came out, which version answered and how fast."""

    request_id: str
    ts: float  # UNIX epoch seconds, UTC
    model: str
    version: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    latency_ms: float
    routing_key: str | None = None
    arm: str | None = None
    error: str | None = None  # the model's failure message when it raised (outputs then empty)
    consent: bool = True  # False: the request did not consent to keeping its inputs

    def __len__(self) -> int:
        return 1


def record_row(record: PredictionRecord) -> tuple[Any, ...]:
    return (
        str(record.request_id),
        float(record.ts),
        record.model,
        str(record.version),
        record.arm,
        record.routing_key,
        canonical_json(record.inputs),
        canonical_json(record.outputs),
        float(record.latency_ms),
        record.error,
        bool(record.consent),
    )


@dataclass(slots=True)  # not frozen: built once per request, and a frozen __init__ costs per field
class RecordBatch:
    """Rows served together by one version: inputs by column, outputs by row.

    ``inputs`` maps each field to its values; ``predictions`` holds the predicted labels or values
    (None when the model failed, with ``error``); ``probabilities`` one row per prediction in
    ``classes`` order; ``routing_keys`` one key for every row, or one per row. Inputs, predictions
    and probabilities may be NumPy arrays as the model saw them: they become plain Python values
    (:meth:`plain`) only when the rows are encoded, which is the log writer's work, not the server's.
    """

    model: str
    version: str
    arm: str | None
    ts: float | Sequence[float]  # one time for every row, or one per row
    latency_ms: float | Sequence[float]
    request_ids: Sequence[str]
    inputs: Mapping[str, Sequence[Any] | np.ndarray]
    predictions: Sequence[Any] | np.ndarray | None = None
    probabilities: Sequence[Sequence[float]] | np.ndarray | None = None
    classes: Sequence[str] = ()
    routing_keys: Sequence[str | None] | str | None = None
    error: str | None = None
    consent: bool = True  # of every row: a server logs consented and other requests apart

    def __len__(self) -> int:
        return len(self.request_ids)

    def plain(self) -> RecordBatch:
        """This batch with its arrays as plain Python values (``ndarray.tolist()``; the values of
        object arrays through ``.item()``), the form every encoding starts from."""
        if not (
            any(isinstance(v, np.ndarray) for v in self.inputs.values())
            or isinstance(self.predictions, np.ndarray)
            or isinstance(self.probabilities, np.ndarray)
        ):
            return self
        return replace(
            self,
            inputs={k: _plain(v) for k, v in self.inputs.items()},
            predictions=None if self.predictions is None else _plain(self.predictions),
            probabilities=None if self.probabilities is None else _plain(self.probabilities),
        )

    def subset(self, rows: Sequence[int]) -> RecordBatch:
        return self.plain()._subset(rows)

    def _subset(self, rows: Sequence[int]) -> RecordBatch:
        keys = self.routing_keys
        ts, latency = self.ts, self.latency_ms
        return replace(
            self,
            ts=ts if isinstance(ts, float | int) else [ts[i] for i in rows],
            latency_ms=latency if isinstance(latency, float | int) else [latency[i] for i in rows],
            request_ids=[self.request_ids[i] for i in rows],
            inputs={k: [v[i] for i in rows] for k, v in self.inputs.items()},
            predictions=None if self.predictions is None else [self.predictions[i] for i in rows],
            probabilities=None if self.probabilities is None else [self.probabilities[i] for i in rows],
            routing_keys=keys if keys is None or isinstance(keys, str) else [keys[i] for i in rows],
        )

    def redacted(self, redactor: Redactor | None) -> RecordBatch:
        if redactor is None or not redactor.active:
            return self
        plain = self.plain()
        # plain() made every column a list
        return replace(plain, inputs=redactor.apply_columns(cast(Mapping[str, Sequence[Any]], plain.inputs)))

    def records(self) -> list[PredictionRecord]:
        """This batch's rows as one record each, stored exactly as :meth:`rows` stores them."""
        p = self.plain()
        n = len(p.request_ids)
        names = list(p.inputs)
        inputs = [dict(zip(names, values, strict=True)) for values in zip(*p.inputs.values(), strict=True)]
        if not names:
            inputs = [{} for _ in range(n)]
        outputs: list[dict[str, Any]]
        if p.predictions is None:
            outputs = [{} for _ in range(n)]
        elif p.probabilities is None:
            outputs = [{"prediction": x} for x in p.predictions]
        else:
            classes = [str(c) for c in p.classes]
            outputs = [
                {"prediction": x, "probabilities": dict(zip(classes, q, strict=False))}
                for x, q in zip(p.predictions, p.probabilities, strict=True)
            ]
        ts, latency, keys = p.ts, p.latency_ms, p.routing_keys
        return [
            PredictionRecord(
                request_id=rid,
                ts=ts if isinstance(ts, float | int) else ts[i],
                model=p.model,
                version=p.version,
                inputs=inputs[i],
                outputs=outputs[i],
                latency_ms=latency if isinstance(latency, float | int) else latency[i],
                routing_key=keys if keys is None or isinstance(keys, str) else keys[i],
                arm=p.arm,
                error=p.error,
                consent=p.consent,
            )
            for i, rid in enumerate(p.request_ids)
        ]

    def fits(self) -> bool:
        """Every text column of every row goes into the store as it is (checked per column, at once)."""
        keys = self.routing_keys
        return (
            _fits(self.model, 256)
            and _fits(str(self.version), 32)
            and _fits(self.arm, 64)
            and _fits(self.error, None)
            and all(_fits(name, None) for name in self.inputs)
            and all(_fits(str(c), None) for c in self.classes)
            and _column_fits(self.request_ids, 128)
            and (_fits(keys, 256) if keys is None or isinstance(keys, str) else _column_fits(keys, 256))
        )

    def rows(self) -> list[tuple[Any, ...]]:
        """The driver's row tuples, in :data:`COLUMNS` order. Built column by column (one
        comprehension per column, the constants repeated), which costs about a third less per row
        than assembling each row in turn. The columns' lengths are checked once, by the last zip;
        inside a row (fields, classes) they are equal by construction."""
        return self.plain()._rows()

    def _rows(self) -> list[tuple[Any, ...]]:
        n = len(self.request_ids)
        names = sorted(self.inputs)
        dumps, fallback = orjson.dumps, json_fallback
        if names:
            inputs = [
                dumps(dict(zip(names, values, strict=False)), default=fallback, option=_OPTIONS).decode()
                for values in zip(*[self.inputs[name] for name in names], strict=True)
            ]
        else:
            inputs = ["{}"] * n
        if self.predictions is None:
            outputs = ["{}"] * n
        elif self.probabilities is None:
            outputs = [
                dumps({"prediction": p}, default=fallback, option=_OPTIONS).decode() for p in self.predictions
            ]
        else:
            order = sorted(range(len(self.classes)), key=lambda j: str(self.classes[j]))
            classes = [str(self.classes[j]) for j in order]
            in_order = order == list(range(len(order)))
            outputs = [
                dumps(
                    {
                        "prediction": p,
                        "probabilities": dict(
                            zip(classes, q if in_order else [q[j] for j in order], strict=False)
                        ),
                    },
                    default=fallback,
                    option=_OPTIONS,
                ).decode()
                for p, q in zip(self.predictions, self.probabilities, strict=True)
            ]
        keys = self.routing_keys
        ts, latency = self.ts, self.latency_ms
        return list(
            zip(
                list(map(str, self.request_ids)),
                [float(ts)] * n if isinstance(ts, float | int) else list(map(float, ts)),
                [self.model] * n,
                [str(self.version)] * n,
                [self.arm] * n,
                [keys] * n if keys is None or isinstance(keys, str) else list(keys),
                inputs,
                outputs,
                [float(latency)] * n if isinstance(latency, float | int) else list(map(float, latency)),
                [self.error] * n,
                [bool(self.consent)] * n,
                strict=True,
            )
        )

    def json_insert(self) -> tuple[str, tuple[Any, ...]] | None:
        """The whole batch as one INSERT ... SELECT over SQLite's ``json_each`` of one JSON document
        (one array per row), with its parameters; None when the batch holds a failure (no outputs).

        The rows are encoded by one ``orjson.dumps`` and taken apart by SQLite, which writes the
        same values and the same JSON texts as :meth:`rows` (a test compares them): ``json_object``
        keeps each value's text as orjson wrote it. The point is where the work happens: SQLite runs
        without the interpreter's lock, so the server's request thread does not wait on the log. It
        costs SQLite more CPU per value taken out of a row, so rows of more than
        :data:`JSON_MAX_VALUES` values (inputs, prediction, probabilities) also return None."""
        if self.predictions is None or self.error is not None:
            return None
        return self.plain()._json_insert()

    def _json_insert(self) -> tuple[str, tuple[Any, ...]] | None:
        assert self.predictions is not None  # noqa: S101 - checked by json_insert
        extracted = len(self.inputs) + 1 + (len(self.classes) if self.probabilities is not None else 0)
        if extracted > JSON_MAX_VALUES:
            return None
        n = len(self.request_ids)
        names = sorted(self.inputs)
        columns = [self.inputs[name] for name in names]
        ts, latency, keys = self.ts, self.latency_ms, self.routing_keys
        per_row = [self.predictions, *columns]
        ts_col = itertools.repeat(float(ts)) if isinstance(ts, float | int) else ts
        latency_col = itertools.repeat(float(latency)) if isinstance(latency, float | int) else latency
        keys_col = itertools.repeat(keys) if keys is None or isinstance(keys, str) else keys
        for col in (ts_col, latency_col, keys_col, self.probabilities):
            if isinstance(col, Sequence):
                per_row.append(col)
        if any(len(col) != n for col in per_row):
            raise ValueError("a prediction log batch has columns of different lengths")
        order: tuple[int, ...] | None = None
        classes: list[str] = []
        probabilities: Any = itertools.repeat(None)
        if self.probabilities is not None:
            order = tuple(sorted(range(len(self.classes)), key=lambda j: str(self.classes[j])))
            classes = [str(self.classes[j]) for j in order]
            probabilities = self.probabilities
        # Lengths were checked above; constants repeat without end, hence not strict.
        rows = zip(
            self.request_ids,
            ts_col,
            latency_col,
            keys_col,
            self.predictions,
            probabilities,
            *columns,
            strict=False,
        )
        doc = orjson.dumps(list(rows), default=json_fallback, option=_OPTIONS)
        params = (self.model, str(self.version), self.arm, *names, *classes, bool(self.consent), doc)
        return json_insert_sql(len(names), order), params


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _fits(text: Any, limit: int | None) -> bool:
    """``text`` (a str, or None) goes into a text column of ``limit`` characters as it is."""
    if text is None:
        return True
    if type(text) is not str or (limit is not None and len(text) > limit) or "\x00" in text:
        return False
    return text.isascii() or _utf8(text)


def _column_fits(texts: Sequence[Any], limit: int) -> bool:
    """:func:`_fits` for a column's values, joined into one text for the checks made in C."""
    try:
        joined = "".join(texts)
    except TypeError:  # None or a non-text among them: one by one
        return all(_fits(t, limit) for t in texts)
    return (
        max(map(len, texts), default=0) <= limit
        and "\x00" not in joined
        and (joined.isascii() or _utf8(joined))
    )


def fits(item: PredictionRecord | RecordBatch) -> bool:
    """The text columns of ``item`` go into the store as they are (JSON columns are orjson's to check)."""
    if isinstance(item, RecordBatch):
        return item.fits()
    return (
        _fits(item.request_id, 128)
        and _fits(item.model, 256)
        and _fits(item.version, 32)
        and _fits(item.arm, 64)
        and _fits(item.routing_key, 256)
        and _fits(item.error, None)
    )


def _text(value: Any, limit: int | None) -> str | None:
    return None if value is None else storable_text(str(value), limit)


def storable_row(record: PredictionRecord) -> tuple[tuple[Any, ...], bool]:
    """``record``'s row, and whether it had to be repaired: its text columns escaped and cut
    (:func:`~modelward.monitoring.redaction.storable_text`), the strings of its inputs and outputs
    too. Raises when even that cannot be stored (a time that is not a number)."""
    try:
        row = record_row(record)
    except (TypeError, ValueError):  # orjson refuses text UTF-8 cannot hold (JSONEncodeError)
        row = None
    if row is not None and fits(record):
        return row, False
    return (
        storable_text(str(record.request_id), 128),
        float(record.ts),
        storable_text(str(record.model), 256),
        storable_text(str(record.version), 32),
        _text(record.arm, 64),
        _text(record.routing_key, 256),
        canonical_json(storable(record.inputs)),
        canonical_json(storable(record.outputs)),
        float(record.latency_ms),
        _text(record.error, None),
        bool(record.consent),
    ), True


def storable_rows(item: PredictionRecord | RecordBatch) -> tuple[list[tuple[Any, ...]], int, int]:
    """``item`` row by row: the rows to store, how many of them were repaired, and how many rows
    could not be stored at all (left out, each alone)."""
    try:
        records = [item] if isinstance(item, PredictionRecord) else item.records()
    except Exception:  # columns of different lengths: no row can be told from another
        return [], 0, len(item)
    rows: list[tuple[Any, ...]] = []
    repaired = bad = 0
    for record in records:
        try:
            row, fixed = storable_row(record)
        except Exception:
            bad += 1
            continue
        rows.append(row)
        repaired += fixed
    return rows, repaired, bad


def _plain(values: Any) -> Any:
    if not isinstance(values, np.ndarray):
        return values
    if values.dtype != object:
        return values.tolist()
    if values.ndim == 1:
        return [v.item() if isinstance(v, np.generic) else v for v in values.tolist()]
    return [[v.item() if isinstance(v, np.generic) else v for v in row] for row in values.tolist()]


@functools.lru_cache(maxsize=64)
def json_insert_sql(inputs: int, order: tuple[int, ...] | None) -> str:
    """:meth:`RecordBatch.json_insert`'s statement for ``inputs`` fields and (for classifiers) the
    probability columns in ``order`` (the classes sorted as text). Row arrays are ``[request_id, ts,
    latency_ms, routing_key, prediction, probabilities, *inputs]``; field and class names are
    parameters, never part of the text."""
    fields = ", ".join(f"?, value->{6 + i}" for i in range(inputs))
    outputs = "json_object('prediction', value->4)"
    if order is not None:
        probabilities = ", ".join(f"?, value->5->{j}" for j in order)
        outputs = f"json_object('prediction', value->4, 'probabilities', json_object({probabilities}))"
    return (
        "INSERT INTO modelward_predictions "  # noqa: S608 - fixed text; values are parameters
        "(request_id, ts, model, version, arm, routing_key, inputs, outputs, latency_ms, error, consent) "
        "SELECT value->>0, value->>1, ?, ?, ?, value->>3, "
        f"json_object({fields}), {outputs}, value->>2, NULL, ? FROM json_each(?)"
    )


@functools.lru_cache(maxsize=64)  # the full-size statement is built once, not per 500 rows
def insert_sql(paramstyle: str, rows: int = 1) -> str | None:
    """The driver-level INSERT of ``rows`` rows of :data:`COLUMNS` (None: the driver's placeholders
    are not known). One statement for many rows is one step of the database for all of them: the
    driver releases and retakes the GIL once, not once per row as ``executemany`` does, which a
    busy event loop thread pays for in thread switches."""
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(paramstyle)
    if mark is None:
        return None
    # Fixed column names and placeholders only: no value ever reaches the text.
    group = "(" + ", ".join([mark] * len(COLUMNS)) + ")"
    values = ", ".join([group] * max(1, rows))
    return f"INSERT INTO modelward_predictions ({', '.join(COLUMNS)}) VALUES {values}"  # noqa: S608
