"""The Open Inference Protocol (v2, KServe/Triton) over HTTP: tensors in, tensors out.

JSON tensors and the binary tensor extension (``Inference-Header-Content-Length``) are both
understood, so off-the-shelf clients such as tritonclient work with their defaults.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from modelward.errors import RequestFault
from modelward.schema import FeatureSchema
from modelward.validation import MAX_REQUEST_ID_LENGTH, FieldProblem, RequestInvalid, parse_json

__all__ = [
    "DATATYPES",
    "INFER_REQUEST",
    "InferRequest",
    "encode_response",
    "parse_infer_request",
    "tensor_metadata",
]

# Signature types -> OIP datatypes.
DATATYPES = {
    "long": "INT64",
    "integer": "INT32",
    "double": "FP64",
    "float": "FP32",
    "boolean": "BOOL",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}
_NUMPY = {
    "BOOL": np.bool_,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


_PARAMETERS: dict[str, Any] = {"type": "object", "additionalProperties": True}
# The JSON form of an infer request, for the OpenAPI document: parse_infer_request checks by hand.
INFER_REQUEST: dict[str, Any] = {
    "title": "InferRequest",
    "type": "object",
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 128},
        "inputs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "datatype": {"type": "string", "enum": sorted({*_NUMPY, "BYTES"})},
                    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}, "maxItems": 2},
                    "data": {"type": "array"},
                    "parameters": _PARAMETERS,
                },
                "required": ["name", "datatype", "shape", "data"],
            },
        },
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "parameters": _PARAMETERS},
                "required": ["name"],
            },
        },
        "parameters": _PARAMETERS,
    },
    "required": ["inputs"],
}


@dataclass(frozen=True, slots=True)
class InferRequest:
    id: str | None
    columns: dict[str, list[Any] | np.ndarray]
    outputs: tuple[str, ...] | None  # requested output names, None for all
    binary_outputs: frozenset[str]  # outputs to return with the binary extension
    parameters: dict[str, Any] | None = None  # the request's own parameters (consent among them)


def _invalid(message: str, field: str | None = None, kind: RequestFault = "invalid") -> RequestInvalid:
    return RequestInvalid([FieldProblem(message, field=field)], kind=kind, title="invalid inference request")


def _decode_bytes(raw: bytes, name: str) -> list[str]:
    out: list[str] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise _invalid(f"input '{name}': truncated BYTES element", name)
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        chunk = raw[offset : offset + size]
        if len(chunk) != size:
            raise _invalid(f"input '{name}': truncated BYTES element", name)
        try:
            out.append(chunk.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise _invalid(f"input '{name}': BYTES element is not UTF-8", name) from exc
        offset += size
    return out


_MAX_NESTING = 2  # a tensor here is one column: [n] or [n, 1], so data is nested two lists deep at most


def _flatten(data: Any, name: str) -> list[Any]:
    """The tensor's values in row-major order; data nested deeper than a column can be is refused
    (a loop, not recursion: a client may nest it a thousand deep)."""
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = data
    for _ in range(_MAX_NESTING - 1):
        if any(isinstance(v, list) for v in flat):
            flat = [x for v in flat for x in (v if isinstance(v, list) else (v,))]
    if any(isinstance(v, list) for v in flat):
        raise _invalid(f"input '{name}': 'data' is nested deeper than a tensor of one column", name)
    return flat


def parse_infer_request(body: bytes, header_length: str | None) -> InferRequest:
    """Parse an infer request body (JSON, or JSON header + binary tensors)."""
    if header_length is not None:
        try:
            size = int(header_length)
        except ValueError as exc:
            raise _invalid("Inference-Header-Content-Length is not an integer", kind="malformed") from exc
        if not 0 < size <= len(body):
            raise _invalid("Inference-Header-Content-Length is out of range", kind="malformed")
        payload, binary = parse_json(body[:size]), body[size:]
    else:
        payload, binary = parse_json(body), b""
    if not isinstance(payload, dict):
        raise _invalid("the body must be a JSON object with an 'inputs' list")
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise _invalid("'inputs' must be a non-empty list of tensors")
    columns: dict[str, list[Any] | np.ndarray] = {}
    offset = 0
    for i, tensor in enumerate(inputs):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise _invalid(f"input {i} must be an object with a 'name'")
        name = tensor["name"]
        datatype = tensor.get("datatype")
        if not isinstance(datatype, str):
            raise _invalid(f"input '{name}': 'datatype' must be a string such as \"FP64\"", name)
        shape = tensor.get("shape")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise _invalid(f"input '{name}': 'shape' must be a list of non-negative integers", name)
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise _invalid(f"input '{name}': shape {shape} is not one column ([n] or [n, 1])", name)
        count = math.prod(shape)
        params = tensor.get("parameters") or {}
        nbytes = params.get("binary_data_size") if isinstance(params, dict) else None
        if nbytes is not None:
            if type(nbytes) is not int or nbytes < 0 or offset + nbytes > len(binary):
                raise _invalid(f"input '{name}': binary_data_size exceeds the body", name, kind="malformed")
            raw = binary[offset : offset + nbytes]
            offset += nbytes
            if datatype == "BYTES":
                values: list[Any] | np.ndarray = _decode_bytes(raw, name)
            elif datatype in _NUMPY:
                dtype = np.dtype(_NUMPY[datatype]).newbyteorder("<")
                if nbytes % dtype.itemsize:
                    raise _invalid(
                        f"input '{name}': {nbytes} bytes is not a whole number of {datatype}", name
                    )
                values = np.frombuffer(raw, dtype=dtype)
            else:
                raise _invalid(f"input '{name}': unknown datatype {datatype!r}", name)
        else:
            if "data" not in tensor:
                raise _invalid(f"input '{name}' has no 'data'", name)
            if datatype not in _NUMPY and datatype != "BYTES":
                raise _invalid(f"input '{name}': unknown datatype {datatype!r}", name)
            values = _flatten(tensor["data"], name)
        if len(values) != count:
            raise _invalid(f"input '{name}': shape {shape} needs {count} values, got {len(values)}", name)
        if name in columns:
            raise _invalid(f"input '{name}' is given twice", name)
        columns[name] = values
    outputs, binary_outputs = _requested_outputs(payload)
    request_id = payload.get("id")
    if request_id is not None and not (
        isinstance(request_id, str) and 0 < len(request_id) <= MAX_REQUEST_ID_LENGTH
    ):
        raise _invalid(f"'id' must be a string of 1 to {MAX_REQUEST_ID_LENGTH} characters")
    params = payload.get("parameters")
    return InferRequest(
        request_id, columns, outputs, binary_outputs, params if isinstance(params, dict) else None
    )


def _requested_outputs(payload: dict[str, Any]) -> tuple[tuple[str, ...] | None, frozenset[str]]:
    params = payload.get("parameters") or {}
    binary_all = isinstance(params, dict) and params.get("binary_data_output") is True
    requested = payload.get("outputs")
    if requested is None:
        names = None
        binary = frozenset({"predict", "predict_proba"}) if binary_all else frozenset()
        return names, binary
    if not isinstance(requested, list):
        raise _invalid("'outputs' must be a list")
    names_list: list[str] = []
    binary_set: set[str] = set()
    for item in requested:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise _invalid("each requested output must be an object with a 'name'")
        names_list.append(item["name"])
        p = item.get("parameters") or {}
        if binary_all or (isinstance(p, dict) and p.get("binary_data") is True):
            binary_set.add(item["name"])
    return tuple(names_list), frozenset(binary_set)


def _label_datatype(values: Sequence[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) for v in values):
        return "INT64"
    if all(isinstance(v, (int, float)) for v in values):
        return "FP64"
    return "BYTES"


def _encode_bytes(values: Sequence[Any]) -> bytes:
    parts = []
    for v in values:
        raw = str(v).encode("utf-8")
        parts.append(struct.pack("<I", len(raw)) + raw)
    return b"".join(parts)


def encode_response(
    *,
    model: str,
    version: str,
    request_id: str | None,
    labels: list[Any],
    probabilities: np.ndarray | None,
    requested: tuple[str, ...] | None,
    binary_outputs: frozenset[str],
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header length when binary outputs follow it."""
    if any(isinstance(v, list | dict) for v in labels[:1]):  # a list per row: BYTES of its JSON text
        labels = [orjson.dumps(v).decode() for v in labels]
    available: dict[str, tuple[str, list[int], Any]] = {
        "predict": (_label_datatype(labels), [len(labels)], labels),
    }
    if probabilities is not None:
        available["predict_proba"] = (
            "FP64",
            [int(probabilities.shape[0]), int(probabilities.shape[1])],
            probabilities,
        )
    names = list(requested) if requested is not None else list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise _invalid(f"unknown output(s) {', '.join(unknown)}; this model has {', '.join(available)}")
    outputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name in names:
        datatype, shape, data = available[name]
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
        if name in binary_outputs:
            if datatype == "BYTES":
                blob = _encode_bytes(data)
            else:
                little = np.dtype(_NUMPY[datatype]).newbyteorder("<")
                blob = np.ascontiguousarray(np.asarray(data, dtype=little)).tobytes()
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = np.asarray(data).ravel().tolist() if isinstance(data, np.ndarray) else list(data)
        outputs.append(tensor)
    body: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": outputs}
    if request_id is not None:
        body["id"] = request_id
    header = orjson.dumps(body)
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)


def tensor_metadata(
    schema: FeatureSchema, *, class_values: Sequence[Any] | None
) -> dict[str, list[dict[str, Any]]]:
    inputs = [
        {"name": f.name, "datatype": DATATYPES.get(f.type, "BYTES"), "shape": [-1]} for f in schema.fields
    ]
    label = _label_datatype(class_values) if class_values else "FP64"
    outputs: list[dict[str, Any]] = [{"name": "predict", "datatype": label, "shape": [-1]}]
    if class_values:
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(class_values)]})
    return {"inputs": inputs, "outputs": outputs}
