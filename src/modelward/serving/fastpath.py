"""The REST prediction route as raw ASGI, in front of FastAPI.

``POST /models/{name}/predict`` for a served model is answered here, without FastAPI's routing,
dependency injection and request objects, which cost more than validating and predicting a row.
It reads the body and hands it to :class:`~modelward.serving.lane.FastLane`, which the server's own
HTTP protocol also calls directly: the same lane answers, whichever way the request came in. This
path serves when the app runs under another ASGI server (or an in-process client); ``modelward
serve`` answers these requests in its protocol without ASGI. The FastAPI route stays: it documents
the typed request in /docs and answers when the fast path is off.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.types import Receive, Scope, Send

from modelward.serving.lane import FastLane, Headers
from modelward.serving.middleware import check_body_size
from modelward.serving.problems import BodyTooLarge

__all__ = ["FastPredict"]

log = logging.getLogger("modelward.serving")


class _Disconnected(Exception):
    """The client went away before sending its whole body: nothing to answer."""


class FastPredict:
    """:meth:`match` says whether a request is a REST prediction for a served model;
    :meth:`handle` answers it. :class:`~modelward.serving.app.ModelwardApp` calls both before
    anything of FastAPI's runs."""

    def __init__(self, lane: FastLane) -> None:
        self.lane = lane

    def match(self, scope: Scope) -> str | None:
        """The served model a ``POST /models/{name}/predict`` request is for, else None."""
        if scope["type"] == "http" and scope["method"] == "POST":
            return self.lane.match(scope["path"])
        return None

    async def handle(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path: str = scope["path"]
        headers: Headers = scope["headers"]
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[tuple[int, bytes, bytes]] = loop.create_future()

        def reply(status: int, head: bytes, body: bytes) -> None:
            if not answered.done():
                answered.set_result((status, head, body))

        pending = None
        try:
            body = await self._body(headers, receive)
        except _Disconnected:
            return
        except BodyTooLarge as exc:
            self.lane.refuse(name, path, headers, exc, reply, started)
        else:
            try:
                pending = self.lane.accept(name, path, headers, body, reply, started)
            except Exception as exc:  # a bug: a 500 problem, not the ASGI server's own text/plain 500
                log.exception("answering %s failed", path)
                self.lane.refuse(name, path, headers, exc, reply, started)
        try:
            status, head, body = await answered
        except asyncio.CancelledError:
            if pending is not None:
                pending.cancel()
            raise
        out: Headers = [(k, v) for k, _, v in (line.partition(b": ") for line in head.split(b"\r\n") if line)]
        out.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body})

    async def _body(self, headers: Headers, receive: Receive) -> bytes:
        limit = self.lane.max_body_bytes
        check_body_size(limit, declared=next((v for k, v in headers if k == b"content-length"), None))
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                check_body_size(limit, received=size)
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
