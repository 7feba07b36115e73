"""Array, object and tensor fields (MLflow's Array, Object and TensorSpec): the schema reads them from
the signature's JSON, validation checks each element and names it."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from modelward.errors import SchemaError
from modelward.schema import FeatureSchema
from modelward.validation import RequestInvalid, validate_columns, validate_request

SIGNATURE = [
    {"type": "long", "name": "user_id", "required": True},
    {"type": "array", "items": {"type": "long"}, "name": "item_ids", "required": True},
    {
        "type": "object",
        "properties": {
            "device": {"type": "string", "required": True},
            "tags": {"type": "array", "items": {"type": "string"}, "required": False},
        },
        "name": "context",
        "required": False,
    },
    {"name": "image", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2, 2]}},
]
SCHEMA = FeatureSchema.from_mlflow_inputs(json.dumps(SIGNATURE))
IMAGE = [[0.0, 1.0], [2.0, 3.0]]


def record(**changes: Any) -> dict[str, Any]:
    return {"user_id": 7, "item_ids": [3, 14], "context": {"device": "ios"}, "image": IMAGE, **changes}


def problems(body: dict[str, Any]) -> list[str]:
    with pytest.raises(RequestInvalid) as info:
        validate_request(body, SCHEMA)
    return [p.message for p in info.value.field_problems]


def test_the_schema_reads_mlflow_nested_types_and_writes_them_back() -> None:
    assert [f.describe() for f in SCHEMA.fields] == [
        "long",
        "array<long>",
        "object{device: string, tags?: array<string>}",
        "tensor<float32>[2, 2]",
    ]
    assert SCHEMA.to_dict()[1] == SIGNATURE[1]
    assert SCHEMA.to_dict()[2]["properties"] == SIGNATURE[2]["properties"]
    assert SCHEMA.to_dict()[3]["tensor-spec"] == {"dtype": "float32", "shape": [-1, 2, 2]}
    assert SCHEMA.nested_names() == ("item_ids", "context", "image")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}, "has no name"),
        ({"name": "x", "type": "tensor", "tensor-spec": {"dtype": "complex64", "shape": [-1]}}, "dtype"),
        ({"name": "x", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [3, 2]}}, "-1"),
        ({"name": "x", "type": "array", "items": {"type": "duration"}}, r"'x\[\]' has unsupported type"),
    ],
    ids=["unnamed-tensor", "tensor-dtype", "fixed-rows", "unknown-item-type"],
)
def test_signatures_modelward_cannot_serve_are_refused_by_name(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        FeatureSchema.from_mlflow_inputs([spec])


def test_nested_values_become_lists_dicts_and_arrays_of_the_declared_dtype() -> None:
    batch = validate_request({"instances": [record(), record(context=None, item_ids=[])]}, SCHEMA)
    assert batch.columns["item_ids"].tolist() == [[3, 14], []]
    assert batch.columns["context"].tolist() == [{"device": "ios"}, None]
    image = batch.columns["image"][0]
    assert image.dtype == np.float32 and image.shape == (2, 2)
    assert batch.to_frame().shape == (2, 4)


def test_every_bad_element_is_named_with_its_row_and_place() -> None:
    found = problems(
        {
            "instances": [
                record(item_ids=[1, "x"]),
                record(context={"device": "ios", "tags": ["a", 3]}),
                record(context={"os": "ios"}),
                record(image=[[1.0, 2.0], [3.0]]),
                record(item_ids=5),
            ]
        }
    )
    assert found == [
        "row 0, field 'item_ids': item 1: expected an integer, got a string (\"x\")",
        "row 4, field 'item_ids': expected a list of long values, got an integer (5)",
        "row 1, field 'context': member 'tags': item 1: expected a string, got an integer (3)",
        "row 2, field 'context': unknown member 'os' (the object may have: device, tags)",
        "row 3, field 'image': expected a tensor of shape [2, 2], a list at depth 1 has 1 items",
    ]


def test_data_nested_deeper_than_the_signature_fails_at_its_first_element() -> None:
    deep: Any = 1
    for _ in range(5000):
        deep = [deep]
    assert problems({"features": record(item_ids=deep)}) == [
        "field 'item_ids': item 0: expected an integer, got an array (a deeply nested value)"
    ]


def test_columns_may_carry_a_list_as_its_json_text() -> None:
    """How an OIP BYTES tensor or a CSV cell carries a list."""
    batch = validate_columns(
        {
            "user_id": [7],
            "item_ids": ["[3, 14]"],
            "context": ['{"device": "web"}'],
            "image": [json.dumps(IMAGE)],
        },
        SCHEMA,
    )
    assert batch.columns["item_ids"].tolist() == [[3, 14]]
    assert batch.columns["context"].tolist() == [{"device": "web"}]
    with pytest.raises(RequestInvalid, match="its JSON text"):
        validate_columns({"user_id": [7], "item_ids": ["3, 14"], "image": [IMAGE]}, SCHEMA)
