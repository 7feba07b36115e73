"""The tracing scenario's pieces: its OTLP sink counts the spans it is sent, and every system it
measures is a modelward server with tracing set as its description says."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def tracing_cost() -> Iterator[Any]:
    sys.path.insert(0, str(BENCH))
    import tracing_cost

    yield tracing_cost
    sys.path.remove(str(BENCH))


def test_the_sink_answers_exports_and_counts_their_spans(tracing_cost: Any) -> None:
    sink = tracing_cost.Sink()
    try:
        spans = [Span(trace_id=bytes(16), span_id=bytes([i + 1] * 8), name=f"s{i}") for i in range(3)]
        request = ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
        )
        body = request.SerializeToString()
        for _ in range(2):
            answer = httpx.post(
                sink.url + "/v1/traces", content=body, headers={"content-type": "application/x-protobuf"}
            )
            assert answer.status_code == 200
        assert sink.stats() == {"exports": 2, "bytes": 2 * len(body), "spans": 6}
    finally:
        sink.stop()


def test_each_system_is_a_server_with_tracing_set_as_described(tracing_cost: Any) -> None:
    made: dict[str, dict[str, str]] = {}

    def mw(name: str, description: str, **settings: str) -> str:
        made[name] = settings
        return name

    built = [build() for build in tracing_cost.builders(mw, "http://127.0.0.1:4318")]
    assert built == tracing_cost.NAMES
    assert made["mw-untraced"] == {}
    for name in tracing_cost.NAMES[1:]:
        assert made[name]["MODELWARD_TRACING"] == "true"
        assert made[name]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"
    assert made["mw-traced-100-spans"]["MODELWARD_TRACING_PHASES"] == "spans"
    assert made["mw-traced-1"]["OTEL_TRACES_SAMPLER_ARG"] == "0.01"
    assert made["mw-traced-0"]["OTEL_TRACES_SAMPLER_ARG"] == "0"
