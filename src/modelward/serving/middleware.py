"""Pure ASGI middleware: the body-size limit, request ids, and one JSON log line per request."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelward.serving.problems import PROBLEM_JSON, BodyTooLarge

__all__ = ["BodyLimit", "RequestContext", "access_log"]

access_log = logging.getLogger("modelward.access")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


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
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await self._refuse(scope, send)
                    return
                break
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        detail = f"the request body is larger than the limit of {self.max_bytes} bytes"
        body = orjson.dumps(
            {
                "type": "https://modelward.dev/problems/too-large",
                "title": "request too large",
                "status": 413,
                "detail": detail,
                "error": detail,
                "instance": scope.get("path", ""),
            }
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
            request_id = uuid.uuid4().hex
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
                line = {
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "latency_ms": round(elapsed * 1000, 3),
                    "model": state.get("model"),
                    "version": state.get("version"),
                }
                access_log.info(orjson.dumps(line).decode())
