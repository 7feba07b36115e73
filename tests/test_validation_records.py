"""Many one-record requests validated together give exactly what validating each alone gives; a
record that is not plainly well typed is left out, alone, for one-by-one validation: its
neighbours' columns are made all the same."""

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


def assert_columns_of(columns: dict[str, np.ndarray], records: list[dict[str, Any]]) -> None:
    """``columns`` are what validating each of ``records`` alone gives, in order."""
    alone = [validate_request({"features": r}, SCHEMA).columns for r in records]
    for name in SCHEMA.names:
        expected = np.concatenate([a[name] for a in alone])
        assert columns[name].dtype == expected.dtype, name
        assert columns[name].tolist() == expected.tolist(), name


def joint_with(
    field: str, value: object, *, at: int, n: int, seed: int
) -> tuple[dict[str, np.ndarray], list[int], list[dict[str, Any]]]:
    """The joint columns and left-out positions of ``n`` records, the one ``at`` with ``value``."""
    rng = random.Random(seed)
    records = [record(rng) for _ in range(n)]
    records[at][field] = value
    joint = records_columns(records, SCHEMA)
    assert joint is not None
    return joint[0], joint[1], records


def test_joint_columns_equal_the_columns_of_each_record_validated_alone() -> None:
    rng = random.Random(3)
    records = [record(rng) for _ in range(300)]
    joint = records_columns(records, SCHEMA)
    assert joint is not None
    columns, odd = joint
    assert odd == []
    assert_columns_of(columns, records)


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
        ("balance", 2**53 + 1),  # beyond exact doubles
        ("balance", 2 * 10**308),  # an integer beyond the range of a double
        ("balance", -(10**400)),
        ("balance", None),
        ("balance", [1.0]),
        ("active", 1),
        ("geography", 7),
        ("geography", "x" * 10_001),
    ],
)
def test_a_record_out_of_the_ordinary_is_left_out_alone(field: str, value: object) -> None:
    columns, odd, records = joint_with(field, value, at=13, n=20, seed=5)
    assert odd == [13]
    assert_columns_of(columns, records[:13] + records[14:])


@pytest.mark.parametrize(("field", "value"), [("balance", 2**53), ("balance", -(2**53)), ("balance", 1e300)])
def test_plain_values_at_the_edge_are_taken_after_a_closer_look(field: str, value: object) -> None:
    columns, odd, records = joint_with(field, value, at=4, n=10, seed=6)
    assert odd == []
    assert_columns_of(columns, records)


def test_missing_extra_and_non_object_records_are_left_out() -> None:
    rng = random.Random(9)
    good = [record(rng) for _ in range(5)]
    missing = {k: v for k, v in good[0].items() if k != "rate"}
    extra = {**good[0], "note": "hi"}
    renamed = {**missing, "rates": 0.5}  # right width, wrong name
    for bad in (missing, extra, renamed, ["not", "a", "dict"], None):
        joint = records_columns([good[0], bad, *good[1:]], SCHEMA)
        assert joint is not None
        columns, odd = joint
        assert odd == [1]
        assert_columns_of(columns, good)
    assert records_columns([], SCHEMA) is None


def test_several_odd_records_in_several_fields_are_each_left_out() -> None:
    rng = random.Random(11)
    records = [record(rng) for _ in range(12)]
    records[2]["age"] = "x"
    records[7]["geography"] = None
    records[9]["balance"] = 10**309
    records[11] = {"age": 1}
    columns, odd = records_columns(records, SCHEMA) or ({}, [])
    assert odd == [2, 7, 9, 11]
    assert_columns_of(columns, [r for i, r in enumerate(records) if i not in odd])
    everyone_bad = records_columns([{"age": "x"}, None], SCHEMA)
    assert everyone_bad is not None and everyone_bad[1] == [0, 1]
    assert all(len(c) == 0 for c in everyone_bad[0].values())


def test_schemas_with_optional_or_date_fields_are_not_simple() -> None:
    assert simple_schema(SCHEMA)
    optional = FeatureSchema((Field("x", "double"), Field("note", "string", required=False)))
    dated = FeatureSchema((Field("x", "double"), Field("when", "datetime")))
    for schema, rec in ((optional, {"x": 1.0, "note": "a"}), (dated, {"x": 1.0, "when": "2026-01-01"})):
        assert not simple_schema(schema)
        assert records_columns([rec], schema) is None
