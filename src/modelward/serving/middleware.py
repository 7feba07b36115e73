"""Pure ASGI middleware: the body-size limit, request ids, and one JSON log line per request."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelward.errors import BodyTooLarge
from modelward.serving.connections import check_body_size
from modelward.serving.wire import PROBLEM_JSON, problem_body

__all__ = [
    "BodyLimit",
    "RequestContext",
    "access_line",
    "access_log",
    "check_body_size",
    "new_request_id",
    "new_request_ids",
    "safe_request_id",
]

access_log = logging.getLogger("modelward.access")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# Request ids must be unique, not secret: random bits from a per-process generator seeded by the OS,
# several times cheaper than uuid4()'s system call per request.
_IDS = random.Random()  # noqa: S311
_V7 = (0x7 << 76) | (0b10 << 62)  # version 7 and the RFC 9562 variant


def new_request_id() -> str:
    """A UUIDv7 (RFC 9562) as 32 hex digits: milliseconds since the epoch, then 74 random bits.

    Ids that grow with time are inserted at the end of the prediction log's request-id index
    instead of at random places in it: each batch then touches a few index pages, not one page per
    row, which made logging a row several times cheaper (docs/prediction-log.md)."""
    bits = _IDS.getrandbits(74)
    low = ((bits >> 62) << 64) | (bits & 0x3FFFFFFFFFFFFFFF)  # 12 bits rand_a, 62 bits rand_b
    return f"{(time.time_ns() // 1_000_000) << 80 | _V7 | low:032x}"


def new_request_ids(n: int) -> list[str]:
    """``n`` ids as :func:`new_request_id` makes them, made together: one clock reading and one draw of
    random bytes for all, laid out by NumPy and hex-encoded at once."""
    if n <= 0:
        return []
    raw = np.frombuffer(_IDS.randbytes(10 * n), dtype=np.uint8).reshape(n, 10)
    ids = np.empty((n, 16), dtype=np.uint8)
    ids[:, :6] = np.frombuffer((time.time_ns() // 1_000_000).to_bytes(6, "big"), dtype=np.uint8)
    ids[:, 6] = 0x70 | (raw[:, 0] & 0x0F)  # version 7, then 12 bits of rand_a
    ids[:, 7] = raw[:, 1]
    ids[:, 8] = 0x80 | (raw[:, 2] & 0x3F)  # the RFC 9562 variant, then 62 bits of rand_b
    ids[:, 9:] = raw[:, 3:]
    text = ids.tobytes().hex()
    return [text[i : i + 32] for i in range(0, 32 * n, 32)]


def safe_request_id(candidate: str) -> str | None:
    """The client's id when it is sane (letters, digits, ._:- and at most 128 characters)."""
    return candidate if _SAFE_ID.match(candidate) else None


def access_line(
    request_id: str,
    method: str | None,
    path: str | None,
    status: int,
    elapsed: float,
    model: str | None,
    version: str | None,
) -> str:
    line = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        "request_id": request_id,
        "method": method,
        "path": path,
        "status": status,
        "latency_ms": round(elapsed * 1000, 3),
        "model": model,
        "version": version,
    }
    return orjson.dumps(line).decode()


class BodyLimit:
    """413 for bodies over ``max_bytes``, without reading them whole.

    A declared Content-Length over the limit is refused before any byte is read; a chunked body is
    counted as it streams and refused as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        try:
            check_body_size(self.max_bytes, declared=declared)
        except BodyTooLarge:
            await self._refuse(scope, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                check_body_size(self.max_bytes, received=seen)
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        detail = f"the request body is larger than the limit of {self.max_bytes} bytes"
        body = problem_body(
            413, "request too large", detail, kind="too-large", instance=scope.get("path", "")
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RequestContext:
    """Gives every request an id (the client's ``X-Request-ID`` when it is sane), echoes it in the
    response, and writes one JSON line to the ``modelward.access`` logger when the response ends."""

    def __init__(
        self, app: ASGIApp, on_response: Callable[[dict[str, Any], int, float], None] | None = None
    ) -> None:
        self.app = app
        self.on_response = on_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                candidate = value.decode("latin-1")
                if _SAFE_ID.match(candidate):
                    request_id = candidate
                break
        if request_id is None:
            request_id = new_request_id()
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            if self.on_response is not None:
                try:
                    self.on_response(state, status, elapsed)
                except Exception:  # metrics must never fail a request
                    access_log.exception("recording request metrics failed")
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    access_line(
                        request_id,
                        scope.get("method"),
                        scope.get("path"),
                        status,
                        elapsed,
                        state.get("model"),
                        state.get("version"),
                    )
                )
