"""OpenTelemetry traces of predictions (the ``tracing`` extra), off unless ``MODELWARD_TRACING=1``.

Every REST prediction path (the server's protocol and the ASGI fast path through
:class:`~modelward.serving.lane.FastLane`, a turn's joint answers in :mod:`modelward.serving.hot`,
the FastAPI routes through :func:`modelward.serving.rest.traced`: the REST route and the Open
Inference Protocol's ``/v2/.../infer``) traces through this module alone:

- :meth:`Tracing.start` opens the request's SERVER span, the child of the client's span when the
  request carries a W3C ``traceparent`` (read by the propagators OpenTelemetry is configured with),
  and returns None when the sampler drops it: from then on the request costs a None check. The
  decision comes before any span object: a request without a parent is drawn against the SDK
  sampler's own bound (:func:`root_bound`), one with a parent is put to the sampler.
- :meth:`RequestTrace.mark` notes the end of a phase (``parse``, ``route``, ``validate``,
  ``predict``, ``log``): one clock reading. Requests answered together share their marks (one
  reading per turn), and their ``predict`` mark says how many requests and rows the call took.
- :meth:`RequestTrace.finish` turns the marks into events of the server span (the default: one span
  per request, the cheapest), or into the server span's children (``MODELWARD_TRACING_PHASES=spans``:
  each phase from the previous mark to its own), sets the model, version, arm and HTTP attributes,
  and ends the span.

The provider is the SDK's, configured by the SDK from the standard variables: the sampler
(``OTEL_TRACES_SAMPLER``, ``OTEL_TRACES_SAMPLER_ARG``), the resource (``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``; ``modelward`` when no service name is given), the OTLP/HTTP exporter
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_*``) and its batch processor
(``OTEL_BSP_*``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

from modelward.errors import MissingDependency

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler, SamplingResult
    from opentelemetry.trace import Span, Tracer

__all__ = ["PHASES", "RequestTrace", "Tracing", "load_tracing", "resource", "root_bound"]

PHASES = ("parse", "route", "validate", "predict", "log")
Phases = Literal["spans", "events"]
_CARRIED = frozenset((b"traceparent", b"tracestate", b"baggage"))
SCOPE = "modelward.serving"  # the instrumentation scope of the spans made here
# SpanKind and StatusCode values, as trace_export.span_values carries them.
_INTERNAL, _SERVER = 0, 1
_UNSET, _ERROR = 0, 2
_LOW = (1 << 64) - 1


class Tracing:
    """The tracer of a served app. ``provider`` is shut down (its spans flushed) by :meth:`close`
    when ``owned``; a provider handed in by the caller (tests, an application that configured its
    own) is left to its owner.

    With ``hand_over`` (:func:`load_tracing`'s way: ``ProcessExport.put``) a request's spans are
    made as values (``trace_export.span_values``' layout) and handed over to the export process,
    and a request without a parent is sampled by the SDK sampler's own rule drawn here
    (:func:`root_bound`): the SDK's span objects, the most of a span's cost in this process, are
    made in the export process, and a dropped request costs a random draw. Without
    it, the provider's SDK spans go to the provider's processors (an in-memory exporter in tests).
    Both ways make the same spans (a test compares them)."""

    def __init__(
        self,
        provider: TracerProvider,
        *,
        phases: Phases = "events",
        owned: bool = False,
        hand_over: Callable[[tuple[Any, ...]], None] | None = None,
    ) -> None:
        from opentelemetry import propagate
        from opentelemetry.context import Context
        from opentelemetry.sdk.trace.sampling import Decision
        from opentelemetry.trace import SpanKind, get_current_span

        self.provider = provider
        self.phases = phases
        self.owned = owned
        self.hand_over = hand_over
        self.tracer: Tracer = provider.get_tracer(SCOPE)
        self._extract = propagate.extract
        self._server = SpanKind.SERVER
        self._names: dict[str, str] = {}
        self._bound = root_bound(provider.sampler) if hand_over is not None else None
        self._draw = random.getrandbits
        self._keep = Decision.RECORD_AND_SAMPLE  # the one decision whose spans are exported
        self._root = Context()  # no parent: a request without traceparent starts a trace
        self._parent_of = get_current_span

    def start(
        self,
        name: str,
        path: str,
        headers: Iterable[tuple[bytes, bytes]],
        started: float,
        route: str = "/models/{name}/predict",
    ) -> RequestTrace | None:
        """The request's trace, from ``started`` (``time.perf_counter()`` at its arrival); None
        when it is not sampled."""
        carrier: dict[str, str] | None = None
        for k, v in headers:
            if k in _CARRIED:
                if carrier is None:
                    carrier = {}
                carrier.setdefault(k.decode("latin-1"), v.decode("latin-1"))
        hand_over = self.hand_over
        context: Any = None
        if carrier is not None:
            context = self._extract(carrier)
            if not self._parent_of(context).get_span_context().is_valid:
                context = None  # no usable traceparent: a trace of its own
        if hand_over is None:  # the provider's SDK spans; its sampler decides as the span starts
            start = _ns(started)
            span = self.tracer.start_span(
                self._span_name(route), context=context, kind=self._server, start_time=start
            )
            if not span.is_recording():
                return None
            ctx = span.get_span_context()
            return RequestTrace(self, start, name, path, route, ctx.trace_id, ctx.span_id, span=span)
        sampled: Any = None  # the sampler's result when it was asked
        parent = None
        if context is not None:  # the parent's decision (parent-based samplers)
            parent = self._parent_of(context).get_span_context()
            trace_id = parent.trace_id
            sampled = self._sample(context, trace_id, route)
            if sampled is None:
                return None
        elif (bound := self._bound) is not None:  # the root sampler's own rule: a draw, no SDK call
            low = self._draw(64)
            if low >= bound:
                return None
            trace_id = (self._draw(64) << 64 | low) or 1
        else:  # a sampler whose rule is not known here
            trace_id = self.provider.id_generator.generate_trace_id()
            sampled = self._sample(self._root, trace_id, route)
            if sampled is None:
                return None
        trace = RequestTrace(self, _ns(started), name, path, route, trace_id, self._draw(64) or 1)
        if parent is not None:
            trace.parent = (parent.span_id, parent.is_remote, int(parent.trace_flags))
        if sampled is not None:
            trace.state = sampled.trace_state.to_header() if sampled.trace_state else None
            trace.extra = dict(sampled.attributes) if sampled.attributes else None
        return trace

    def _span_name(self, route: str) -> str:
        span_name = self._names.get(route)
        if span_name is None:
            span_name = self._names[route] = f"POST {route}"
        return span_name

    def _sample(self, context: Any, trace_id: int, route: str) -> SamplingResult | None:
        """The provider's sampler's result for a span of ``route`` about ``trace_id`` under
        ``context``; None when it is not sampled (nothing would be exported)."""
        result = self.provider.sampler.should_sample(context, trace_id, self._span_name(route), self._server)
        return result if result.decision is self._keep else None

    def close(self) -> None:
        """Flush and stop the exporter (the app's shutdown)."""
        if self.owned:
            self.provider.shutdown()


def _ns(started: float) -> int:
    """``time.time_ns()`` at ``started`` (a ``time.perf_counter()`` reading)."""
    return time.time_ns() - int((time.perf_counter() - started) * 1e9)


class RequestTrace:
    """One sampled request: its trace and span ids, the ends of its phases so far, and its SDK span
    when the provider makes them (:class:`Tracing` without ``hand_over``)."""

    __slots__ = (
        "extra",
        "marks",
        "name",
        "parent",
        "path",
        "route",
        "span",
        "span_id",
        "start",
        "state",
        "trace_id",
        "tracing",
    )

    def __init__(
        self,
        tracing: Tracing,
        start: int,
        name: str,
        path: str,
        route: str,
        trace_id: int,
        span_id: int,
        span: Span | None = None,
    ) -> None:
        self.tracing = tracing
        self.start = start
        self.name = name
        self.path = path
        self.route = route
        self.trace_id = trace_id
        self.span_id = span_id
        self.span = span
        self.marks: list[tuple[str, int, dict[str, Any] | None]] = []
        self.parent: tuple[int, bool, int] | None = None  # span id, remote, flags
        self.state: str | None = None  # the W3C tracestate the sampler kept
        self.extra: dict[str, Any] | None = None  # attributes the sampler added

    def mark(self, phase: str, at: int | None = None, attributes: dict[str, Any] | None = None) -> None:
        """``phase`` ended ``at`` (``time.time_ns()``; now if None)."""
        self.marks.append((phase, time.time_ns() if at is None else at, attributes))

    def finish(
        self,
        status: int,
        *,
        version: str | None = None,
        arm: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """The request was answered with ``status``: the phases so far, the log phase ending now,
        the attributes, and the end of the server span."""
        end = time.time_ns()
        self.marks.append(("log", end, None))
        attrs: dict[str, Any] = {
            "http.request.method": "POST",
            "http.route": self.route,
            "url.path": self.path,
            "http.response.status_code": status,
            "modelward.model.name": self.name,
        }
        if version is not None:
            attrs["modelward.model.version"] = version
        if arm is not None:
            attrs["modelward.arm"] = arm
        if request_id is not None:
            attrs["modelward.request_id"] = request_id
        error = status >= 500
        if error:
            attrs["error.type"] = str(status)
        span = self.span
        if span is not None:
            self._end_span(span, attrs, end, error)
        elif (put := self.tracing.hand_over) is not None:
            self._hand_over(put, attrs, end, error)

    def _hand_over(
        self, put: Callable[[tuple[Any, ...]], None], attrs: dict[str, Any], end: int, error: bool
    ) -> None:
        """The request's spans as values (trace_export.span_values' layout) to the export process."""
        tracing = self.tracing
        high, low = self.trace_id >> 64, self.trace_id & _LOW
        if self.extra:
            attrs = {**self.extra, **attrs}
        code = _ERROR if error else _UNSET
        name = tracing._span_name(self.route)
        if tracing.phases == "spans":
            draw = tracing._draw
            ours = (self.span_id, False, 1)
            begin = self.start
            for phase, at, attributes in self.marks:
                put(
                    (
                        phase,
                        high,
                        low,
                        draw(64) or 1,
                        1,
                        self.state,
                        ours,
                        _INTERNAL,
                        begin,
                        at,
                        attributes,
                        (),
                        _UNSET,
                        None,
                        SCOPE,
                    )
                )
                begin = at
            events: Any = ()
        else:
            events = self.marks  # (name, timestamp, attributes): an event's values already
        put(
            (
                name,
                high,
                low,
                self.span_id,
                1,
                self.state,
                self.parent,
                _SERVER,
                self.start,
                end,
                attrs,
                events,
                code,
                None,
                SCOPE,
            )
        )

    def _end_span(self, span: Span, attrs: dict[str, Any], end: int, error: bool) -> None:
        tracing = self.tracing
        if tracing.phases == "spans":
            from opentelemetry.trace import set_span_in_context

            context = set_span_in_context(span)
            tracer = tracing.tracer
            begin = self.start
            for phase, at, attributes in self.marks:
                child = tracer.start_span(phase, context=context, start_time=begin, attributes=attributes)
                child.end(end_time=at)
                begin = at
        else:
            for phase, at, attributes in self.marks:
                span.add_event(phase, attributes, at)
        if error:
            from opentelemetry.trace import StatusCode

            span.set_status(StatusCode.ERROR)
        # Set once, at the end: each call to the span's attributes takes its lock and checks them.
        span.set_attributes(attrs)
        span.end(end_time=end)


def root_bound(sampler: Sampler) -> int | None:
    """The rule by which ``sampler`` decides for a span without a parent, when it is one of the
    SDK's: sampled when the trace id's low 64 bits are below the bound (``TraceIdRatioBased``'s
    rule; 0 drops all, 2**64 keeps all). None: another sampler, asked about every request."""
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import sampling

    every = sampling.TraceIdRatioBased.TRACE_ID_LIMIT + 1
    if type(sampler) in (sampling.StaticSampler, sampling.ParentBased):
        # The SDK's own classes, configured as one of its constants (their descriptions name the
        # root and every delegate): always_on, always_off and their parentbased_ forms.
        fixed = {
            known.get_description(): bound
            for known, bound in (
                (sampling.ALWAYS_ON, every),
                (sampling.DEFAULT_ON, every),
                (sampling.ALWAYS_OFF, 0),
                (sampling.DEFAULT_OFF, 0),
            )
        }
        return fixed.get(sampler.get_description())
    if type(sampler) is sampling.TraceIdRatioBased:
        return sampler.bound
    if type(sampler) is sampling.ParentBasedTraceIdRatio:
        # Its root (a TraceIdRatioBased) is not public: its bound is found by asking the sampler
        # itself, the least low 64 bits it drops (64 questions, once).
        root, keep = Context(), sampling.Decision.RECORD_AND_SAMPLE
        low, high = 0, every  # the bound is in [low, high]
        while low < high:
            mid = (low + high) // 2
            if sampler.should_sample(root, mid, "bound").decision is keep:
                low = mid + 1
            else:
                high = mid
        return low
    return None


def resource() -> Resource:
    """The service's resource as the SDK reads it from ``OTEL_SERVICE_NAME`` and
    ``OTEL_RESOURCE_ATTRIBUTES``, named ``modelward`` when no service name is given."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    found = Resource.create()
    if str(found.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        found = found.merge(Resource({SERVICE_NAME: "modelward"}))
    return found


def load_tracing(phases: Phases = "events") -> Tracing:
    """A :class:`Tracing` on a new SDK provider, configured by the SDK from the ``OTEL_*``
    variables, whose spans an export process sends over OTLP/HTTP
    (:class:`~modelward.serving.trace_export.ProcessExport`);
    :class:`~modelward.errors.MissingDependency` without the extra."""
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401  (the export process's)
        from opentelemetry.sdk.trace import TracerProvider

        from modelward.serving.trace_export import ProcessExport
    except ImportError as exc:
        missing = exc.name or "opentelemetry-sdk"
        raise MissingDependency(missing, "tracing", "tracing (MODELWARD_TRACING)") from exc
    # The sampler: OTEL_TRACES_SAMPLER(_ARG), read by the provider.
    provider = TracerProvider(resource=resource())
    export = ProcessExport()
    provider.add_span_processor(export)  # the provider's other spans, if any, go the same way
    return Tracing(provider, phases=phases, owned=True, hand_over=export.put)
