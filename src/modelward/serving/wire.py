"""Bytes on the wire that need no web framework: problem+json bodies and header lines.

The server's HTTP protocol (:mod:`modelward.serving.protocol`) and the app that answers while the
server starts (:mod:`modelward.serving.starting`) write these before FastAPI is imported; the
FastAPI handlers (:mod:`modelward.serving.problems`) and the prediction paths use the same ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

__all__ = ["BAD_HEADER_VALUE", "PROBLEM_JSON", "header_block", "problem_body"]

PROBLEM_JSON = "application/problem+json"
_TYPE_BASE = "https://modelward.dev/problems/"
# A header value must not carry control characters (they would split the response): a client's
# request id with one is answered in the body only.
BAD_HEADER_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def header_block(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Header lines as bytes; a value with a control character is left out."""
    return b"".join(
        name + b": " + value + b"\r\n" for name, value in headers if not BAD_HEADER_VALUE.search(value)
    )


def problem_body(
    status: int,
    title: str,
    detail: str,
    *,
    kind: str | None = None,
    instance: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    body: dict[str, Any] = {
        "type": _TYPE_BASE + kind if kind else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "error": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    try:
        return orjson.dumps(body)
    except TypeError:  # a string that is not Unicode text (a lone surrogate): escaped, still an answer
        return orjson.dumps(_as_text(body))


def _as_text(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, Mapping):
        return {_as_text(str(k)): _as_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_text(v) for v in value]
    if (
        value is None
        or isinstance(value, bool | float)
        or (isinstance(value, int) and -(2**63) <= value < 2**64)
    ):
        return value
    return _as_text(str(value))
