"""The answer to a REST prediction, its body and its headers, for every path that answers one.

The server's protocol and the ASGI fast path (through :mod:`modelward.serving.lane`), the turn's
joint answers (:mod:`modelward.serving.hot`) and the FastAPI route (:mod:`modelward.serving.rest`)
all render with these functions, so an answer has the same bytes whichever way it went.

The body is ``{"model", "version", "alias", "arm", "predictions": [{"request_id", "prediction",
"probabilities"?}, ...]}``. When every row went to one arm, ``version``, ``alias`` and ``arm`` say
which; when a request's rows were split across arms (per-row routing keys) they are null and each
prediction carries its own ``arm`` and ``version``. The body is built as the response head
(:func:`body_head`, made once per answer or per turn) followed by the rows: the joint path renders
one row per request without serialising the head again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from modelward.serving.outcome import Outcome
from modelward.serving.wire import BAD_HEADER_VALUE, header_block

__all__ = [
    "JSON_HEADER",
    "body_head",
    "header_block",
    "one_row_bodies",
    "prediction_body",
    "prediction_headers",
    "prediction_rows",
]

JSON_HEADER = (b"content-type", b"application/json")
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def prediction_headers(
    version: str | None, arm: str | None, request_id: str | None
) -> list[tuple[bytes, bytes]]:
    """JSON, the version and arm that answered (when one arm did), and the request id (when the
    answer has one, and it has no control character: a client's id is then in the body only)."""
    headers = [JSON_HEADER]
    if version is not None and arm is not None:
        headers.append((b"x-model-version", version.encode()))
        headers.append((b"x-model-arm", arm.encode()))
    if request_id is not None:
        value = request_id.encode()
        if not BAD_HEADER_VALUE.search(value):
            headers.append((b"x-request-id", value))
    return headers


def body_head(model: str, version: str | None, alias: str | None, arm: str | None) -> bytes:
    """The body up to its predictions list: ``{"model": ..., "predictions":`` (the rows and ``}`` follow)."""
    head = orjson.dumps({"model": model, "version": version, "alias": alias, "arm": arm, "predictions": 0})
    return head[:-2]  # without the placeholder and the closing brace


def prediction_rows(
    ids: Sequence[str],
    labels: Sequence[Any],
    probabilities: np.ndarray | None,
    classes: Sequence[Any],
    named: tuple[str, int] | None = None,
) -> list[dict[str, Any]]:
    """One ``{"request_id", "prediction", "probabilities"?}`` per row; ``named`` (member, column):
    also the positive-class probability under the name registered for it."""
    if probabilities is None:
        return [{"request_id": rid, "prediction": v} for rid, v in zip(ids, labels, strict=True)]
    names = [str(c) for c in classes]
    rows = [
        {"request_id": rid, "prediction": v, "probabilities": dict(zip(names, probs, strict=True))}
        for rid, v, probs in zip(ids, labels, probabilities.tolist(), strict=True)
    ]
    if named is not None:
        member, column = named
        for row, p in zip(rows, probabilities[:, column].tolist(), strict=True):
            row[member] = p
    return rows


def prediction_body(outcome: Outcome) -> bytes:
    """The whole body of one request's answer."""
    served = outcome.served
    named = served.model.named_probability
    rows = prediction_rows(outcome.request_ids, outcome.labels, outcome.probabilities, outcome.classes, named)
    if len(outcome.parts) > 1:  # split across arms: each row says which answered it
        for row, arm, version in zip(rows, outcome.row_arms(), outcome.row_versions(), strict=True):
            row["arm"], row["version"] = arm, version
        head = body_head(served.model.name, None, None, None)
    else:
        head = body_head(served.model.name, served.version, served.alias, outcome.arm)
    return head + orjson.dumps(rows, option=_OPTIONS) + b"}"


def one_row_bodies(head: bytes, rows: list[dict[str, Any]]) -> list[bytes]:
    """The bodies of requests of one row each, answered by the same version and arm (``head``)."""
    head += b"["
    dumps = orjson.dumps
    return [head + dumps(row, option=_OPTIONS) + b"]}" for row in rows]
