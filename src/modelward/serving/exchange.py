"""What the server's HTTP protocol (:mod:`modelward.serving.protocol`) keeps per REST prediction it
answers itself, and how it finds the fast lane inside the app uvicorn runs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the lane and its app are imported once the app is built, after the port opens
    from modelward.serving.lane import FastLane, Headers
    from modelward.serving.protocol import ModelwardProtocol

__all__ = ["Exchange", "find_lane"]


def find_lane(app: Any) -> FastLane | None:
    """The lane of the modelward app inside uvicorn's middleware (proxy headers, logging, the app
    that answers while the server starts), if any."""
    for _ in range(16):
        lane = getattr(getattr(app, "fast", None), "lane", None)
        if lane is not None:
            from modelward.serving.lane import FastLane  # imported by then: the app built it

            return lane if isinstance(lane, FastLane) else None
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


class _NoEvent:
    """uvicorn sets its cycle's message event on disconnect; the lane waits on nothing."""

    @staticmethod
    def set() -> None:
        return None


class Exchange:
    """One REST prediction on this connection, standing where uvicorn keeps its request cycle."""

    __slots__ = (
        "body",
        "disconnected",
        "headers",
        "keep_alive",
        "name",
        "path",
        "protocol",
        "response_complete",
        "started",
    )
    message_event = _NoEvent

    def __init__(
        self, protocol: ModelwardProtocol, name: str, path: str, headers: Headers, keep_alive: bool
    ) -> None:
        self.protocol = protocol
        self.name = name
        self.path = path
        self.headers = headers
        self.keep_alive = keep_alive
        self.body = b""
        self.started = time.perf_counter()
        self.response_complete = False
        self.disconnected = False

    def reply(self, status: int, head: bytes, body: bytes) -> None:
        self.protocol.respond(self, status, head, body)
