"""Where a loaded version's schema comes from: signature, the recorded schema, else the profile."""

from __future__ import annotations

import pandas as pd

from modelward.drift.profile import build_profile
from modelward.runtime.loader import _schema

FRAME = pd.DataFrame({"age": [30, 40, 50], "city": ["a", "b", "a"], "score": [0.1, 0.2, 0.3]})


def test_the_signature_comes_first() -> None:
    mlmodel = {"signature": {"inputs": '[{"name": "age", "type": "long"}]'}}
    record = {"schema": [{"name": "x", "type": "double"}]}
    assert _schema(mlmodel, record, build_profile(FRAME)).names == ("age",)


def test_without_a_signature_the_schema_recorded_at_registration() -> None:
    record = {"schema": [{"name": "score", "type": "double"}, {"name": "age", "type": "long"}]}
    assert _schema({}, record, build_profile(FRAME)).names == ("score", "age")


def test_a_version_registered_before_schemas_were_recorded_is_typed_by_its_profile() -> None:
    schema = _schema({}, {"features": ["age", "city", "score"]}, build_profile(FRAME))
    assert [(f.name, f.type) for f in schema.fields] == [
        ("age", "double"),
        ("city", "string"),
        ("score", "double"),
    ]
