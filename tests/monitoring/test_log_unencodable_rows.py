"""A row the store cannot hold as it is costs no other row: it is repaired (its text escaped or cut)
or dropped alone, and counted. Every text column, both forms of submission, thread and process."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from modelward.monitoring.log_rows import PredictionRecord, RecordBatch
from modelward.monitoring.prediction_log import PredictionLogger, write_items
from modelward.monitoring.redaction import Redactor
from modelward.store import Store
from modelward.store.tables import predictions

BAD = "\ud800"  # a lone UTF-16 surrogate: a Python str, but no UTF-8 (nor JSON orjson writes) holds it
ESCAPED = "\\ud800"  # what the store gets instead: the code point written as an escape
N = 12
POISONED = 5  # the row that carries the bad value


def _record(prefix: str, i: int, column: str | None) -> PredictionRecord:
    bad = column is not None and i == POISONED
    return PredictionRecord(
        request_id=f"{prefix}-{i}" + (BAD if bad and column == "request_id" else ""),
        ts=1_700_000_000.0 + i,
        model="churn",
        version="1",
        inputs={"plan": BAD if bad and column == "input" else "b", "age": 30 + i}
        | ({BAD: 1} if bad and column == "field" else {}),
        outputs={"prediction": BAD if bad and column == "output" else "yes", "probabilities": {"no": 0.5}},
        latency_ms=1.5,
        routing_key=BAD if bad and column == "routing_key" else "user-1",
        arm=BAD if bad and column == "arm" else "champion",
        error=BAD if bad and column == "error" else None,
    )


def _batch(prefix: str, column: str | None) -> RecordBatch:
    """The same rows as :func:`_record` gives, by column, as the server submits them; a value the whole
    batch shares (arm, classes, field names) is bad for every row."""
    plan = np.array(["b"] * N, dtype=object)
    labels = np.array(["yes"] * N, dtype=object)
    keys: list[str | None] = ["user-1"] * N
    ids = [f"{prefix}-{i}" for i in range(N)]
    if column == "input":
        plan[POISONED] = BAD
    if column == "output":
        labels[POISONED] = BAD
    if column == "routing_key":
        keys[POISONED] = BAD
    if column == "request_id":
        ids[POISONED] += BAD
    inputs: dict[str, Any] = {"plan": plan, "age": np.arange(30, 30 + N)}
    if column == "field":
        inputs[BAD] = np.ones(N, dtype=np.int64)
    return RecordBatch(
        model="churn",
        version="1",
        arm=BAD if column == "arm" else "champion",
        ts=[1_700_000_000.0 + i for i in range(N)],
        latency_ms=1.5,
        request_ids=ids,
        inputs=inputs,
        predictions=labels,
        probabilities=np.full((N, 2), 0.5),
        classes=["no", BAD if column == "class" else "yes"],
        routing_keys=keys,
    )


def _stored(store: Store, prefix: str) -> list[Any]:
    with store.read() as conn:
        rows = conn.execute(select(predictions).order_by(predictions.c.id)).all()
    return [r for r in rows if r.request_id.startswith(prefix + "-")]


def _text_of(row: Any, column: str) -> str:
    """The text of ``column`` the poisoned row was built with, as stored."""
    inputs, outputs = json.loads(row.inputs), json.loads(row.outputs)
    if column == "input":
        return str(inputs["plan"])
    if column == "field":
        return next(k for k in inputs if k not in ("plan", "age"))
    if column == "output":
        return str(outputs["prediction"])
    if column == "class":
        return next(iter(set(outputs["probabilities"]) - {"no"}))
    return str(getattr(row, column))


RECORD_COLUMNS = ["request_id", "routing_key", "input", "field", "output", "arm", "error"]
BATCH_COLUMNS = ["request_id", "routing_key", "input", "field", "output", "class", "arm"]
SHARED = {"arm", "field", "class"}  # one value for every row of a batch


@pytest.mark.parametrize("process", [False, True], ids=["thread", "process"])
def test_one_row_with_an_unencodable_value_in_any_text_column_costs_no_other_row(
    store: Store, process: bool
) -> None:
    repaired: list[int] = []
    logger = PredictionLogger(
        store, batch_size=1000, flush_interval=0.02, process=process, on_repaired=repaired.append
    ).start()
    cases: list[tuple[str, str, int]] = []  # prefix, column, rows repaired
    for column in RECORD_COLUMNS:
        prefix = f"rec_{column}"
        # the good and the poisoned rows go in one submit, so they share one batch
        logger.submit([_record(prefix, i, column) for i in range(N)])
        cases.append((prefix, column, 1))
    for column in BATCH_COLUMNS:
        prefix = f"bat_{column}"
        logger.submit_batch(_batch(prefix, column))
        cases.append((prefix, column, N if column in SHARED else 1))
    assert logger.flush(30)
    logger.close()

    total = N * len(cases)
    stats = logger.stats
    assert (stats.produced, stats.written, stats.dropped) == (total, total, 0)
    assert stats.repaired == sum(n for _, _, n in cases) == sum(repaired)
    for prefix, column, _ in cases:
        rows = _stored(store, prefix)
        assert len(rows) == N, (prefix, len(rows))
        bad = rows[POISONED]
        text = _text_of(bad, column)
        assert ESCAPED in text, (prefix, text)
        good = rows[POISONED - 1]
        assert good.routing_key == "user-1" and json.loads(good.inputs)["plan"] == "b"
        if column not in SHARED:
            assert good.arm == "champion"


@pytest.mark.parametrize("form", ["record", "batch"])
def test_nul_characters_and_overlong_text_are_escaped_and_cut_to_the_column(store: Store, form: str) -> None:
    """PostgreSQL refuses NUL in text and text longer than a VARCHAR; SQLite takes both. The log
    stores the same repaired row on both."""
    long_key, nul_key = "k" * 300, "a\x00b"
    keys = ["user-1"] * N
    keys[2], keys[3] = long_key, nul_key
    ids = [f"{form}nul-{i}" for i in range(N)]
    items: list[Any]
    if form == "record":
        items = [
            PredictionRecord(ids[i], 1.0 + i, "m", "1", {"x": i}, {"prediction": 1}, 1.0, keys[i], "champion")
            for i in range(N)
        ]
    else:
        items = [
            RecordBatch(
                "m", "1", "champion", 1.0, 1.0, ids, {"x": list(range(N))}, [1] * N, routing_keys=keys
            )
        ]
    written, rejected, repaired, error = write_items(store, items)
    assert error is None and (written, rejected, repaired) == (N, 0, 2)
    rows = _stored(store, f"{form}nul")
    assert [r.request_id for r in rows] == ids
    assert rows[2].routing_key == "k" * 256
    assert rows[3].routing_key == "a\\x00b"
    assert rows[4].routing_key == "user-1"


def test_a_row_the_database_refuses_is_dropped_alone(store: Store) -> None:
    """The last line of defence: a row the database itself refuses (a NaN time on SQLite, whose
    NOT NULL column reads NaN as null) is found by splitting the batch, and dropped alone."""
    rows = [
        PredictionRecord(f"nan-{i}", math.nan if i == 7 else 1.0 + i, "m", "1", {"x": i}, {}, 1.0)
        for i in range(40)
    ]
    written, rejected, _, error = write_items(store, rows)
    assert error is None
    stored = _stored(store, "nan")
    if store.dialect == "sqlite":
        assert (written, rejected) == (39, 1)
        assert [r.request_id for r in stored] == [f"nan-{i}" for i in range(40) if i != 7]
    else:  # PostgreSQL's double precision holds NaN
        assert (written, rejected) == (40, 0) and len(stored) == 40


def test_a_row_whose_values_cannot_be_converted_is_dropped_alone_and_counted(store: Store) -> None:
    dropped: list[int] = []
    logger = PredictionLogger(store, flush_interval=0.02, on_dropped=dropped.append).start()
    good = [PredictionRecord(f"conv-{i}", 1.0 + i, "m", "1", {"x": i}, {}, 1.0) for i in range(10)]
    broken = PredictionRecord("conv-x", "not a time", "m", "1", {"x": 0}, {}, 1.0)  # type: ignore[arg-type]
    logger.submit([*good[:5], broken, *good[5:]])
    assert logger.flush(10)
    logger.close()
    stats = logger.stats
    assert (stats.written, stats.dropped, stats.rejected) == (10, 1, 1)
    assert sum(dropped) == 1
    assert len(_stored(store, "conv")) == 10


def test_redacting_an_unencodable_value_hashes_its_escaped_form(store: Store) -> None:
    redactor = Redactor.from_spec("plan=hash", secret="s")
    logger = PredictionLogger(store, flush_interval=0.02, redactor=redactor).start()
    logger.submit([_record("red", i, "input") for i in range(N)])
    logger.submit_batch(_batch("redb", "input"))
    assert logger.flush(10)
    logger.close()
    assert logger.stats.written == 2 * N and logger.stats.dropped == 0
    for prefix in ("red", "redb"):
        rows = _stored(store, prefix)
        hashed = json.loads(rows[POISONED].inputs)["plan"]
        assert hashed == redactor.hash_value(ESCAPED) != redactor.hash_value("b")
