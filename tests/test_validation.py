"""Prediction request validation: the three body forms, per-field rules, limits, numpy inputs."""

from __future__ import annotations

import math
import pickle
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


DROP = object()  # record(age=DROP): a record without 'age'


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
    pd.testing.assert_frame_equal(
        one.to_frame(), validate_request({"instances": [record()]}, SCHEMA).to_frame()
    )


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
    rows = [
        other(),
        other(bonus=None, children=None, member=None),
        other(bonus=DROP, children=DROP, member=DROP),
    ]
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
    batch = validate_request(
        {"inputs": {**{k: [v, v] for k, v in record().items()}, "age": [-(2**63), 2**63 - 1]}}, SCHEMA
    )
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
        {"instances": [record(), record()], "request_ids": ["a", "b"], "request_id": "req-1", "key": 17},
        SCHEMA,
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


def ins(*rows: Any) -> dict[str, Any]:
    return {"instances": list(rows)}


def bad(
    payload: object,
    status: int,
    text: str,
    field: str | None,
    row: int | None,
    *,
    id: str,
    schema: FeatureSchema = SCHEMA,
) -> Any:
    """One bad payload: the status and a message substring expected, and the field and row it names."""
    return pytest.param(payload, schema, status, text, field, row, id=id)


BAD: list[Any] = [
    # body and members
    bad(b"", 400, "empty body", None, None, id="empty-body"),
    bad(b"  \n", 400, "empty body", None, None, id="blank-body"),
    bad(b'{"features": {', 400, "malformed JSON", None, None, id="malformed-json"),
    bad(b"{'features': 1}", 400, "malformed JSON", None, None, id="single-quotes"),
    bad(b"[1, 2]", 422, "must be a JSON object, got an array", None, None, id="array-body"),
    bad("text", 422, "must be a JSON object, got a string", None, None, id="string-body"),
    bad({}, 422, "exactly one of 'features'", None, None, id="no-data-member"),
    bad(
        {"features": record(), "instances": [record()]},
        422,
        "it has 'features' and 'instances'",
        None,
        None,
        id="features-and-instances",
    ),
    bad({"features": record(), "extra": 1}, 422, "unknown member 'extra'", None, None, id="unknown-member"),
    bad(
        {"features": [record()]},
        422,
        "'features' as a list has 1 values for 9 fields",
        None,
        None,
        id="features-list",
    ),
    bad({"instances": record()}, 422, "'instances' must be a list", None, None, id="instances-object"),
    bad({"inputs": [1, 2]}, 422, "row 0 must be an object", None, 0, id="inputs-list"),
    bad({"instances": []}, 422, "no rows", None, None, id="no-instances"),
    bad({"inputs": {"age": []}}, 422, "no rows", None, None, id="empty-columns"),
    bad(ins(record(), 5), 422, "row 1 must be an object", None, 1, id="row-not-object"),
    bad({"inputs": {"age": 5}}, 422, "expected a list of values", "age", None, id="column-not-list"),
    bad(
        {"inputs": {"age": [1, 2], "balance": [1.0, 2.0], "tenure": [1]}},
        422,
        "field 'tenure' has 1 values, but the other fields have 2",
        "tenure",
        None,
        id="unequal-columns",
    ),
    bad({"inputs": {"bogus": [1]}}, 422, "unknown field 'bogus'", "bogus", None, id="unknown-column"),
    # ids and key
    bad({**ins(record()), "request_ids": ["a", "b"]}, 422, "2 for 1 rows", None, None, id="ids-length"),
    bad({**ins(record(), record()), "request_ids": ["a", "a"]}, 422, '"a" twice', None, 1, id="ids-dup"),
    bad({**ins(record()), "request_ids": [""]}, 422, "entry 0 must be a non-empty", None, 0, id="id-empty"),
    bad({**ins(record()), "request_ids": "a"}, 422, "must be a list of strings", None, None, id="ids-str"),
    bad({**ins(record()), "request_id": 5}, 422, "'request_id' must be a non-empty", None, None, id="rid"),
    bad({**ins(record()), "request_id": "x" * 129}, 422, "at most 128", None, None, id="rid-long"),
    bad({**ins(record()), "key": True}, 422, "'key' must be a string or an integer", None, None, id="key"),
    # fields
    bad(ins(record(), record(bogus=1)), 422, "unknown field 'bogus'", "bogus", 1, id="unknown-field"),
    bad({"features": record(agee=1)}, 422, "did you mean 'age'", "agee", 0, id="unknown-suggests"),
    bad(ins(record(), record(age=DROP)), 422, "row 1: missing field 'age'", "age", 1, id="missing-one"),
    bad(ins(record(age=DROP), record(age=DROP)), 422, "'age' in every row", "age", None, id="missing-all"),
    bad({"features": record(age=DROP)}, 422, "missing field 'age'", "age", 0, id="missing-features"),
    bad(
        {"inputs": {k: [v] for k, v in record(age=DROP).items()}},
        422,
        "missing field 'age'",
        "age",
        None,
        id="missing-column",
    ),
    bad(
        ins(record(), record(), record(age=None)),
        422,
        "row 2, field 'age': null is not allowed",
        "age",
        2,
        id="null-required",
    ),
    bad(ins(record(age="abc")), 422, 'expected an integer, got a string ("abc")', "age", 0, id="str-int"),
    bad(ins(record(age=3.5)), 422, "expected an integer, got 3.5", "age", 0, id="fractional-int"),
    bad(ins(record(age=True)), 422, "expected an integer, got a boolean (true)", "age", 0, id="bool-int"),
    bad(ins(record(tenure=2**31)), 422, "out of range for a 32-bit integer", "tenure", 0, id="int32"),
    bad(ins(record(tenure=-(2**31) - 1)), 422, "32-bit", "tenure", 0, id="int32-low"),
    bad(ins(record(age=2**63)), 422, "out of range for a 64-bit integer", "age", 0, id="int64"),
    bad(ins(record(age=1e19)), 422, "out of range for a 64-bit integer", "age", 0, id="int64-float"),
    bad(ins(record(balance="1.5")), 422, 'expected a number, got a string ("1.5")', "balance", 0, id="str-n"),
    bad(ins(record(balance=False)), 422, "expected a number, got a boolean", "balance", 0, id="bool-num"),
    bad(ins(record(balance=[1])), 422, "expected a number, got an array ([1])", "balance", 0, id="list-num"),
    bad(ins(record(balance={"a": 1})), 422, "got an object", "balance", 0, id="object-number"),
    bad(b'{"instances": [{"balance": NaN}]}', 422, "NaN is not allowed", "balance", 0, id="nan"),
    bad(b'{"features": {"rate": -Infinity}}', 422, "-Infinity is not allowed", "rate", 0, id="-inf"),
    bad(b'{"features": {"salary": 1e400}}', 422, "Infinity is not allowed", "salary", 0, id="1e400"),
    bad(ins(record(geography=5)), 422, "expected a string, got an integer (5)", "geography", 0, id="num-str"),
    bad(ins(record(geography=None)), 422, "null is not allowed", "geography", 0, id="null-string"),
    bad(ins(record(note="x" * 10_001)), 422, "longer than the limit of 10000", "note", 0, id="long-str"),
    bad(
        {"features": other(active=1)},
        422,
        "expected true or false, got an integer",
        "active",
        0,
        id="bool",
        schema=OTHER,
    ),
    bad({"features": other(opened="yesterday")}, 422, "ISO 8601", "opened", 0, id="datetime", schema=OTHER),
    bad({"features": other(blob=5)}, 422, "expected a string", "blob", 0, id="binary", schema=OTHER),
    bad(
        {"features": other(bonus="x")},
        422,
        "expected a number",
        "bonus",
        0,
        id="optional-still-typed",
        schema=OTHER,
    ),
]


@pytest.mark.parametrize(("payload", "schema", "status", "text", "field", "row"), BAD)
def test_bad_payloads_are_named(
    payload: object, schema: FeatureSchema, status: int, text: str, field: str | None, row: int | None
) -> None:
    exc = problems_of(payload, schema)
    assert exc.kind == {422: "invalid", 400: "malformed", 413: "too-large"}[status]
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
    assert exc.field_problems[0].message == "field 'age': expected an integer, got a string (\"x\")"
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
    exc = column_problems(columns)
    assert len(exc.field_problems) == MAX_PROBLEMS + 1
    assert exc.field_problems[-1].message == f"... and {200 - MAX_PROBLEMS} more"


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
    assert info.value.kind == "malformed"
    assert info.value.field_problems[0].message.startswith("malformed JSON: unexpected character")


def test_too_many_rows_is_413_without_reading_a_row() -> None:
    class Untouchable(list[Any]):
        def __iter__(self) -> Any:
            raise AssertionError("rows were read")

    rows = Untouchable(range(1_000_001))
    exc = problems_of({"instances": rows}, SCHEMA)
    assert exc.kind == "too-large"
    assert exc.field_problems[0].message == "1000001 rows, more than the limit of 10000"
    columns = {"age": Untouchable(range(20_001)), "bogus": 1}
    exc = problems_of({"inputs": columns}, SCHEMA, max_rows=20_000)
    assert exc.kind == "too-large"
    assert len(exc.field_problems) == 1


def test_max_rows_is_configurable() -> None:
    assert validate_request(ins(record(), record()), SCHEMA, max_rows=2).n_rows == 2
    assert problems_of(ins(record(), record(), record()), SCHEMA, max_rows=2).kind == "too-large"


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
    exc = column_problems(
        numpy_columns(age=np.array([1.0, 2.5, 3.0, np.nan, np.inf]), tenure=np.full(5, 3e9))
    )
    messages = {(p.field, p.row): p.message for p in exc.field_problems}
    assert messages[("age", 1)] == "row 1, field 'age': expected an integer, got 2.5"
    assert messages[("age", 3)] == "row 3, field 'age': NaN is not allowed"
    assert messages[("age", 4)] == "row 4, field 'age': Infinity is not allowed"
    assert ("age", 0) not in messages
    assert "out of range for a 32-bit integer" in messages[("tenure", 0)]


def test_numpy_nan_in_a_required_double_names_rows() -> None:
    exc = column_problems(numpy_columns(balance=np.array([1.0, np.nan, 2.0, np.nan, 3.0])))
    assert [(p.field, p.row) for p in exc.field_problems] == [("balance", 1), ("balance", 3)]


def test_numpy_nan_in_an_optional_field_is_a_null() -> None:
    columns = {k: np.array([v, v]) for k, v in other().items()}
    columns["bonus"] = np.array([np.nan, 1.0])
    columns["children"] = np.array([np.nan, 2.0])
    batch = validate_columns(columns, OTHER)
    assert math.isnan(batch.columns["bonus"][0])
    assert batch.columns["children"].dtype == np.float64


def test_numpy_array_of_the_wrong_kind_is_one_problem() -> None:
    exc = column_problems(numpy_columns(age=np.ones(5, dtype=bool)))
    assert [p.message for p in exc.field_problems] == [
        "field 'age': expected long values, got an array of bool"
    ]


def test_numpy_uint64_beyond_int64_is_out_of_range() -> None:
    exc = column_problems(numpy_columns(age=np.array([1, 2, 3, 4, 2**64 - 1], dtype=np.uint64)))
    assert find(exc, "out of range for a 64-bit integer").row == 4


def test_numpy_text_array_is_checked_value_by_value() -> None:
    exc = column_problems(numpy_columns(balance=np.array(["1", "2", "3", "4", "5"])))
    assert find(exc, 'expected a number, got a string ("1")').row == 0


def column_problems(columns: Any, schema: FeatureSchema = SCHEMA, **kwargs: Any) -> RequestInvalid:
    with pytest.raises(RequestInvalid) as info:
        validate_columns(columns, schema, **kwargs)
    return info.value


def test_validate_columns_names_unknown_and_non_list_columns() -> None:
    exc = column_problems({"age": (1, 2), "bogus": [1, 2], "balance": "12"})
    messages = [p.message for p in exc.field_problems]
    assert "unknown field 'bogus'" in messages
    assert "field 'balance': expected a list of values, got a string (\"12\")" in messages
    two_d = column_problems(numpy_columns(age=np.ones((5, 2))))
    assert find(two_d, "expected a list of values, got an array of shape (5, 2)").field == "age"


def test_validate_columns_limits() -> None:
    assert column_problems({}).field_problems[0].message == "no rows"
    assert column_problems(numpy_columns(), max_rows=4).kind == "too-large"
    assert validate_columns(numpy_columns(), SCHEMA, max_rows=5).n_rows == 5


def test_validate_columns_accepts_tuples() -> None:
    columns = {k: tuple(v.tolist()) for k, v in numpy_columns().items()}
    assert validate_columns(columns, SCHEMA).columns["age"].tolist() == [42] * 5


def test_validate_columns_missing_required_column() -> None:
    columns = numpy_columns()
    del columns["age"], columns["note"]
    exc = column_problems(columns)
    assert [p.to_dict() for p in exc.field_problems] == [{"message": "missing field 'age'", "field": "age"}]


def test_pandas_text_column_with_missing_values() -> None:
    """pandas 3 marks a missing string with NaN: a null in an optional field, 'null' in a required one."""
    columns = numpy_columns(note=pd.Series(["a", None, "c", None, "e"]).to_numpy())
    assert validate_columns(columns, SCHEMA).columns["note"].tolist() == ["a", None, "c", None, "e"]
    columns["geography"] = columns.pop("note")
    exc = column_problems(columns)
    assert [p.message for p in exc.field_problems] == [
        "row 1, field 'geography': null is not allowed",
        "row 3, field 'geography': null is not allowed",
    ]


# -- the error type ------------------------------------------------------------------------------


def test_field_problem_to_dict_omits_missing_members() -> None:
    assert FieldProblem("malformed JSON: x").to_dict() == {"message": "malformed JSON: x"}
    assert FieldProblem("m", "age", 0).to_dict() == {"message": "m", "field": "age", "row": 0}


def test_request_invalid_is_a_schema_error_and_pickles() -> None:
    exc = RequestInvalid([FieldProblem("no rows"), FieldProblem("x", "age", 1)], kind="too-large", title="t")
    assert isinstance(exc, SchemaError)
    assert isinstance(exc, ValueError)
    assert exc.problems == ("no rows", "x")
    assert str(exc) == "no rows; x"
    copy = pickle.loads(pickle.dumps(exc))
    assert (copy.field_problems, copy.kind, copy.title) == (exc.field_problems, "too-large", "t")
    default = RequestInvalid([FieldProblem("x")])
    assert (default.kind, default.title) == ("invalid", "invalid prediction request")


# -- size ----------------------------------------------------------------------------------------


def test_ten_thousand_rows_validate_in_order() -> None:
    rows = [record(age=i, balance=i * 1.5, note=None if i % 3 else "n") for i in range(10_000)]
    batch = validate_request({"instances": rows}, SCHEMA)
    assert batch.n_rows == 10_000
    assert batch.columns["age"][-1] == 9_999
