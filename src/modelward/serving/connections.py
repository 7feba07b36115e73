"""What one connection may hold, and the answers that refuse it.

:class:`ConnectionLimits` carries the ``MODELWARD_`` settings of the same names to the server's
HTTP protocol (:mod:`modelward.serving.protocol`), which enforces them on every route:
connections per worker (503 beyond), the size of a request's line and headers (431), the time its
headers and its body may take (408), and the time a connection may sit idle (closed). The
protocol writes those refusals itself, as problem+json, before any app sees the request.
"""

from __future__ import annotations

import http
from dataclasses import dataclass

from modelward.config import Settings
from modelward.errors import BodyTooLarge
from modelward.serving.wire import PROBLEM_JSON, problem_body

__all__ = ["STATUS_LINE", "ConnectionLimits", "check_body_size", "refusal"]


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Per worker process; docs/serving.md, "Connections"."""

    max_connections: int = 2048
    max_header_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            max_connections=settings.max_connections,
            max_header_bytes=settings.max_header_bytes,
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            keep_alive_timeout=settings.keep_alive_timeout,
        )


def _status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase.encode()
    except ValueError:
        phrase = b""
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase)


STATUS_LINE = {status: _status_line(status) for status in range(100, 600)}
_HEAD = b"content-type: " + PROBLEM_JSON.encode() + b"\r\n"
_CLOSE = b"connection: close\r\n"


def refusal(status: int, title: str, detail: str, kind: str, head: bytes = b"") -> tuple[bytes, bytes]:
    """The header lines (``head`` among them) and body of a problem after which the connection closes."""
    return _HEAD + head + _CLOSE, problem_body(status, title, detail, kind=kind)


def check_body_size(limit: int, *, declared: bytes | None = None, received: int = 0) -> None:
    """Raise :class:`BodyTooLarge` when a request body is over ``limit`` bytes: when its
    ``Content-Length`` value (``declared``) says so before a byte is read, or when the bytes
    ``received`` so far of a streamed body pass it. The server's protocol, the ASGI fast path and
    :class:`BodyLimit` all decide with this."""
    if received > limit or (
        declared is not None and declared.isdigit() and (len(declared) > 18 or int(declared) > limit)
    ):
        raise BodyTooLarge(limit)
