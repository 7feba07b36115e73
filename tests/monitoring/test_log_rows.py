"""A batch of rows by column is stored exactly as the same rows submitted one record each."""

from __future__ import annotations

import math

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
    batch = _batch().subset([1]).redacted(Redactor.from_spec("alpha=drop,zeta=hash", salt="s"))
    (row,) = batch.rows()
    assert row[0] == "b" and row[1] == 101.5 and row[5] is None and row[8] == 2.5
    assert '"alpha"' not in row[6] and '"zeta":"sha256:' in row[6] and '"mid":null' in row[6]


def test_a_failed_prediction_stores_empty_outputs_and_the_error() -> None:
    failed = RecordBatch("m", "1", "primary", 1.0, 3.0, ["r"], {"x": [1.0]}, error="ValueError('no')")
    (row,) = failed.rows()
    assert row[7] == "{}" and row[9] == "ValueError('no')"


def test_driver_level_inserts_know_qmark_and_format_placeholders() -> None:
    assert insert_sql("qmark") is not None and insert_sql("qmark").count("?") == 10  # type: ignore[union-attr]
    assert insert_sql("format") is not None and insert_sql("format").count("%s") == 10  # type: ignore[union-attr]
    assert insert_sql("named") is None
    three = insert_sql("qmark", 3)
    assert three is not None and three.count("?") == 30 and three.count("(?, ") == 3
