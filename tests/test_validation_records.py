"""Many one-record requests validated together give exactly what validating each alone gives; any
record that is not plainly well typed sends the caller back to one-by-one validation."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest

from modelward.schema import FeatureSchema, Field
from modelward.validation import records_columns, simple_schema, validate_request

SCHEMA = FeatureSchema(
    (
        Field("age", "long"),
        Field("tenure", "integer"),
        Field("balance", "double"),
        Field("rate", "float"),
        Field("active", "boolean"),
        Field("geography", "string"),
    )
)


def record(rng: random.Random) -> dict[str, Any]:
    return {
        "age": rng.randint(-(2**40), 2**40),
        "tenure": rng.randint(-(2**31), 2**31 - 1),
        "balance": rng.choice([rng.uniform(-1e6, 1e6), rng.randint(-(2**53) + 1, 2**53 - 1)]),
        "rate": rng.uniform(0, 1),
        "active": rng.random() < 0.5,
        "geography": rng.choice(["France", "Germany", "", "日本"]),
    }


def test_joint_columns_equal_the_columns_of_each_record_validated_alone() -> None:
    rng = random.Random(3)
    records = [record(rng) for _ in range(300)]
    joint = records_columns(records, SCHEMA)
    assert joint is not None
    alone = [validate_request({"features": r}, SCHEMA).columns for r in records]
    for name in SCHEMA.names:
        expected = np.concatenate([a[name] for a in alone])
        assert joint[name].dtype == expected.dtype, name
        assert joint[name].tolist() == expected.tolist(), name


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("age", "42"),  # text for a number
        ("age", 4.0),  # a float for an integer (accepted alone, but not plainly typed)
        ("age", True),  # bool is not an int here
        ("age", 2**63),  # beyond int64
        ("tenure", 2**31),  # beyond int32
        ("balance", math.nan),
        ("balance", math.inf),
        ("balance", 2**53),  # the edge of exact doubles: checked alone
        ("balance", None),
        ("active", 1),
        ("geography", 7),
        ("geography", "x" * 10_001),
    ],
)
def test_one_record_out_of_the_ordinary_sends_everyone_back_to_one_by_one(field: str, value: object) -> None:
    rng = random.Random(5)
    records = [record(rng) for _ in range(20)]
    records[13][field] = value
    assert records_columns(records, SCHEMA) is None


def test_missing_extra_and_non_object_records_are_refused() -> None:
    rng = random.Random(9)
    good = [record(rng) for _ in range(5)]
    missing = {k: v for k, v in good[0].items() if k != "rate"}
    extra = {**good[0], "note": "hi"}
    renamed = {**missing, "rates": 0.5}  # right width, wrong name
    for bad in (missing, extra, renamed, ["not", "a", "dict"], None):
        assert records_columns([*good, bad], SCHEMA) is None
    assert records_columns([], SCHEMA) is None


def test_schemas_with_optional_or_date_fields_are_not_simple() -> None:
    assert simple_schema(SCHEMA)
    optional = FeatureSchema((Field("x", "double"), Field("note", "string", required=False)))
    dated = FeatureSchema((Field("x", "double"), Field("when", "datetime")))
    for schema, rec in ((optional, {"x": 1.0, "note": "a"}), (dated, {"x": 1.0, "when": "2026-01-01"})):
        assert not simple_schema(schema)
        assert records_columns([rec], schema) is None
