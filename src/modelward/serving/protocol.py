"""The server's HTTP/1.1 protocol: uvicorn's httptools protocol, answering REST predictions itself.

``modelward serve`` runs uvicorn with :class:`ModelwardProtocol`. For ``POST /models/{name}/predict``
on a served model it collects the body in the parser's callbacks and hands it to the
:class:`~modelward.serving.lane.FastLane`, which answers through a callback: one write of the whole
response, no ASGI scope, task, event or ``receive``/``send`` messages per request. Everything else
(other routes, websocket upgrades, ``Expect: 100-continue``, pipelined requests behind an unanswered
one, percent-encoded paths) goes through uvicorn's ASGI path unchanged, to FastAPI.

The protocol keeps uvicorn's contract with its server: the request is the connection's current
``cycle`` (so graceful shutdown, keep-alive timeouts and pipelining behave as for any request),
default headers (``date``) are sent, ``Connection: close`` and HTTP/1.0 close the connection after
the answer, and a body over the server's limit is refused with 413 before it is read whole.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from modelward.serving.lane import FastLane, Headers, header_block
from modelward.serving.problems import BodyTooLarge

__all__ = ["ModelwardProtocol", "find_lane"]

log = logging.getLogger("modelward.serving")


def find_lane(app: Any) -> FastLane | None:
    """The lane of the modelward app inside uvicorn's middleware (proxy headers, logging), if any."""
    for _ in range(16):
        fast = getattr(app, "fast", None)
        lane = getattr(fast, "lane", None)
        if isinstance(lane, FastLane):
            return lane
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


class _NoEvent:
    """uvicorn sets its cycle's message event on disconnect; the lane waits on nothing."""

    @staticmethod
    def set() -> None:
        return None


class _Exchange:
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


class ModelwardProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.lane = find_lane(self.app) if not self.root_path else None
        self.exchange: _Exchange | None = None
        self._idle_since: float | None = None
        self._refused_until = 0.0  # the last 503's Retry-After runs until then (loop time)
        self.parked: asyncio.TimerHandle | None = None  # reading resumes then
        self._defaults_of: object = None
        self._defaults = b""

    # -- parser callbacks ---------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        # uvicorn builds the request's ASGI scope here; a prediction answered in the protocol never
        # needs one, so it is built in on_headers_complete, only for requests that go to the app.
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def _build_scope(self) -> None:
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()  # a fresh scope, whose "headers" is a fresh self.headers
        self.url, self.expect_100_continue = url, expect
        self.headers.extend(headers)

    def on_headers_complete(self) -> None:
        lane = self.lane
        cycle = self.cycle
        if (
            lane is not None
            and (cycle is None or cycle.response_complete)
            and not self.expect_100_continue
            and self.limit_concurrency is None
            and self.parser.get_method() == b"POST"
            and not self.parser.should_upgrade()
        ):
            url: bytes = self.url
            cut = url.find(b"?")
            raw = url if cut < 0 else url[:cut]
            if raw.startswith(b"/models/") and b"%" not in raw and raw.isascii():
                path = raw.decode("ascii")
                name = lane.match(path)
                if name is not None:
                    self._start(lane, name, path)
                    return
        self._build_scope()
        super().on_headers_complete()

    def _start(self, lane: FastLane, name: str, path: str) -> None:
        parser = self.parser
        keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        exchange = _Exchange(self, name, path, self.headers, keep_alive)
        self.cycle = exchange  # type: ignore[assignment]  # uvicorn reads its state fields only
        self.exchange = exchange
        for key, value in self.headers:
            if key == b"content-length":  # refused before the body is read when it says it is too large
                if value.isdigit() and int(value) > lane.max_body_bytes:
                    error = BodyTooLarge(lane.max_body_bytes)
                    lane.refuse(name, path, self.headers, error, exchange.reply, exchange.started)
                return

    def on_body(self, body: bytes) -> None:
        exchange: object = self.cycle
        if not isinstance(exchange, _Exchange):
            super().on_body(body)
            return
        if exchange.response_complete:
            return
        exchange.body = exchange.body + body if exchange.body else body
        lane = self.lane
        if lane is not None and len(exchange.body) > lane.max_body_bytes:
            error = BodyTooLarge(lane.max_body_bytes)
            lane.refuse(
                exchange.name, exchange.path, exchange.headers, error, exchange.reply, exchange.started
            )

    def on_message_complete(self) -> None:
        exchange: object = self.cycle
        if not isinstance(exchange, _Exchange):
            super().on_message_complete()
            return
        lane = self.lane
        if exchange.response_complete or lane is None:
            return
        try:
            lane.accept(
                exchange.name,
                exchange.path,
                exchange.headers,
                exchange.body,
                exchange.reply,
                exchange.started,
            )
        except Exception as exc:  # a bug: the client gets a 500 problem, not a dropped connection
            log.exception("answering %s failed", exchange.path)
            lane.refuse(exchange.name, exchange.path, exchange.headers, exc, exchange.reply, exchange.started)

    # -- answering ----------------------------------------------------------------------------------

    def respond(self, exchange: _Exchange, status: int, head: bytes, body: bytes) -> None:
        """Write the whole response at once; close after it when the connection should not live on."""
        if exchange.response_complete:
            return
        exchange.response_complete = True
        if self.exchange is exchange:
            self.exchange = None
        transport = self.transport
        if exchange.disconnected or transport.is_closing():
            return
        defaults = self.server_state.default_headers  # a new list each second (the date)
        if defaults is not self._defaults_of:
            self._defaults_of, self._defaults = defaults, header_block(defaults)
        close = not exchange.keep_alive
        if b"connection: close" in head:
            close = True
        elif close:
            head += b"connection: close\r\n"
        transport.write(
            b"".join(
                (STATUS_LINE[status], self._defaults, head, b"content-length: %d\r\n\r\n" % len(body), body)
            )
        )
        if close:
            exchange.keep_alive = False
            transport.close()
        elif status == 503:
            self._refused(head)
        else:
            self._refused_until = 0.0
        self.on_response_complete()

    def _refused(self, head: bytes) -> None:
        """A 503 with Retry-After. When the request before was refused too and its Retry-After has
        not passed, the client retries at once (wrk does, and so may a proxy): the connection is
        read again only once that Retry-After has passed. Immediate retries from many connections
        would otherwise keep the event loop refusing, and take the interpreter from the model the
        accepted requests wait for. A first refusal, or one after an answer, parks nothing."""
        now = self.loop.time()
        if now < self._refused_until:
            self.transport.pause_reading()
            self.parked = self.loop.call_at(self._refused_until, self._unpark)
            return
        at = head.find(b"retry-after: ")
        end = head.find(b"\r\n", at)
        seconds = head[at + 13 : end] if at >= 0 else b""
        self._refused_until = now + int(seconds) if seconds.isdigit() else 0.0

    def _unpark(self) -> None:
        self.parked = None
        self._refused_until = 0.0
        if not self.transport.is_closing():
            self.transport.resume_reading()

    # -- keep-alive ----------------------------------------------------------------------------------
    # uvicorn arms a timer after every response and cancels it when the next request arrives: two
    # timer operations per request. Here one timer per idle period checks when it fires whether the
    # connection is still idle since its last answer, and waits the rest of the timeout if not.

    def _unset_keepalive_if_required(self) -> None:
        self._idle_since = None  # data arrived: busy (the armed timer, if any, will see it)

    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self._idle_check)

    def _idle_check(self) -> None:
        self.timeout_keep_alive_task = None
        since = self._idle_since
        if since is None:  # a request is being answered: its response arms the timer again
            return
        left = since + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self.timeout_keep_alive_task = self.loop.call_later(left, self._idle_check)
            return
        self.timeout_keep_alive_handler()

    def _cancel_idle_timer(self) -> None:
        task, self.timeout_keep_alive_task = self.timeout_keep_alive_task, None
        if task is not None:
            task.cancel()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_idle_timer()
        if self.parked is not None:
            self.parked.cancel()
        exchange = self.exchange
        if exchange is not None and not exchange.response_complete:
            exchange.disconnected = True  # the prediction finishes (and is logged); nothing is written
        super().connection_lost(exc)
