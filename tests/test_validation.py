"""Prediction request validation: the three body forms, per-field rules, limits, numpy inputs."""

from __future__ import annotations

import math
import pickle
import time
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelward.errors import SchemaError
from modelward.schema import FeatureSchema, Field
from modelward.validation import (
    MAX_PROBLEMS,
    Batch,
    FieldProblem,
    RequestInvalid,
    parse_json,
    validate_columns,
    validate_request,
)

SCHEMA = FeatureSchema(
    (
        Field("age", "long"),
        Field("balance", "double"),
        Field("tenure", "integer"),
        Field("products", "integer"),
        Field("score", "long"),
        Field("salary", "double"),
        Field("rate", "float"),
        Field("geography", "string"),
        Field("note", "string", required=False),
    )
)
OTHER = FeatureSchema(
    (
        Field("age", "long"),
        Field("active", "boolean"),
        Field("opened", "datetime"),
        Field("blob", "binary"),
        Field("bonus", "double", required=False),
        Field("children", "long", required=False),
        Field("member", "boolean", required=False),
    )
)


def record(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "age": 42,
        "balance": 1234.5,
        "tenure": 3,
        "products": 2,
        "score": 650,
        "salary": 50_000,
        "rate": 0.25,
        "geography": "France",
        "note": "vip",
    }
    row.update(changes)
    return {k: v for k, v in row.items() if v is not DROP}


DROP = object()


def other(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "age": 30,
        "active": True,
        "opened": "2024-05-01T12:00:00+00:00",
        "blob": "aGVsbG8=",
        "bonus": 1.5,
        "children": 2,
        "member": False,
    }
    row.update(changes)
    return {k: v for k, v in row.items() if v is not DROP}


def problems_of(payload: object, schema: FeatureSchema = SCHEMA, **kwargs: Any) -> RequestInvalid:
    with pytest.raises(RequestInvalid) as info:
        if isinstance(payload, bytes):
            payload = parse_json(payload)
        validate_request(payload, schema, **kwargs)
    return info.value


def find(exc: RequestInvalid, text: str) -> FieldProblem:
    matches = [p for p in exc.field_problems if text in p.message]
    assert matches, f"no problem mentions {text!r}: {[p.message for p in exc.field_problems]}"
    return matches[0]


# -- valid input --------------------------------------------------------------------------------


def test_three_forms_give_the_same_frame() -> None:
    rows = [record(), record(age=50, note=None, balance=0), record(age=18, geography="Spain")]
    columns = {name: [row.get(name) for row in rows] for name in SCHEMA.names}
    by_instances = validate_request({"instances": rows}, SCHEMA).to_frame()
    by_inputs = validate_request({"inputs": columns}, SCHEMA).to_frame()
    pd.testing.assert_frame_equal(by_instances, by_inputs)
    assert list(by_instances.columns) == list(SCHEMA.names)
    assert by_instances["age"].tolist() == [42, 50, 18]


def test_features_form_is_one_row_like_a_single_instance() -> None:
    one = validate_request({"features": record()}, SCHEMA)
    assert one.n_rows == 1
    pd.testing.assert_frame_equal(one.to_frame(), validate_request({"instances": [record()]}, SCHEMA).to_frame())


def test_columns_are_numpy_arrays_in_schema_order() -> None:
    batch = validate_request({"instances": [record(), record()]}, SCHEMA)
    assert isinstance(batch, Batch)
    assert list(batch.columns) == list(SCHEMA.names)
    assert batch.columns["age"].dtype == np.int64
    assert batch.columns["balance"].dtype == np.float64
    assert batch.columns["salary"].dtype == np.float64  # an integer in a double field
    assert batch.columns["geography"].dtype == object
    assert all(len(col) == 2 for col in batch.columns.values())


def test_optional_fields_may_be_null_or_absent() -> None:
    rows = [other(), other(bonus=None, children=None, member=None), other(bonus=DROP, children=DROP, member=DROP)]
    batch = validate_request({"instances": rows}, OTHER)
    assert batch.columns["bonus"][0] == 1.5
    assert np.isnan(batch.columns["bonus"][1:]).all()
    assert batch.columns["children"].dtype == np.float64  # nulls in an integer field
    assert batch.columns["children"][0] == 2.0
    assert batch.columns["member"].dtype == object
    assert batch.columns["member"].tolist() == [False, None, None]
    notes = validate_request({"instances": [record(note=None), record(note=DROP)]}, SCHEMA).columns["note"]
    assert notes.tolist() == [None, None]


def test_optional_field_absent_everywhere_is_null() -> None:
    batch = validate_request({"inputs": {k: [v] for k, v in record(note=DROP).items()}}, SCHEMA)
    assert batch.columns["note"].tolist() == [None]


def test_integral_float_is_accepted_for_an_integer_field() -> None:
    batch = validate_request({"features": record(age=3.0, tenure=5.0)}, SCHEMA)
    assert batch.columns["age"].dtype == np.int64
    assert batch.columns["age"].tolist() == [3]
    assert batch.columns["tenure"].tolist() == [5]


def test_long_accepts_the_int64_extremes() -> None:
    batch = validate_request({"inputs": {**{k: [v, v] for k, v in record().items()}, "age": [-(2**63), 2**63 - 1]}}, SCHEMA)
    assert batch.columns["age"].tolist() == [-(2**63), 2**63 - 1]


def test_boolean_datetime_and_binary_fields() -> None:
    batch = validate_request({"instances": [other(), other(opened="2024-05-02")]}, OTHER)
    assert batch.columns["active"].dtype == bool
    assert batch.columns["opened"].tolist() == [
        datetime.fromisoformat("2024-05-01T12:00:00+00:00"),
        datetime(2024, 5, 2),
    ]
    assert batch.columns["blob"].tolist() == ["aGVsbG8=", "aGVsbG8="]


def test_request_ids_request_id_and_key_are_kept() -> None:
    batch = validate_request(
        {"instances": [record(), record()], "request_ids": ["a", "b"], "request_id": "req-1", "key": 17}, SCHEMA
    )
    assert batch.request_ids == ("a", "b")
    assert batch.request_id == "req-1"
    assert batch.key == "17"
    plain = validate_request({"features": record(), "params": {"anything": 1}}, SCHEMA)
    assert (plain.request_ids, plain.request_id, plain.key) == (None, None, None)


def test_parse_json_reads_a_body() -> None:
    assert parse_json(b'{"features": {"age": 1}}') == {"features": {"age": 1}}


# -- to_frame -------------------------------------------------------------------------------------


def test_to_frame_keeps_dtypes() -> None:
    frame = validate_request({"instances": [other(), other()]}, OTHER).to_frame()
    assert frame["age"].dtype == np.int64
    assert frame["children"].dtype == np.int64  # no nulls in this batch
    assert frame["bonus"].dtype == np.float64
    assert frame["active"].dtype == bool
    assert frame["blob"].dtype == object
    with_nulls = validate_request({"instances": [other(), other(children=None)]}, OTHER).to_frame()
    assert with_nulls["children"].dtype == np.float64
    assert math.isnan(with_nulls["children"][1])
    strings = validate_request({"features": record()}, SCHEMA).to_frame()
    assert strings["geography"].dtype == object
    assert list(strings.columns) == list(SCHEMA.names)


# -- problems ---------------------------------------------------------------------------------------


def ins(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"instances": list(rows)}


BAD: list[Any] = [
    # body and members
    pytest.param(b"", 400, "empty body", None, None, id="empty-body"),
    pytest.param(b"  \n", 400, "empty body", None, None, id="blank-body"),
    pytest.param(b'{"features": {', 400, "malformed JSON", None, None, id="malformed-json"),
    pytest.param(b"{'features': 1}", 400, "malformed JSON", None, None, id="single-quotes"),
    pytest.param(b"[1, 2]", 422, "must be a JSON object, got an array", None, None, id="array-body"),
    pytest.param("text", 422, "must be a JSON object, got a string", None, None, id="string-body"),
    pytest.param({}, 422, "exactly one of 'features'", None, None, id="no-data-member"),
    pytest.param(
        {"features": record(), "instances": [record()]}, 422, "it has 'features' and 'instances'", None, None,
        id="features-and-instances",
    ),
    pytest.param({"features": record(), "extra": 1}, 422, "unknown member 'extra'", None, None, id="unknown-member"),
    pytest.param({"features": [record()]}, 422, "'features' must be an object", None, None, id="features-list"),
    pytest.param({"instances": record()}, 422, "'instances' must be a list", None, None, id="instances-object"),
    pytest.param({"inputs": [1, 2]}, 422, "'inputs' must be an object", None, None, id="inputs-list"),
    pytest.param({"instances": []}, 422, "no rows", None, None, id="no-instances"),
    pytest.param({"inputs": {"age": []}}, 422, "no rows", None, None, id="empty-columns"),
    pytest.param(ins(record(), 5), 422, "row 1 must be an object", None, 1, id="row-not-object"),
    pytest.param({"inputs": {"age": 5}}, 422, "expected a list of values", "age", None, id="column-not-list"),
    pytest.param(
        {"inputs": {"age": [1, 2], "balance": [1.0, 2.0], "tenure": [1]}}, 422,
        "field 'tenure' has 1 values, but the other fields have 2", "tenure", None, id="unequal-columns",
    ),
    # ids and key
    pytest.param({**ins(record()), "request_ids": ["a", "b"]}, 422, "2 for 1 rows", None, None, id="ids-length"),
    pytest.param({**ins(record(), record()), "request_ids": ["a", "a"]}, 422, '"a" twice', None, 1, id="ids-dup"),
    pytest.param({**ins(record()), "request_ids": [""]}, 422, "entry 0 must be a non-empty", None, 0, id="id-empty"),
    pytest.param({**ins(record()), "request_ids": "a"}, 422, "must be a list of strings", None, None, id="ids-str"),
    pytest.param({**ins(record()), "request_id": 5}, 422, "'request_id' must be a non-empty", None, None, id="rid"),
    pytest.param({**ins(record()), "request_id": "x" * 129}, 422, "at most 128", None, None, id="rid-long"),
    pytest.param({**ins(record()), "key": True}, 422, "'key' must be a string or an integer", None, None, id="key"),
    # fields
    pytest.param(ins(record(), record(bogus=1)), 422, "unknown field 'bogus'", "bogus", 1, id="unknown-field"),
    pytest.param({"features": record(agee=1)}, 422, "did you mean 'age'", "agee", 0, id="unknown-suggests"),
    pytest.param(ins(record(), record(age=DROP)), 422, "row 1: missing field 'age'", "age", 1, id="missing-one"),
    pytest.param(ins(record(age=DROP), record(age=DROP)), 422, "'age' in every row", "age", None, id="missing-all"),
    pytest.param({"features": record(age=DROP)}, 422, "missing field 'age'", "age", 0, id="missing-features"),
    pytest.param(
        {"inputs": {k: [v] for k, v in record(age=DROP).items()}}, 422, "missing field 'age'", "age", None,
        id="missing-column",
    ),
    pytest.param(ins(record(), record(), record(age=None)), 422, "row 2, field 'age': null is not allowed", "age", 2,
                 id="null-required"),
    pytest.param(ins(record(age="abc")), 422, 'expected an integer, got a string ("abc")', "age", 0, id="str-int"),
    pytest.param(ins(record(age=3.5)), 422, "expected an integer, got 3.5", "age", 0, id="fractional-int"),
    pytest.param(ins(record(age=True)), 422, "expected an integer, got a boolean (true)", "age", 0, id="bool-int"),
    pytest.param(ins(record(tenure=2**31)), 422, "out of range for a 32-bit integer", "tenure", 0, id="int32"),
    pytest.param(ins(record(tenure=-(2**31) - 1)), 422, "32-bit", "tenure", 0, id="int32-low"),
    pytest.param(ins(record(age=2**63)), 422, "out of range for a 64-bit integer", "age", 0, id="int64"),
    pytest.param(ins(record(age=1e19)), 422, "out of range for a 64-bit integer", "age", 0, id="int64-float"),
    pytest.param(ins(record(balance="1.5")), 422, 'expected a number, got a string ("1.5")', "balance", 0, id="str-n"),
    pytest.param(ins(record(balance=False)), 422, "expected a number, got a boolean", "balance", 0, id="bool-num"),
    pytest.param(ins(record(balance=[1])), 422, "expected a number, got an array ([1])", "balance", 0, id="list-num"),
    pytest.param(ins(record(balance={"a": 1})), 422, "got an object", "balance", 0, id="object-number"),
    pytest.param(b'{"instances": [{"balance": NaN}]}', 422, "NaN is not allowed", "balance", 0, id="nan"),
    pytest.param(b'{"features": {"rate": -Infinity}}', 422, "-Infinity is not allowed", "rate", 0, id="-inf"),
    pytest.param(b'{"features": {"salary": 1e400}}', 422, "Infinity is not allowed", "salary", 0, id="1e400"),
    pytest.param(ins(record(geography=5)), 422, "expected a string, got an integer (5)", "geography", 0, id="num-str"),
    pytest.param(ins(record(geography=None)), 422, "null is not allowed", "geography", 0, id="null-string"),
    pytest.param(ins(record(note="x" * 10_001)), 422, "longer than the limit of 10000", "note", 0, id="long-str"),
    pytest.param({"features": other(active=1)}, 422, "expected true or false, got an integer", "active", 0, id="bool"),
    pytest.param({"features": other(opened="yesterday")}, 422, "ISO 8601", "opened", 0, id="datetime"),
    pytest.param({"features": other(blob=5)}, 422, "expected a string", "blob", 0, id="binary"),
    pytest.param({"features": other(bonus="x")}, 422, "expected a number", "bonus", 0, id="optional-still-typed"),
]  # fmt: skip


@pytest.mark.parametrize(("payload", "status", "text", "field", "row"), BAD)
def test_bad_payloads_are_named(payload: object, status: int, text: str, field: str | None, row: int | None) -> None:
    schema = OTHER if isinstance(payload, dict) and any(
        isinstance(r, dict) and "active" in r for r in [payload.get("features")]
    ) else SCHEMA
    exc = problems_of(payload, schema)
    assert exc.status == status
    problem = find(exc, text)
    assert (problem.field, problem.row) == (field, row)


def test_every_problem_is_reported_not_just_the_first() -> None:
    exc = problems_of(ins(record(age="x"), record(balance=None), record(geography=1, bogus=2)))
    fields = {(p.field, p.row) for p in exc.field_problems}
    assert {("age", 0), ("balance", 1), ("geography", 2), ("bogus", 2)} <= fields
    assert exc.problems == tuple(p.message for p in exc.field_problems)


def test_unknown_field_is_reported_once() -> None:
    exc = problems_of(ins(*[record(bogus=1) for _ in range(20)]))
    assert [p.message for p in exc.field_problems] == ["unknown field 'bogus' (first in row 0)"]


def test_missing_column_in_instances_every_row_is_one_problem() -> None:
    exc = problems_of(ins(*[record(age=DROP) for _ in range(100)]))
    assert len(exc.field_problems) == 1
    assert exc.field_problems[0].message == "missing field 'age' in every row"


def test_features_form_messages_name_no_row() -> None:
    exc = problems_of({"features": record(age="x")})
    assert exc.field_problems[0].message == 'field \'age\': expected an integer, got a string ("x")'
    assert exc.field_problems[0].row == 0


def test_value_in_message_is_truncated() -> None:
    exc = problems_of(ins(record(age="y" * 500)))
    message = exc.field_problems[0].message
    assert '"' + "y" * 40 + '"...' in message
    assert len(message) < 120


def test_problems_are_capped() -> None:
    exc = problems_of(ins(*[record(age="x") for _ in range(MAX_PROBLEMS + 30)]))
    assert len(exc.field_problems) == MAX_PROBLEMS + 1
    assert exc.field_problems[-1].message == "... and 30 more"
    assert exc.field_problems[MAX_PROBLEMS - 1].row == MAX_PROBLEMS - 1


def test_problems_are_capped_for_numpy_columns_too() -> None:
    columns = {k: np.full(200, v) for k, v in record().items()}
    columns["balance"] = np.full(200, np.nan)
    with pytest.raises(RequestInvalid) as info:
        validate_columns(columns, SCHEMA)
    assert len(info.value.field_problems) == MAX_PROBLEMS + 1
    assert info.value.field_problems[-1].message == f"... and {200 - MAX_PROBLEMS} more"


def test_nan_from_the_parse_json_fallback_names_the_row() -> None:
    body = b'{"instances": [{"balance": 1.0}, {"balance": NaN}]}'
    schema = FeatureSchema((Field("balance", "double"),))
    exc = problems_of(body, schema)
    assert [p.to_dict() for p in exc.field_problems] == [
        {"message": "row 1, field 'balance': NaN is not allowed", "field": "balance", "row": 1}
    ]


def test_malformed_json_is_a_400_with_the_parser_message() -> None:
    with pytest.raises(RequestInvalid) as info:
        parse_json(b'{"features": }')
    assert info.value.status == 400
    assert info.value.field_problems[0].message.startswith("malformed JSON: unexpected character")


def test_too_many_rows_is_413_and_cheap() -> None:
    class Untouchable(list[Any]):
        def __iter__(self) -> Any:
            raise AssertionError("rows were read")

    rows = Untouchable([None]) * 1  # a real list subclass; its length is what matters
    rows = Untouchable(range(1_000_001))
    started = time.perf_counter()
    exc = problems_of({"instances": rows}, SCHEMA)
    assert time.perf_counter() - started < 0.5
    assert exc.status == 413
    assert exc.field_problems[0].message == "1000001 rows, more than the limit of 10000"
    columns = {"age": Untouchable(range(20_001)), "bogus": 1}
    exc = problems_of({"inputs": columns}, SCHEMA, max_rows=20_000)
    assert exc.status == 413
    assert len(exc.field_problems) == 1


def test_max_rows_is_configurable() -> None:
    assert validate_request(ins(record(), record()), SCHEMA, max_rows=2).n_rows == 2
    assert problems_of(ins(record(), record(), record()), SCHEMA, max_rows=2).status == 413


# -- validate_columns and numpy -------------------------------------------------------------------


def test_validate_columns_accepts_numpy_arrays() -> None:
    n = 4
    batch = validate_columns(
        {
            "age": np.arange(n, dtype=np.int32),
            "balance": np.linspace(0, 1, n, dtype=np.float32),
            "tenure": np.array([1.0, 2.0, 3.0, 4.0]),  # integral floats
            "products": np.ones(n, dtype=np.uint8),
            "score": [600, 610, 620, 630],
            "salary": np.arange(n),  # ints for a double field
            "rate": np.zeros(n),
            "geography": np.array(["France", "Spain", "Germany", "France"]),
            "note": np.array(["a", None, "c", None], dtype=object),
        },
        SCHEMA,
    )
    assert batch.n_rows == n
    assert batch.request_ids is None
    assert {name: col.dtype for name, col in batch.columns.items()} == {
        "age": np.int64,
        "balance": np.float64,
        "tenure": np.int64,
        "products": np.int64,
        "score": np.int64,
        "salary": np.float64,
        "rate": np.float64,
        "geography": object,
        "note": object,
    }
    assert batch.columns["geography"].tolist() == ["France", "Spain", "Germany", "France"]


def numpy_columns(**changes: Any) -> dict[str, Any]:
    columns: dict[str, Any] = {k: np.array([v] * 5) for k, v in record().items()}
    columns.update(changes)
    return columns


def test_numpy_float_array_for_an_integer_field_names_bad_rows() -> None:
    with pytest.raises(RequestInvalid) as info:
        validate_columns(numpy_columns(age=np.array([1.0, 2.5, 3.0, np.nan, np.inf]), tenure=np.full(5, 3e9)), SCHEMA)
    messages = {(p.field, p.row): p.message for p in info.value.field_problems}
    assert messages[("age", 1)] == "row 1, field 'age': expected an integer, got 2.5"
    assert messages[("age", 3)] == "row 3, field 'age': NaN is not allowed"
    assert messages[("age", 4)] == "row 4, field 'age': Infinity is not allowed"
    assert ("age", 0) not in messages
    assert "out of range for a 32-bit integer" in messages[("tenure", 0)]


def test_numpy_nan_in_a_required_double_names_rows() -> None:
    with pytest.raises(RequestInvalid) as info:
        validate_columns(numpy_columns(balance=np.array([1.0, np.nan, 2.0, np.nan, 3.0])), SCHEMA)
    assert [(p.field, p.row) for p in info.value.field_problems] == [("balance", 1), ("balance", 3)]


def test_numpy_nan_in_an_optional_field_is_a_null() -> None:
    columns = {k: np.array([v, v]) for k, v in other().items()}
    columns["bonus"] = np.array([np.nan, 1.0])
    columns["children"] = np.array([np.nan, 2.0])
    batch = validate_columns(columns, OTHER)
    assert math.isnan(batch.columns["bonus"][0])
    assert batch.columns["children"].dtype == np.float64


def test_numpy_array_of_the_wrong_kind_is_one_problem() -> None:
    with pytest.raises(RequestInvalid) as info:
        validate_columns(numpy_columns(age=np.ones(5, dtype=bool)), SCHEMA)
    assert [p.message for p in info.value.field_problems] == ["field 'age': expected long values, got an array of bool"]


def test_numpy_uint64_beyond_int64_is_out_of_range() -> None:
    with pytest.raises(RequestInvalid) as info:
        validate_columns(numpy_columns(age=np.array([1, 2, 3, 4, 2**64 - 1], dtype=np.uint64)), SCHEMA)
    assert find(info.value, "out of range for a 64-bit integer").row == 4


def test_numpy_text_array_is_checked_value_by_value() -> None:
    with pytest.raises(RequestInvalid) as info:
        validate_columns(numpy_columns(balance=np.array(["1", "2", "3", "4", "5"])), SCHEMA)
    assert find(info.value, 'expected a number, got a string ("1")').row == 0


def test_validate_columns_problems() -> None:
    exc = pytest.raises(RequestInvalid, validate_columns, {"age": (1, 2), "bogus": [1, 2], "balance": "12"}, SCHEMA)
    messages = [p.message for p in exc.value.field_problems]
    assert "unknown field 'bogus'" in messages
    assert 'field \'balance\': expected a list of values, got a string ("12")' in messages
    two_d = pytest.raises(RequestInvalid, validate_columns, numpy_columns(age=np.ones((5, 2))), SCHEMA)
    assert find(two_d.value, "expected a list of values, got an array of shape (5, 2)").field == "age"
    missing = pytest.raises(RequestInvalid, validate_columns, numpy_columns(age=DROP) | {"age": [1] * 5}, SCHEMA)
    assert missing.value.status == 422
    no_rows = pytest.raises(RequestInvalid, validate_columns, {}, SCHEMA)
    assert no_rows.value.field_problems[0].message == "no rows"
    too_many = pytest.raises(RequestInvalid, validate_columns, numpy_columns(), SCHEMA, max_rows=4)
    assert too_many.value.status == 413


def test_validate_columns_missing_required_column() -> None:
    columns = numpy_columns()
    del columns["age"], columns["note"]
    exc = pytest.raises(RequestInvalid, validate_columns, columns, SCHEMA).value
    assert [p.to_dict() for p in exc.field_problems] == [{"message": "missing field 'age'", "field": "age"}]


# -- the error type ------------------------------------------------------------------------------


def test_field_problem_to_dict_omits_missing_members() -> None:
    assert FieldProblem("malformed JSON: x").to_dict() == {"message": "malformed JSON: x"}
    assert FieldProblem("m", "age", 0).to_dict() == {"message": "m", "field": "age", "row": 0}


def test_request_invalid_is_a_schema_error_and_pickles() -> None:
    exc = RequestInvalid([FieldProblem("no rows"), FieldProblem("x", "age", 1)], status=413, title="t")
    assert isinstance(exc, SchemaError)
    assert isinstance(exc, ValueError)
    assert exc.problems == ("no rows", "x")
    assert str(exc) == "no rows; x"
    copy = pickle.loads(pickle.dumps(exc))
    assert (copy.field_problems, copy.status, copy.title) == (exc.field_problems, 413, "t")
    default = RequestInvalid([FieldProblem("x")])
    assert (default.status, default.title) == (422, "invalid prediction request")


# -- speed ---------------------------------------------------------------------------------------


def test_ten_thousand_rows_validate_quickly() -> None:
    rows = [record(age=i, balance=i * 1.5, note=None if i % 3 else "n") for i in range(10_000)]
    validate_request({"instances": rows}, SCHEMA)  # warm up
    started = time.perf_counter()
    batch = validate_request({"instances": rows}, SCHEMA)
    elapsed = time.perf_counter() - started
    assert batch.n_rows == 10_000
    assert batch.columns["age"][-1] == 9_999
    assert elapsed < 1.0, f"10,000 rows took {elapsed:.3f} s"
