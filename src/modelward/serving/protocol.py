"""The server's HTTP/1.1 protocol: uvicorn's httptools protocol, answering REST predictions itself.

``modelward serve`` runs uvicorn with :class:`ModelwardProtocol`. For ``POST /models/{name}/predict``
on a served model it collects the body in the parser's callbacks and hands it to the
:class:`~modelward.serving.lane.FastLane`, which answers through a callback: one write of the whole
response, no ASGI scope, task, event or ``receive``/``send`` messages per request. Everything else
(other routes, ``Expect: 100-continue``, pipelined requests behind an unanswered one,
percent-encoded paths) goes through uvicorn's ASGI path unchanged, to FastAPI.

The protocol keeps uvicorn's contract with its server: the request is the connection's current
``cycle`` (so graceful shutdown and pipelining behave as for any request), default headers
(``date``) are sent, ``Connection: close`` and HTTP/1.0 close the connection after the answer, and
a body over the server's limit is refused with 413 before it is read whole.

It also enforces the :class:`~modelward.serving.connections.ConnectionLimits` on every route:
connections per worker, the header block's size, header, body and idle time limits.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from typing import TYPE_CHECKING, Any, ClassVar, cast

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from modelward.errors import BodyTooLarge
from modelward.serving.connections import STATUS_LINE, ConnectionLimits, check_body_size, refusal
from modelward.serving.exchange import Exchange, find_lane
from modelward.serving.starting import still_starting
from modelward.serving.wire import header_block

if TYPE_CHECKING:  # the lane and its app are imported once the app is built, after the port opens
    from modelward.serving.lane import FastLane

__all__ = ["ModelwardProtocol", "find_lane", "protocol_factory"]

log = logging.getLogger("modelward.serving")

# What this module relies on in uvicorn's HttpToolsProtocol is listed, and tested, in
# modelward.serving.uvicorn_contract: a change here that uses more of it must be listed there.

# Where the parser is in the connection's current request.
_BETWEEN, _HEAD, _BODY = 0, 1, 2


def protocol_factory(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """What ``uvicorn.Config(http=...)`` takes: uvicorn calls it with its keyword arguments to make
    each connection's protocol. A partial of the class (not a subclass made here) so that it
    pickles into worker processes."""
    return cast("type[asyncio.Protocol]", functools.partial(ModelwardProtocol, limits=limits))


class ModelwardProtocol(HttpToolsProtocol):
    _cap_logged_at: ClassVar[float] = -math.inf  # refusals at the connection cap: one log line a minute

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ConnectionLimits | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # No websocket upgrades: a connection handed to another protocol would keep this one's timer.
        # An upgrade request is answered as plain HTTP (the app has no websocket routes).
        self.ws_protocol_class = None
        self.limits = limits or ConnectionLimits()
        self.lane = find_lane(self.app) if not self.root_path else None
        # A connection made while the server starts has no lane yet: it looks again per request
        # until the app is built (connections made later find it here, and never look again).
        self._lane_to_come = self.lane is None and not self.root_path and still_starting(self.app)
        self.exchange: Exchange | None = None
        self._refused_until = 0.0  # the last 503's Retry-After runs until then (loop time)
        self.parked: asyncio.TimerHandle | None = None  # reading resumes then
        self._defaults_of: object = None
        self._defaults = b""
        self._closing = False
        # the phase of the current request and when it began (the loop's time of the read it began in)
        self._phase = _BETWEEN
        self._now = 0.0
        self._head_started = 0.0
        self._body_started = 0.0
        self._idle_since = 0.0
        # the header block's size so far: bytes of earlier reads, and the length of this read
        self._head_bytes = 0
        self._read = 0
        self._completed = False  # a request ended in this read
        self._discarding = False  # dropping the rest of an answered request's body
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    # -- connection ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limits = self.limits
        if len(self.connections) > limits.max_connections:
            self._refuse_over_cap()
            return
        self._idle_since = now = self.loop.time()
        self._arm(now + limits.keep_alive_timeout)

    def _refuse_over_cap(self) -> None:
        """503 written at once, before anything is read, then close: nothing is parsed or handed to
        the app (the client can read the answer even when its request arrives as the socket closes)."""
        cap = self.limits.max_connections
        detail = f"this server holds its limit of {cap} connections; retry in 1 s"
        self._refuse(503, "overloaded", detail, "overloaded", b"retry-after: 1\r\n")
        now = time.monotonic()
        if now - ModelwardProtocol._cap_logged_at >= 60:
            ModelwardProtocol._cap_logged_at = now
            log.warning("%d connections open (the cap): refusing new ones with 503", cap)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._disarm()
        if self.parked is not None:
            self.parked.cancel()
        exchange = self.exchange
        if exchange is not None and not exchange.response_complete:
            exchange.disconnected = True  # the prediction finishes (and is logged); nothing is written
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's, without its keep-alive timer (this protocol keeps its own) and websockets
        if self._closing:  # a refused connection: what arrives before it closes is not read
            return
        self._now = self.loop.time()
        self._read = n = len(data)
        self._completed = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # the request went on as plain HTTP; the rest of this read is not parsed
        except httptools.HttpParserError:
            log.debug("invalid HTTP request from %s", self.client)
            self.send_400_response("Invalid HTTP request received.")
            return
        # A header block still arriving at the end of this read began in an earlier one or at this
        # one's start (a request that began after another ended in this read is counted from the next
        # read on: at most one read more than the limit is held).
        if self._phase == _HEAD and not self._completed and not self._closing:
            self._head_bytes += n
            if self._head_bytes > self.limits.max_header_bytes:
                self._header_too_large()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request it cannot parse, as problem+json; nothing after a refusal."""
        if not self._closing:
            self._refuse(400, "bad request", msg, "bad-request")

    # -- parser callbacks ---------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._closing:  # what follows a refusal in the same read is not looked at
            return
        self._phase = _HEAD
        self._head_bytes = 0
        self._head_started = started = self._now
        deadline = started + self.limits.header_timeout
        if deadline < self._timer_at:
            self._arm(deadline)
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
        if self._closing:
            return
        limits = self.limits
        if (
            self._head_bytes + self._read > limits.max_header_bytes
            and self._head_size() > limits.max_header_bytes
        ):
            self._header_too_large()
            # The parser goes on with this request's body: it finds the request answered (uvicorn
            # too replaces the cycle of a request still being answered by the next one's).
            refused = Exchange(self, "", "", [], keep_alive=False)
            refused.response_complete = True
            self.cycle = refused  # type: ignore[assignment]
            return
        self._phase = _BODY
        self._body_started = started = self._now
        deadline = started + limits.body_timeout
        if deadline < self._timer_at:
            self._arm(deadline)
        lane = self.lane
        if lane is None and self._lane_to_come:
            lane = self.lane = find_lane(self.app)
            self._lane_to_come = lane is None and still_starting(self.app)
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

    def _head_size(self) -> int:
        """The request line and header fields as parsed (names, values, separators and line ends)."""
        return len(self.url) + 16 + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _start(self, lane: FastLane, name: str, path: str) -> None:
        parser = self.parser
        keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        exchange = Exchange(self, name, path, self.headers, keep_alive)
        self.cycle = exchange  # type: ignore[assignment]  # uvicorn reads its state fields only
        self.exchange = exchange
        for key, value in self.headers:
            if key == b"content-length":  # refused before the body is read when it says it is too large
                try:
                    check_body_size(lane.max_body_bytes, declared=value)
                except BodyTooLarge as error:
                    lane.refuse(name, path, self.headers, error, exchange.reply, exchange.started)
                return

    def on_body(self, body: bytes) -> None:
        exchange: object = self.cycle
        if not isinstance(exchange, Exchange):
            super().on_body(body)
            return
        if exchange.response_complete:
            return
        exchange.body = exchange.body + body if exchange.body else body
        lane = self.lane
        if lane is None:
            return
        try:
            check_body_size(lane.max_body_bytes, received=len(exchange.body))
        except BodyTooLarge as error:
            lane.refuse(
                exchange.name, exchange.path, exchange.headers, error, exchange.reply, exchange.started
            )

    def on_message_complete(self) -> None:
        self._phase = _BETWEEN
        self._completed = True
        if self._discarding:  # the rest of an answered request's body was dropped: idle from now
            self._discarding = False
            self._idle_since = now = self._now
            deadline = now + self.limits.keep_alive_timeout
            if deadline < self._timer_at:
                self._arm(deadline)
        exchange: object = self.cycle
        if not isinstance(exchange, Exchange):
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

    def respond(self, exchange: Exchange, status: int, head: bytes, body: bytes) -> None:
        """Write the whole response at once; close after it when the connection should not live on."""
        if exchange.response_complete:
            return
        exchange.response_complete = True
        if self.exchange is exchange:
            self.exchange = None
        if exchange.disconnected or self.transport.is_closing():
            return
        close = not exchange.keep_alive
        if b"connection: close" in head:
            close = True
        elif close:
            head += b"connection: close\r\n"
        self._write(status, head, body)
        if close:
            exchange.keep_alive = False
            self._close()
        elif status == 503:
            self._refused(head)
        else:
            self._refused_until = 0.0
        self.on_response_complete()

    def _write(self, status: int, head: bytes, body: bytes) -> None:
        defaults = self.server_state.default_headers  # a new list each second (the date)
        if defaults is not self._defaults_of:
            self._defaults_of, self._defaults = defaults, header_block(defaults)
        self.transport.write(
            b"".join(
                (STATUS_LINE[status], self._defaults, head, b"content-length: %d\r\n\r\n" % len(body), body)
            )
        )

    def _refuse(self, status: int, title: str, detail: str, kind: str, head: bytes = b"") -> None:
        """Answer with a problem and close, unless an earlier request's answer is still to come (an
        answer now would arrive before it): then close without one."""
        cycle = self.cycle
        if (
            not self.pipeline
            and (cycle is None or cycle.response_complete)
            and not self.transport.is_closing()
        ):
            self._write(status, *refusal(status, title, detail, kind, head))
        self._close()

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

    def _close(self) -> None:
        """Close after what is written; no request that follows in this read is looked at."""
        self._closing = True
        self._disarm()
        self.transport.close()

    def _header_too_large(self) -> None:
        limit = self.limits.max_header_bytes
        detail = f"the request line and headers are larger than the limit of {limit} bytes"
        self._refuse(431, "request header fields too large", detail, "header-too-large")

    # -- time limits ---------------------------------------------------------------------------------
    # One timer per connection. Phase changes record when they happened; the timer is moved only when
    # a new deadline is earlier than the one it is set for (with the default limits: never within a
    # request). When it fires it checks the current phase's deadline, and closes or waits the rest.

    def on_response_complete(self) -> None:
        if self.pipeline:  # the next request is uvicorn's to start
            super().on_response_complete()
            if self._timer is None and not self._closing:  # its phase's deadline, if any
                self._arm(self.loop.time())
            return
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        if self._phase == _BODY:
            # Answered before its body arrived whole (a route that did not read it, an early 503 or
            # 401), and the answer did not say it closes: the client may send its next request on
            # this connection. A body of declared length (within the body limit: a larger one is
            # refused with a close) is read on and dropped, under the body time limit, and the
            # connection goes on; a chunked one could go on without end: closed.
            if not self._declared_within_limit():
                self._close()
                return
            self._discarding = True
            self.flow.resume_reading()
            return
        self.flow.resume_reading()
        self._idle_since = now = self.loop.time()
        deadline = now + self.limits.keep_alive_timeout
        if deadline < self._timer_at:
            self._arm(deadline)

    def _declared_within_limit(self) -> bool:
        """The current request declared its body's length, and no more than the body limit."""
        lane = self.lane
        for name, value in self.headers:
            if name == b"content-length":
                if lane is None:  # the app's limit refused a larger one with a close
                    return value.isdigit()
                try:
                    check_body_size(lane.max_body_bytes, declared=value)
                except BodyTooLarge:
                    return False
                return True
        return False

    def _arm(self, when: float) -> None:
        timer = self._timer
        if timer is not None:
            timer.cancel()
        self._timer = self.loop.call_at(when, self._on_timer)
        self._timer_at = when

    def _disarm(self) -> None:
        timer, self._timer, self._timer_at = self._timer, None, math.inf
        if timer is not None:
            timer.cancel()

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, math.inf
        if self._closing or self.transport.is_closing():
            return
        limits = self.limits
        phase = self._phase
        cycle = self.cycle
        answering = bool(self.pipeline) or (cycle is not None and not cycle.response_complete)
        if phase == _HEAD:
            deadline = self._head_started + limits.header_timeout
        elif phase == _BODY and not self.pipeline:
            deadline = self._body_started + limits.body_timeout
        elif answering:  # the answer arms the timer again
            return
        else:
            deadline = self._idle_since + limits.keep_alive_timeout
        if self.loop.time() < deadline:
            self._arm(deadline)
            return
        if phase == _BETWEEN:  # idle: closed without an answer
            self._close()
            return
        if phase == _BODY and not isinstance(cycle, Exchange):
            # The app has the request and is reading its body: it sees the client disconnect.
            self._close()
            return
        if phase == _BODY and isinstance(cycle, Exchange) and cycle is self.exchange:
            cycle.response_complete = True  # the lane will not get this request
            self.exchange = None
        part, seconds = (
            ("line and headers", limits.header_timeout) if phase == _HEAD else ("body", limits.body_timeout)
        )
        detail = f"the request's {part} did not arrive within {seconds:g} s"
        self._refuse(408, "request timeout", detail, "request-timeout")
