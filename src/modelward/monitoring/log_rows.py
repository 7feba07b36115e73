"""Rows of the prediction log: one :class:`PredictionRecord` per prediction, or a :class:`RecordBatch`
of the rows a server answered together, column by column.

A batch is what the server submits: it costs one list per column to build, instead of a dict and a
record per row, and its rows are encoded straight into the tuples the database driver takes. Both
forms give identical stored rows: canonical JSON (sorted keys, NaN and infinities as null).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from modelward.monitoring.redaction import Redactor, canonical_json, json_fallback

__all__ = ["COLUMNS", "PredictionRecord", "RecordBatch", "insert_sql", "record_row"]

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
)
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY  # keys are put in order by hand


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
    )


@dataclass(slots=True)  # not frozen: built once per request, and a frozen __init__ costs per field
class RecordBatch:
    """Rows served together by one version: inputs by column, outputs by row.

    ``inputs`` maps each field to its values (plain Python values, as ``ndarray.tolist()`` gives);
    ``predictions`` holds the predicted labels or values (None when the model failed, with
    ``error``); ``probabilities`` one list per row in ``classes`` order; ``routing_keys`` one key for
    every row, or one per row.
    """

    model: str
    version: str
    arm: str | None
    ts: float | Sequence[float]  # one time for every row, or one per row
    latency_ms: float | Sequence[float]
    request_ids: Sequence[str]
    inputs: Mapping[str, Sequence[Any]]
    predictions: Sequence[Any] | None = None
    probabilities: Sequence[Sequence[float]] | None = None
    classes: Sequence[str] = ()
    routing_keys: Sequence[str | None] | str | None = None
    error: str | None = None

    def __len__(self) -> int:
        return len(self.request_ids)

    def subset(self, rows: Sequence[int]) -> RecordBatch:
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
        if redactor is None or not redactor.rules:
            return self
        return replace(self, inputs=redactor.apply_columns(self.inputs))

    def rows(self) -> Iterator[tuple[Any, ...]]:
        names = sorted(self.inputs)
        columns = [self.inputs[n] for n in names]
        dumps = orjson.dumps
        order = sorted(range(len(self.classes)), key=lambda j: str(self.classes[j]))
        classes = [str(self.classes[j]) for j in order]
        keys = self.routing_keys
        model, version, arm = self.model, str(self.version), self.arm
        n = len(self.request_ids)
        times = [float(self.ts)] * n if isinstance(self.ts, float | int) else self.ts
        latencies = (
            [float(self.latency_ms)] * n if isinstance(self.latency_ms, float | int) else self.latency_ms
        )
        for i, request_id in enumerate(self.request_ids):
            inputs = dumps(
                dict(zip(names, [c[i] for c in columns], strict=True)), default=json_fallback, option=_OPTIONS
            )
            if self.predictions is None:
                outputs = b"{}"
            elif self.probabilities is None:
                outputs = dumps({"prediction": self.predictions[i]}, default=json_fallback, option=_OPTIONS)
            else:
                p = self.probabilities[i]
                probs = dict(zip(classes, [p[j] for j in order], strict=True))
                outputs = dumps(
                    {"prediction": self.predictions[i], "probabilities": probs},
                    default=json_fallback,
                    option=_OPTIONS,
                )
            key = keys if keys is None or isinstance(keys, str) else keys[i]
            yield (
                str(request_id),
                float(times[i]),
                model,
                version,
                arm,
                key,
                inputs.decode(),
                outputs.decode(),
                float(latencies[i]),
                self.error,
            )


def insert_sql(paramstyle: str) -> str | None:
    """The driver-level INSERT for :data:`COLUMNS` (None: the driver's placeholders are not known)."""
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(paramstyle)
    if mark is None:
        return None
    # Fixed column names and placeholders only: no value ever reaches the text.
    marks = ", ".join([mark] * len(COLUMNS))
    return f"INSERT INTO modelward_predictions ({', '.join(COLUMNS)}) VALUES ({marks})"  # noqa: S608
