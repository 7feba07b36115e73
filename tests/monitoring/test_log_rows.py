"""A batch of rows by column is stored exactly as the same rows submitted one record each."""

from __future__ import annotations

import math
from typing import Any

from modelward.monitoring.log_rows import PredictionRecord, RecordBatch, insert_sql, record_row
from modelward.monitoring.redaction import Redactor


def _batch() -> RecordBatch:
    return RecordBatch(
        model="churn",
        version="2",
        arm="canary",
        ts=[100.0, 101.5],
        latency_ms=[1.25, 2.5],
        request_ids=["a", "b"],
        inputs={"zeta": [1, 2], "alpha": ["x", None], "mid": [0.5, math.nan]},
        predictions=[1, 0],
        probabilities=[[0.2, 0.8], [0.9, 0.1]],
        classes=["1", "0"],  # not sorted: the stored JSON sorts them
        routing_keys=["k1", None],
    )


def test_batch_rows_equal_the_rows_of_one_record_each() -> None:
    records = [
        PredictionRecord(
            "a", 100.0, "churn", "2", {"zeta": 1, "alpha": "x", "mid": 0.5},
            {"prediction": 1, "probabilities": {"1": 0.2, "0": 0.8}}, 1.25, "k1", "canary",
        ),
        PredictionRecord(
            "b", 101.5, "churn", "2", {"zeta": 2, "alpha": None, "mid": math.nan},
            {"prediction": 0, "probabilities": {"1": 0.9, "0": 0.1}}, 2.5, None, "canary",
        ),
    ]  # fmt: skip
    assert list(_batch().rows()) == [record_row(r) for r in records]


def test_subsets_and_redaction_keep_rows_aligned() -> None:
    batch = _batch().subset([1]).redacted(Redactor.from_spec("alpha=drop,zeta=hash", secret="s"))
    (row,) = batch.rows()
    assert row[0] == "b" and row[1] == 101.5 and row[5] is None and row[8] == 2.5
    assert '"alpha"' not in row[6] and '"zeta":"hmac:' in row[6] and '"mid":null' in row[6]


def test_a_failed_prediction_stores_empty_outputs_and_the_error() -> None:
    failed = RecordBatch("m", "1", "primary", 1.0, 3.0, ["r"], {"x": [1.0]}, error="ValueError('no')")
    (row,) = failed.rows()
    assert row[7] == "{}" and row[9] == "ValueError('no')"


def test_driver_level_inserts_know_qmark_and_format_placeholders() -> None:
    assert insert_sql("qmark") is not None and insert_sql("qmark").count("?") == 11  # type: ignore[union-attr]
    assert insert_sql("format") is not None and insert_sql("format").count("%s") == 11  # type: ignore[union-attr]
    assert insert_sql("named") is None
    three = insert_sql("qmark", 3)
    assert three is not None and three.count("?") == 33 and three.count("(?, ") == 3


def _stored(batches: list[RecordBatch], *, as_json: bool) -> list[tuple[object, ...]]:
    import itertools
    import sqlite3

    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TABLE modelward_predictions (id INTEGER PRIMARY KEY, request_id TEXT, ts FLOAT, model TEXT, "
        "version TEXT, arm TEXT, routing_key TEXT, inputs TEXT, outputs TEXT, latency_ms FLOAT, error TEXT, "
        "consent BOOLEAN)"
    )
    for batch in batches:
        statement = batch.json_insert() if as_json else None
        if statement is not None:
            db.execute(*statement)
        else:
            rows = batch.rows()
            db.execute(insert_sql("qmark", len(rows)) or "", tuple(itertools.chain.from_iterable(rows)))
    columns = "request_id, ts, model, version, arm, routing_key, inputs, outputs, latency_ms, error, consent"
    return db.execute(f"SELECT {columns} FROM modelward_predictions ORDER BY id").fetchall()


def test_a_batch_inserted_as_one_json_document_is_stored_as_row_by_row(monkeypatch: Any) -> None:
    import random

    import modelward.monitoring.log_rows as log_rows

    monkeypatch.setattr(log_rows, "JSON_MAX_VALUES", 100)  # every shape below, however wide

    rng = random.Random(4)
    texts = ["plain", "", "Grüße 日本", 'quote " and \\ back', "tab\tnew\nline\x01", "emoji 🙂"]
    numbers = [0.0, -0.0, 1e16, 1.5e-300, 2.5, math.nan, math.inf, -math.inf, 1e308]
    ints = [0, -1, 2**53 + 1, -(2**63), 2**63 - 1]
    batches = [_batch(), _batch().subset([1])]
    for n in (1, 7, 300):
        batches.append(
            RecordBatch(
                model="m'odel",
                version="12",
                arm=rng.choice(["primary", None]),
                ts=[rng.uniform(1e9, 2e9) for _ in range(n)] if n > 1 else 1_764_000_000.25,
                latency_ms=[rng.random() * 10 for _ in range(n)],
                request_ids=[f"id-{i}-{rng.random()}" for i in range(n)],
                inputs={
                    "a'b": [rng.choice([*texts, None]) for _ in range(n)],
                    "num": [rng.choice(numbers) for _ in range(n)],
                    "int": [rng.choice(ints) for _ in range(n)],
                    "flag": [rng.choice([True, False, None]) for _ in range(n)],
                },
                predictions=[rng.choice([1.25, "yes", 3, None]) for _ in range(n)],
                routing_keys=rng.choice([None, "user-1", [rng.choice(["k", None]) for _ in range(n)]]),
            )
        )
    three = ["b", "a", "c"]
    batches.append(
        RecordBatch("m", "1", "x", 5.0, 1.0, ["p", "q"], {}, predictions=["b", "c"], classes=three,
                    probabilities=[[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]])
    )  # fmt: skip
    batches.append(RecordBatch("m", "1", "primary", 1.0, 3.0, ["r"], {"x": [1.0]}, error="ValueError('no')"))
    assert batches[-1].json_insert() is None  # failures go row by row
    assert _stored(batches, as_json=True) == _stored(batches, as_json=False)


def test_only_narrow_rows_go_in_as_a_json_document() -> None:
    narrow = RecordBatch("m", "1", "primary", 1.0, 2.0, ["a"], {"x": [1.0], "y": [2.0]}, predictions=[3.0])
    wide = RecordBatch(
        "m", "1", "primary", 1.0, 2.0, ["a"], {"x": [1.0], "y": [2.0], "z": [0.0]}, predictions=[3.0]
    )
    classifier = _batch()
    assert narrow.json_insert() is not None
    assert wide.json_insert() is None and classifier.json_insert() is None


def test_a_batch_of_arrays_is_stored_exactly_as_its_plain_values() -> None:
    """The server hands over the model's arrays (float32 inputs, object labels, probabilities); the
    writer makes plain values of them, so the stored text is that of ``ndarray.tolist()``."""
    import numpy as np

    inputs = {"x": np.array([0.1, 2.5, -3.0], dtype=np.float32), "n": np.array([1, 2, 3], dtype=np.int64)}
    labels = np.array([np.str_("yes"), "no", np.int64(7)], dtype=object)
    proba = np.array([[0.2, 0.8], [0.9, 0.1], [0.5, 0.5]], dtype=np.float32)

    def make(**columns: Any) -> RecordBatch:
        return RecordBatch("m", "1", "primary", 1.0, 2.0, ["a", "b", "c"], classes=["no", "yes"], **columns)

    arrays = make(inputs=inputs, predictions=labels, probabilities=proba)
    plain = make(
        inputs={k: v.tolist() for k, v in inputs.items()},
        predictions=["yes", "no", 7],
        probabilities=proba.tolist(),
    )
    assert arrays.rows() == plain.rows()
    assert '"x":0.10000000149011612' in arrays.rows()[0][6]  # float32 widened as tolist() does, not "0.1"
    assert arrays.subset([2, 0]).rows() == plain.subset([2, 0]).rows()
    redactor = Redactor.from_spec("n=hash", secret="s")
    assert arrays.redacted(redactor).rows() == plain.redacted(redactor).rows()
    narrow = RecordBatch(
        "m", "1", "p", 1.0, 2.0, ["a", "b"], {"x": inputs["x"][:2]}, predictions=proba[:2, 0]
    )
    narrow_plain = RecordBatch(
        "m",
        "1",
        "p",
        1.0,
        2.0,
        ["a", "b"],
        {"x": inputs["x"][:2].tolist()},
        predictions=proba[:2, 0].tolist(),
    )
    assert narrow.json_insert() == narrow_plain.json_insert()
    assert _stored([arrays, narrow], as_json=True) == _stored([plain, narrow_plain], as_json=False)
