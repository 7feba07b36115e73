"""A real ``modelward serve`` with ``MODELWARD_TRACING=1`` exports its spans over OTLP/HTTP, configured
by the standard ``OTEL_*`` variables alone, to a receiver the test runs (it decodes the protobuf
``ExportTraceServiceRequest``). Sampled at ratio 0, requests of their own send nothing; a request
whose client sampled its trace (``traceparent`` flags 01) is exported under the client's trace, its
phases as events of its span (the default)."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from modelward.serving.tracing import PHASES
from tests.monitoring.test_prediction_log import wait_until
from tests.serving.conftest import server_env, start_server
from tests.serving.test_predict_api import ROW

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"


class Receiver:
    """An OTLP/HTTP traces endpoint: every span it was sent, with its resource's attributes."""

    def __init__(self) -> None:
        self.spans: list[tuple[dict[str, Any], Any]] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with receiver.lock:
                    receiver.paths.append(self.path)
                    for resource_spans in request.resource_spans:
                        resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                        for scope_spans in resource_spans.scope_spans:
                            receiver.spans += [(resource, span) for span in scope_spans.spans]
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def received(self) -> list[tuple[dict[str, Any], Any]]:
        with self.lock:
            return list(self.spans)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_a_served_model_exports_sampled_traces_over_otlp_http_and_none_at_ratio_zero(
    home: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = server_env(
        home,
        MODELWARD_TRACING="1",
        OTEL_SERVICE_NAME="churn-scoring",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0",
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    for key in [k for k in env if k.startswith("OTEL_") and k not in _OURS]:
        del env[key]  # nothing of the machine's own OpenTelemetry set-up
    server = start_server(home, "churn", "--reload-interval", "0", env=env)
    try:
        with server.client() as client:
            for _i in range(20):  # the sampler's to decide: ratio 0 keeps none
                assert client.post("/models/churn/predict", json={"features": ROW}).status_code == 200
            sampled = client.post(
                "/models/churn/predict",
                json={"features": ROW, "request_id": "sampled-by-client"},
                headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
            )
            assert sampled.status_code == 200
        wait_until(lambda: len(receiver.received()) >= 1, timeout=30)
    finally:
        server.stop()  # the lifespan flushes the exporter on the way out
    spans = receiver.received()  # after the shutdown's flush: still only the client's trace
    assert receiver.paths and set(receiver.paths) == {"/v1/traces"}
    assert {span.trace_id.hex() for _, span in spans} == {TRACE_ID}
    (root,) = [span for _, span in spans]  # by default, the phases are the request span's events
    assert root.parent_span_id.hex() == PARENT_ID
    attrs = {a.key: a.value for a in root.attributes}
    assert root.name == "POST /models/{name}/predict"
    assert attrs["modelward.model.name"].string_value == "churn"
    assert attrs["modelward.model.version"].string_value == sampled.headers["x-model-version"]
    assert attrs["modelward.arm"].string_value == sampled.headers["x-model-arm"]
    assert attrs["modelward.request_id"].string_value == "sampled-by-client"
    assert attrs["http.response.status_code"].int_value == 200
    assert [e.name for e in root.events] == list(PHASES)
    assert root.start_time_unix_nano <= root.events[0].time_unix_nano <= root.end_time_unix_nano
    assert {resource["service.name"] for resource, _ in spans} == {"churn-scoring"}


_OURS = {
    "OTEL_SERVICE_NAME",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_BSP_SCHEDULE_DELAY",
}
