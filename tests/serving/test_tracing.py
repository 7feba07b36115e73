"""Traces of predictions, read from the SDK's in-memory exporter of an app served in process: one
server span per request with its phases as children, the client's traceparent honoured, the model,
version and arm as attributes, whichever path answered (the fast lane's joint and general answers,
the FastAPI route)."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanKind, StatusCode

from modelward.config import Settings
from modelward.errors import MissingDependency
from modelward.serving.trace_export import ProcessExport, span_from_values, span_values
from modelward.serving.tracing import PHASES, Phases, Tracing, load_tracing, root_bound
from tests.serving.test_predict_api import ROW, ROW2

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
V2_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TOGETHER = 8


def _infer_body(rows: list[dict[str, object]]) -> dict[str, object]:
    """An Open Inference Protocol request: one tensor per feature."""
    inputs = []
    for name, value in rows[0].items():
        datatype = "BYTES" if isinstance(value, str) else "FP64" if isinstance(value, float) else "INT64"
        inputs.append(
            {"name": name, "shape": [len(rows)], "datatype": datatype, "data": [r[name] for r in rows]}
        )
    return {"inputs": inputs}


@dataclass
class Traced:
    spans: list[ReadableSpan]
    answers: dict[str, httpx.Response]
    together: list[httpx.Response]

    def server(self, request_id: str) -> ReadableSpan:
        found = [
            s
            for s in self.spans
            if s.kind is SpanKind.SERVER and (s.attributes or {}).get("modelward.request_id") == request_id
        ]
        assert len(found) == 1, [s.name for s in self.spans]
        return found[0]

    def children(self, span: ReadableSpan) -> list[ReadableSpan]:
        ctx = span.get_span_context()
        assert ctx is not None
        return [s for s in self.spans if s.parent is not None and s.parent.span_id == ctx.span_id]


@pytest.fixture(scope="module")
def traced(churn_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Traced:
    home = tmp_path_factory.mktemp("traced") / "home"
    shutil.copytree(churn_home, home, ignore=shutil.ignore_patterns("server-*.log"))
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings(
        home=home,
        actor="tester",
        tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
        controller=False,
        reload_interval=0,
        load_before_accept=True,
        batch_budget_ms=60_000,  # a loaded machine must not make the server shed these requests
    )
    from modelward.serving import create_app

    app = create_app(settings, ["churn"], tracing=Tracing(provider, phases="spans"))
    answers: dict[str, httpx.Response] = {}

    async def run() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

                async def post(path: str, body: object, rid: str, **headers: str) -> httpx.Response:
                    return await client.post(path, json=body, headers={"x-request-id": rid, **headers})

                answers["one"] = await post("/models/churn/predict", {"features": ROW}, "one")
                answers["child"] = await post(
                    "/models/churn/predict",
                    {"features": ROW2},
                    "child",
                    traceparent=f"00-{TRACE_ID}-{PARENT_ID}-01",
                )
                answers["rows"] = await post("/models/churn/predict", {"instances": [ROW, ROW2, ROW]}, "rows")
                answers["bad"] = await post("/models/churn/predict", {"features": {"age": "old"}}, "bad")
                answers["named"] = await post("/models/churn/versions/1/predict", {"features": ROW}, "named")
                answers["v2"] = await post(
                    "/v2/models/churn/infer",
                    _infer_body([ROW, ROW2]),
                    "v2",
                    traceparent=f"00-{V2_TRACE_ID}-{PARENT_ID}-01",
                )
                answers["v2-named"] = await post(
                    "/v2/models/churn/versions/1/infer", _infer_body([ROW]), "v2-named"
                )
                answers["v2-bad"] = await post("/v2/models/churn/infer", {"inputs": []}, "v2-bad")
                together = await asyncio.gather(
                    *(
                        post("/models/churn/predict", {"features": ROW}, f"together-{i}")
                        for i in range(TOGETHER)
                    )
                )
            return list(together)

    together = asyncio.run(run())
    provider.shutdown()
    return Traced(list(exporter.get_finished_spans()), answers, together)


def _phases(traced: Traced, span: ReadableSpan) -> Sequence[str]:
    return sorted(c.name for c in traced.children(span))


def test_a_prediction_is_a_server_span_with_its_phases_as_children(traced: Traced) -> None:
    assert traced.answers["one"].status_code == 200, traced.answers["one"].text
    span = traced.server("one")
    assert span.name == "POST /models/{name}/predict"
    attrs = dict(span.attributes or {})
    assert attrs["modelward.model.name"] == "churn"
    assert attrs["modelward.model.version"] == traced.answers["one"].headers["x-model-version"] == "1"
    assert attrs["modelward.arm"] == traced.answers["one"].headers["x-model-arm"]
    assert attrs["http.request.method"] == "POST"
    assert attrs["http.route"] == "/models/{name}/predict"
    assert attrs["url.path"] == "/models/churn/predict"
    assert attrs["http.response.status_code"] == 200
    children = traced.children(span)
    assert sorted(c.name for c in children) == sorted(PHASES)
    assert span.start_time is not None and span.end_time is not None
    for child in children:  # inside the request's span, one after the other
        assert child.start_time is not None and child.end_time is not None
        assert span.start_time <= child.start_time <= child.end_time <= span.end_time
        assert child.get_span_context().trace_id == span.get_span_context().trace_id  # type: ignore[union-attr]
    ordered = sorted(children, key=lambda c: (c.start_time or 0, c.end_time or 0))
    assert ordered[-1].name == "log"
    assert all(a.end_time == b.start_time for a, b in itertools.pairwise(ordered))


def test_a_client_traceparent_makes_the_request_span_its_child(traced: Traced) -> None:
    span = traced.server("child")
    ctx, parent = span.get_span_context(), span.parent
    assert ctx is not None and parent is not None
    assert f"{ctx.trace_id:032x}" == TRACE_ID
    assert f"{parent.span_id:016x}" == PARENT_ID and parent.is_remote
    other = traced.server("one").get_span_context()
    assert other is not None and f"{other.trace_id:032x}" != TRACE_ID  # without one: a trace of its own


def test_requests_answered_together_each_have_their_span_and_name_their_batch(traced: Traced) -> None:
    assert all(a.status_code == 200 for a in traced.together)
    spans = [traced.server(f"together-{i}") for i in range(TOGETHER)]
    assert len({s.get_span_context().trace_id for s in spans}) == TOGETHER  # type: ignore[union-attr]
    sizes = []
    for span in spans:
        assert _phases(traced, span) == sorted(PHASES)
        (predict,) = [c for c in traced.children(span) if c.name == "predict"]
        sizes.append((predict.attributes or {})["modelward.batch.requests"])
    # Each call's size is said by each of its requests: n requests of size k come in groups of k.
    assert all(sizes.count(k) % k == 0 for k in set(sizes)) and max(sizes) > 1


def test_several_rows_and_the_fastapi_route_trace_the_same_phases(traced: Traced) -> None:
    rows = traced.server("rows")
    assert _phases(traced, rows) == sorted(PHASES)
    (predict,) = [c for c in traced.children(rows) if c.name == "predict"]
    assert (predict.attributes or {})["modelward.rows"] == 3
    named = traced.server("named")  # a named version: the FastAPI route
    assert traced.answers["named"].status_code == 200
    assert _phases(traced, named) == sorted(PHASES)
    attrs = dict(named.attributes or {})
    assert attrs["http.route"] == "/models/{name}/versions/{version}/predict"
    assert (attrs["modelward.model.version"], attrs["modelward.arm"]) == ("1", "direct")


def test_open_inference_protocol_requests_are_traced_the_same_way(traced: Traced) -> None:
    answer = traced.answers["v2"]
    assert answer.status_code == 200, answer.text
    span = traced.server("v2")
    assert span.name == "POST /v2/models/{name}/infer"
    ctx, parent = span.get_span_context(), span.parent
    assert ctx is not None and parent is not None
    assert f"{ctx.trace_id:032x}" == V2_TRACE_ID and f"{parent.span_id:016x}" == PARENT_ID
    attrs = dict(span.attributes or {})
    assert attrs["http.route"] == "/v2/models/{name}/infer"
    assert attrs["url.path"] == "/v2/models/churn/infer"
    assert attrs["modelward.model.name"] == "churn"
    assert attrs["modelward.model.version"] == answer.headers["x-model-version"] == "1"
    assert attrs["modelward.arm"] == answer.headers["x-model-arm"]
    assert attrs["http.response.status_code"] == 200
    assert _phases(traced, span) == sorted(PHASES)
    (predict,) = [c for c in traced.children(span) if c.name == "predict"]
    assert (predict.attributes or {})["modelward.rows"] == 2
    named = traced.server("v2-named")
    assert traced.answers["v2-named"].status_code == 200
    assert dict(named.attributes or {})["http.route"] == "/v2/models/{name}/versions/{version}/infer"
    bad = traced.server("v2-bad")
    assert traced.answers["v2-bad"].status_code == 422
    assert (bad.attributes or {})["http.response.status_code"] == 422
    assert bad.status.status_code is not StatusCode.ERROR


def test_a_refused_request_is_traced_with_its_status_and_not_as_a_server_error(traced: Traced) -> None:
    assert traced.answers["bad"].status_code == 422
    span = traced.server("bad")
    assert (span.attributes or {})["http.response.status_code"] == 422
    assert span.status.status_code is not StatusCode.ERROR
    assert "predict" not in _phases(traced, span)


def test_tracing_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(MissingDependency) as caught:
        load_tracing()
    assert caught.value.extra == "tracing" and "modelward[tracing]" in str(caught.value)


def test_phases_as_events_are_marked_on_the_request_span_in_order() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider, phases="events")
    trace = tracing.start("churn", "/models/churn/predict", [(b"traceparent", b"not a traceparent")], 0.0)
    assert trace is not None  # a malformed traceparent starts a trace of its own
    for phase in PHASES[:-1]:
        trace.mark(phase, attributes={"modelward.rows": 2} if phase == "predict" else None)
    trace.finish(200, version="3", arm="challenger", request_id="r-1")
    (span,) = exporter.get_finished_spans()
    assert span.parent is None and [e.name for e in span.events] == list(PHASES)
    times = [e.timestamp for e in span.events]
    assert times == sorted(times) and span.end_time == times[-1]
    assert dict(span.events[3].attributes or {}) == {"modelward.rows": 2}
    assert (span.attributes or {})["modelward.arm"] == "challenger"


def _handing_over(phases: Phases = "events") -> tuple[Tracing, list[tuple[Any, ...]]]:
    """A Tracing as load_tracing makes it (spans as values, the sampler as the SDK reads it from
    the OTEL_* variables), handing its spans to a list instead of an export process."""
    handed: list[tuple[Any, ...]] = []
    return Tracing(TracerProvider(), phases=phases, hand_over=handed.append), handed


def test_the_sampler_decides_before_a_span_is_made_and_the_span_keeps_the_decision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
    tracing, _ = _handing_over()
    kept = [tracing.start("churn", "/models/churn/predict", [], 0.0) for _ in range(400)]
    traces = [t for t in kept if t is not None]
    assert 140 <= len(traces) <= 260
    sampler = tracing.provider.sampler  # which, asked about each kept trace id, agrees
    assert all(sampler.should_sample(None, t.trace_id, "x").decision.is_sampled() for t in traces)
    assert len({t.trace_id for t in traces}) == len(traces)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    none, _ = _handing_over()
    assert all(none.start("churn", "/models/churn/predict", [], 0.0) is None for _ in range(100))


@pytest.mark.parametrize(
    ("name", "arg"),
    [
        ("parentbased_traceidratio", "0.01"),
        ("parentbased_traceidratio", "0.3333"),
        ("traceidratio", "0.25"),
        ("parentbased_traceidratio", "1"),
        ("always_off", None),
        ("parentbased_always_on", None),
    ],
)
def test_the_cheap_sampling_rule_is_the_sdk_samplers_own(
    monkeypatch: pytest.MonkeyPatch, name: str, arg: str | None
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", name)
    if arg is not None:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)
    sampler = TracerProvider().sampler  # as the SDK reads the variables
    bound = root_bound(sampler)
    assert bound is not None
    if arg is not None:
        assert bound == TraceIdRatioBased(float(arg)).bound
    # At, and on either side of, the bound the SDK's sampler decides as the bound says.
    for low in {0, max(bound - 1, 0), bound, (1 << 64) - 1} - {1 << 64}:
        decision = sampler.should_sample(None, (7 << 64) | low, "x").decision
        assert decision.is_sampled() is (low < bound), low


def test_a_parents_decision_is_kept_whatever_the_ratio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    for ratio, flags, kept in (("0", "01", True), ("1", "00", False)):
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", ratio)
        tracing, _ = _handing_over()
        header = [(b"traceparent", f"00-{TRACE_ID}-{PARENT_ID}-{flags}".encode())]
        trace = tracing.start("churn", "/models/churn/predict", header, 0.0)
        assert (trace is not None) is kept
        if trace is not None:
            assert trace.trace_id == int(TRACE_ID, 16)
            assert trace.parent == (int(PARENT_ID, 16), True, 1)


def test_a_custom_sampler_is_asked_before_a_span_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []

    class EvenOnly(Sampler):
        def should_sample(
            self, parent_context: Any, trace_id: int, *args: Any, **kwargs: Any
        ) -> SamplingResult:
            asked.append(trace_id)
            return SamplingResult(Decision.RECORD_AND_SAMPLE if trace_id % 2 == 0 else Decision.DROP)

        def get_description(self) -> str:
            return "EvenOnly"

    tracing = Tracing(TracerProvider(sampler=EvenOnly()), hand_over=[].append)
    traces = [tracing.start("churn", "/models/churn/predict", [], 0.0) for _ in range(50)]
    kept = [t for t in traces if t is not None]
    assert kept and len(kept) < 50 and len(asked) == 50
    assert all(t.trace_id % 2 == 0 for t in kept)


def _given(ns: int | None) -> int | str | None:
    """A clock reading the test gave, or "now" (the log phase's end, read at finish)."""
    return ns if ns is None or ns < 10**6 else "now"


@pytest.mark.parametrize("phases", ["events", "spans"])
@pytest.mark.parametrize("status", [200, 503])
def test_spans_handed_over_as_values_are_the_spans_the_sdk_makes(phases: Phases, status: int) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    handing, handed = _handing_over(phases)
    header = [(b"traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01".encode()), (b"tracestate", b"vendor=x")]
    made: list[list[ReadableSpan]] = []
    for tracing in (Tracing(provider, phases=phases), handing):
        trace = tracing.start("churn", "/models/churn/predict", header, 0.0)
        assert trace is not None
        trace.start = 1_000  # the same clock readings for both (the SDK's span keeps its own start)
        for i, phase in enumerate(PHASES[:-1]):
            trace.mark(phase, 2_000 + i, {"modelward.rows": 2} if phase == "predict" else None)
        trace.finish(status, version="3", arm="challenger", request_id="r-1")
    made.append(list(exporter.get_finished_spans()))
    made.append([span_from_values(orjson.loads(orjson.dumps(v)), provider.resource, {}) for v in handed])
    shapes = []
    for spans in made:
        (server,) = [s for s in spans if s.kind is SpanKind.SERVER]
        server_id = server.get_span_context().span_id  # type: ignore[union-attr]
        children = [
            (
                c.name,
                c.kind,
                c.start_time,
                _given(c.end_time),
                dict(c.attributes or {}),
                c.parent.span_id == server_id,
            )  # type: ignore[union-attr]
            for c in spans
            if c is not server
        ]
        ctx = server.get_span_context()
        assert ctx is not None and server.end_time is not None
        shapes.append(
            (
                server.name,
                f"{ctx.trace_id:032x}",
                ctx.trace_state.to_header(),
                ctx.trace_flags.sampled,
                (server.parent.span_id, server.parent.is_remote),  # type: ignore[union-attr]
                dict(server.attributes or {}),
                [(e.name, _given(e.timestamp), dict(e.attributes or {})) for e in server.events],
                server.status.status_code,
                server.instrumentation_scope.name,  # type: ignore[union-attr]
                sorted(children, key=lambda c: c[2] or 0),
            )
        )
    assert shapes[0] == shapes[1]
    assert shapes[0][1] == TRACE_ID and shapes[0][2] == "vendor=x"


def test_an_sdk_span_crosses_to_the_export_process_unchanged() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("elsewhere")
    with (
        tracer.start_as_current_span("outer", kind=SpanKind.CLIENT),
        tracer.start_as_current_span("inner", attributes={"a": 1, "b": ["x", "y"]}) as inner,
    ):
        inner.add_event("e", {"n": 2.5})
        inner.set_status(StatusCode.ERROR, "broken")
    for span in exporter.get_finished_spans():
        ctx = span.get_span_context()
        assert ctx is not None
        back = span_from_values(orjson.loads(orjson.dumps(span_values(span, ctx))), provider.resource, {})
        assert back.to_json() == span.to_json()


def test_the_sdks_samplers_made_in_code_are_known_by_their_configuration() -> None:
    assert root_bound(ParentBased(ALWAYS_ON)) == 1 << 64
    assert root_bound(ParentBased(ALWAYS_OFF)) == 0
    assert root_bound(TraceIdRatioBased(0.5)) == 1 << 63
    # Other delegates, or a sampler of one's own: asked about every request.
    assert root_bound(ParentBased(ALWAYS_ON, remote_parent_sampled=ALWAYS_OFF)) is None


def test_spans_for_an_export_process_that_is_gone_are_dropped_and_counted() -> None:
    gone = ProcessExport([sys.executable, "-c", "pass"])  # ends at once, reading nothing
    gone._proc.wait(timeout=60)
    tracing = Tracing(TracerProvider(sampler=ALWAYS_ON), hand_over=gone.put)
    for _ in range(3):
        trace = tracing.start("churn", "/models/churn/predict", [], 0.0)
        assert trace is not None
        trace.finish(200)
    assert gone.force_flush() is False
    assert gone.dropped == 3
    gone.shutdown()  # and the server's shutdown does not wait on it
