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
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from modelward.errors import MissingDependency

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler
    from opentelemetry.trace import Span, Tracer

__all__ = ["PHASES", "RequestTrace", "Tracing", "load_tracing", "resource", "root_bound"]

PHASES = ("parse", "route", "validate", "predict", "log")
Phases = Literal["spans", "events"]
_CARRIED = frozenset((b"traceparent", b"tracestate", b"baggage"))


class Tracing:
    """The tracer of a served app. ``provider`` is shut down (its spans flushed) by :meth:`close`
    when ``owned``; a provider handed in by the caller (tests, an application that configured its
    own) is left to its owner."""

    def __init__(self, provider: TracerProvider, *, phases: Phases = "events", owned: bool = False) -> None:
        from opentelemetry import propagate
        from opentelemetry.trace import SpanKind

        self.provider = provider
        self.phases = phases
        self.owned = owned
        self.tracer: Tracer = provider.get_tracer("modelward.serving")
        self._extract = propagate.extract
        self._server = SpanKind.SERVER
        self._names: dict[str, str] = {}
        # With load_tracing's provider, a request without a parent is decided before any span
        # exists: by a draw of the trace id's low 64 bits against the root sampler's bound when
        # the sampler is one of the SDK's (root_bound), else by the sampler itself about the trace
        # id its span would get. A dropped request costs no span object.
        ids = provider.id_generator
        self._ids: Any = ids if getattr(ids, "chosen_first", False) else None
        self._bound = root_bound(provider.sampler) if self._ids is not None else None
        self._draw = random.getrandbits
        from opentelemetry.context import Context
        from opentelemetry.sdk.trace.sampling import Decision
        from opentelemetry.trace import get_current_span

        self._drop = Decision.DROP
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
        """The request's server span, from ``started`` (``time.perf_counter()`` at its arrival);
        None when it is not sampled."""
        carrier: dict[str, str] | None = None
        for k, v in headers:
            if k in _CARRIED:
                if carrier is None:
                    carrier = {}
                carrier.setdefault(k.decode("latin-1"), v.decode("latin-1"))
        context = None
        if carrier is not None:
            context = self._extract(carrier)
            parent = self._parent_of(context).get_span_context()
            if not parent.is_valid:  # no usable traceparent: a trace of its own
                context = None
            elif self._drops(context, parent.trace_id, route):
                return None  # the parent's decision (parent-based samplers), before a span exists
        ids = self._ids
        if context is None and ids is not None:
            bound = self._bound
            if bound is not None:  # the root sampler's own rule: no SDK call for a dropped request
                low = self._draw(64)
                if low >= bound:
                    return None
                trace_id = (self._draw(64) << 64 | low) or 1
            else:  # a sampler whose rule is not known here: asked about the span's trace id
                trace_id = ids.generate_trace_id()
                if self._drops(self._root, trace_id, route):
                    return None
            ids.chosen = trace_id  # the span gets the trace id the decision was about
            context = self._root
        now = time.time_ns()
        start = now - int((time.perf_counter() - started) * 1e9)
        span = self.tracer.start_span(
            self._span_name(route), context=context, kind=self._server, start_time=start
        )
        if not span.is_recording():
            return None
        return RequestTrace(self, span, start, name, path, route)

    def _span_name(self, route: str) -> str:
        span_name = self._names.get(route)
        if span_name is None:
            span_name = self._names[route] = f"POST {route}"
        return span_name

    def _drops(self, context: Any, trace_id: int, route: str) -> bool:
        """The provider's sampler drops a span of ``route`` about ``trace_id`` under ``context``."""
        result = self.provider.sampler.should_sample(context, trace_id, self._span_name(route), self._server)
        return result.decision is self._drop

    def close(self) -> None:
        """Flush and stop the exporter (the app's shutdown)."""
        if self.owned:
            self.provider.shutdown()


class RequestTrace:
    """One sampled request: its server span and the ends of its phases so far."""

    __slots__ = ("marks", "name", "path", "route", "span", "start", "tracing")

    def __init__(self, tracing: Tracing, span: Span, start: int, name: str, path: str, route: str) -> None:
        self.tracing = tracing
        self.span = span
        self.start = start
        self.name = name
        self.path = path
        self.route = route
        self.marks: list[tuple[str, int, dict[str, Any] | None]] = []

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
        span = self.span
        tracing = self.tracing
        self.marks.append(("log", end, None))
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
        # Set once, at the end: each call to the span's attributes takes its lock and checks them.
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
        if status >= 500:
            from opentelemetry.trace import StatusCode

            attrs["error.type"] = str(status)
            span.set_status(StatusCode.ERROR)
        span.set_attributes(attrs)
        span.end(end_time=end)


def root_bound(sampler: Sampler) -> int | None:
    """The rule by which ``sampler`` decides for a span without a parent, when it is one of the
    SDK's: sampled when the trace id's low 64 bits are below the bound (``TraceIdRatioBased``'s
    rule; 0 drops all, 2**64 keeps all). None: another sampler, asked about every request."""
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import sampling

    every = sampling.TraceIdRatioBased.TRACE_ID_LIMIT + 1
    if sampler is sampling.ALWAYS_ON or sampler is sampling.DEFAULT_ON:
        return every
    if sampler is sampling.ALWAYS_OFF or sampler is sampling.DEFAULT_OFF:
        return 0
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


def _chosen_ids() -> Any:
    """The SDK's random ids, except that the trace id drawn for a request's sampling decision is
    the one its span then gets (the SDK asks the sampler again, about the same id). Only the event
    loop's thread starts spans with it."""
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class ChosenFirst(RandomIdGenerator):
        chosen_first = True

        def __init__(self) -> None:
            self.chosen: int | None = None

        def generate_trace_id(self) -> int:
            chosen = self.chosen
            if chosen is not None:
                self.chosen = None
                return chosen
            return super().generate_trace_id()

    return ChosenFirst()


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
    provider = TracerProvider(resource=resource(), id_generator=_chosen_ids())
    provider.add_span_processor(ProcessExport())
    return Tracing(provider, phases=phases, owned=True)
