"""Validate prediction inputs against a model's feature schema; pure (no I/O, web framework or MLflow).

:func:`validate_request` turns a parsed request body into a :class:`Batch` of typed numpy columns or
raises :class:`RequestInvalid` naming the field and row of every problem. :func:`validate_columns`, the
core, also serves Open Inference Protocol tensors and batch files. Well-typed columns take a fast path
(one type pass, one ``np.array``); per-value checks run only to word the problems.
"""

from __future__ import annotations

from modelward.validation._columns import (
    MAX_PROBLEMS,
    MAX_REQUEST_ID_LENGTH,
    MAX_STRING_LENGTH,
    Batch,
    FieldProblem,
    RequestInvalid,
    is_text,
    parse_json,
    validate_columns,
)
from modelward.validation._consent import ConsentRule
from modelward.validation._records import records_columns, simple_schema
from modelward.validation._request import validate_request

__all__ = [
    "MAX_PROBLEMS",
    "MAX_REQUEST_ID_LENGTH",
    "MAX_STRING_LENGTH",
    "Batch",
    "ConsentRule",
    "FieldProblem",
    "RequestInvalid",
    "is_text",
    "parse_json",
    "records_columns",
    "simple_schema",
    "validate_columns",
    "validate_request",
]
