"""Spans exported by a process of their own: the server's side hands each ended span over as plain
values, and the export process turns them back into the SDK's spans for the SDK's batch processor
and OTLP/HTTP exporter.

Encoding spans for OTLP is most of what tracing costs a Python server: about as much again as making
the spans, in an export thread that holds the same interpreter lock as the event loop. Here the
server's part of an ended span is a tuple of its values (:func:`span_values`), a list append under a
lock, and for a whole batch one ``orjson.dumps`` and one pipe write from a thread of its own; the
encoding and the HTTP calls run in the export process (``python -m modelward.serving.trace_export``),
configured like the SDK's own by the ``OTEL_*`` variables (``OTEL_EXPORTER_OTLP_*``, ``OTEL_BSP_*``),
which it inherits.

The hand-over is bounded like the SDK's batch processor (``OTEL_BSP_MAX_QUEUE_SIZE`` spans waiting,
the rest dropped and counted). The export process ends when its input does: at the server's
shutdown, after a last batch, or when the server dies.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import Span as SDKSpan
    from opentelemetry.trace import SpanContext

__all__ = ["ProcessExport", "main", "span_from_values", "span_values"]

log = logging.getLogger("modelward.serving.tracing")

# A frame on the pipe: its length (4 bytes, big-endian), then a JSON array of span_values tuples.
_LENGTH = 4
# How often the server's side sends what it holds: the export process batches again (OTEL_BSP_*).
_SEND_EVERY = 0.2
_LOW = (1 << 64) - 1


def span_values(span: ReadableSpan, ctx: SpanContext) -> tuple[Any, ...]:
    """An ended span (``ctx``: its context) as JSON-able values; :func:`span_from_values` makes the SDK's
    span again."""
    parent = span.parent
    events = [
        (e.name, e.timestamp, e.attributes.copy() if e.attributes is not None else None)  # type: ignore[attr-defined]
        for e in span.events
    ]
    status = span.status
    scope = span.instrumentation_scope
    return (
        span.name,
        ctx.trace_id >> 64,
        ctx.trace_id & _LOW,
        ctx.span_id,
        int(ctx.trace_flags),
        ctx.trace_state.to_header() if ctx.trace_state else None,
        None if parent is None else (parent.span_id, parent.is_remote, int(parent.trace_flags)),
        span.kind.value,
        span.start_time,
        span.end_time,
        span.attributes.copy() if span.attributes is not None else None,  # type: ignore[attr-defined]
        events,
        status.status_code.value,
        status.description,
        None if scope is None else scope.name,
    )


class ProcessExport(SpanProcessor):
    """A span processor (the SDK's ``SpanProcessor`` interface) that sends each sampled span that
    ends to an export process it starts."""

    def __init__(self, command: list[str] | None = None) -> None:
        from opentelemetry.sdk.environment_variables import OTEL_BSP_MAX_QUEUE_SIZE

        self.max_queue = int(os.environ.get(OTEL_BSP_MAX_QUEUE_SIZE) or 2048)
        self.dropped = 0
        self._pending: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        # This copy of modelward, wherever it was imported from.
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")}
        self._proc = subprocess.Popen(
            command or [sys.executable, "-m", "modelward.serving.trace_export"],
            stdin=subprocess.PIPE,
            env=env,
        )  # it ends when its input does; an interrupt of the server's terminal is the server's
        self._thread = threading.Thread(target=self._run, name="modelward-trace-export", daemon=True)
        self._thread.start()

    def on_start(self, span: SDKSpan, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.get_span_context()
        if ctx is None or not ctx.trace_flags.sampled:
            return
        self.put(span_values(span, ctx))

    def put(self, values: tuple[Any, ...]) -> None:
        """A span's values (:func:`span_values`' layout) to send."""
        with self._lock:
            if len(self._pending) < self.max_queue:
                self._pending.append(values)
                return
            self.dropped += 1
            dropped = self.dropped
        if dropped == 1:
            log.warning(
                "trace export cannot keep up: spans dropped (OTEL_BSP_MAX_QUEUE_SIZE=%d)", self.max_queue
            )

    def _run(self) -> None:
        while not self._closed.wait(_SEND_EVERY):
            self._send()

    def _send(self) -> bool:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return True
        stdin = self._proc.stdin
        if stdin is None or stdin.closed:
            return False
        data = orjson.dumps(batch)
        try:
            stdin.write(len(data).to_bytes(_LENGTH, "big") + data)
            stdin.flush()
        except (BrokenPipeError, ValueError, OSError):  # the export process is gone: spans lost
            with self._lock:
                self.dropped += len(batch)
            return False
        return True

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Hands what is held to the export process (which exports on its own schedule)."""
        return self._send()

    def shutdown(self) -> None:
        """The last spans to the export process, which exports them and ends."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._thread.join()
        self._send()
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            log.warning("trace export process did not end in 30 s: stopped")
            self._proc.kill()
            self._proc.wait()


def _frames(stream: BinaryIO) -> Any:
    while True:
        head = stream.read(_LENGTH)
        if len(head) < _LENGTH:
            return
        yield orjson.loads(stream.read(int.from_bytes(head, "big")))


def span_from_values(values: list[Any], resource: Any, scopes: dict[str | None, Any]) -> ReadableSpan:
    """The SDK span :func:`span_values` (or a :class:`~modelward.serving.tracing.Tracing` with
    ``hand_over``) gave the values of; ``scopes`` caches instrumentation scopes by name."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

    (name, high, low, span_id, flags, state, parent, kind, start, end, attrs, events, code, desc, scope) = (
        values
    )
    trace_id = high << 64 | low
    trace_state = TraceState.from_header([state]) if state else None
    context = SpanContext(trace_id, span_id, False, TraceFlags(flags), trace_state)
    parent_context = None
    if parent is not None:
        parent_id, remote, parent_flags = parent
        parent_context = SpanContext(trace_id, parent_id, remote, TraceFlags(parent_flags), trace_state)
    if scope not in scopes:
        scopes[scope] = InstrumentationScope(scope or "modelward.serving")
    return ReadableSpan(
        name=name,
        context=context,
        parent=parent_context,
        resource=resource,
        attributes=attrs,
        events=[Event(n, a, t) for n, t, a in events],
        kind=SpanKind(kind),
        status=Status(StatusCode(code), desc),
        start_time=start,
        end_time=end,
        instrumentation_scope=scopes[scope],
    )


def main() -> None:
    """The export process: spans from stdin, through the SDK's batch processor and OTLP/HTTP
    exporter (each configured from the ``OTEL_*`` variables), until stdin ends."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from modelward.serving.tracing import resource

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's Ctrl-C: ends by the end of its input
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    service = resource()
    processor = BatchSpanProcessor(OTLPSpanExporter())
    scopes: dict[str | None, Any] = {}
    try:
        for batch in _frames(sys.stdin.buffer):
            for values in batch:
                processor.on_end(span_from_values(values, service, scopes))
    finally:
        processor.shutdown()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
