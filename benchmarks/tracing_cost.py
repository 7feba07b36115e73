"""The ``tracing`` scenario of benchmarks/run.py: what OpenTelemetry tracing costs the serving path.

The same modelward server (churn, the benchmark's settings) untraced, traced with every request
sampled (phases as child spans, and as events), sampled at 1 % and at 0 %, each exporting OTLP/HTTP through
its export process (the SDK's batch span processor and exporter) to a local sink (this file run as a script: a separate process that
answers every export with 200 and counts the spans it got). The servers are measured in
turn, A B C D E A B C D E ..., at the largest ``--connections``, and the medians compared.

    python benchmarks/run.py --only tracing --rounds 5 --duration 10
    python benchmarks/run.py --only tracing --mw-env MODELWARD_BATCHING=true   # batching on
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent

# name, description, settings beyond the benchmark's own
SYSTEMS: list[tuple[str, str, dict[str, str]]] = [
    ("mw-untraced", "modelward serve, tracing off", {}),
    (
        "mw-traced-100-spans",
        "tracing on, every request sampled, phases as child spans",
        {
            "MODELWARD_TRACING": "true",
            "MODELWARD_TRACING_PHASES": "spans",
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        },
    ),
    (
        "mw-traced-100",
        "tracing on, every request sampled, phases as events of the request's span (the default)",
        {"MODELWARD_TRACING": "true", "OTEL_TRACES_SAMPLER": "parentbased_always_on"},
    ),
    (
        "mw-traced-1",
        "tracing on, 1 % sampled (parentbased_traceidratio 0.01)",
        {
            "MODELWARD_TRACING": "true",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.01",
        },
    ),
    (
        "mw-traced-0",
        "tracing on, none sampled (ratio 0): the cost of the sampling decision alone",
        {
            "MODELWARD_TRACING": "true",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0",
        },
    ),
]
NAMES = [name for name, _, _ in SYSTEMS]


class Sink:
    """The sink process: started before the servers, its counts read after the runs."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.url = json.loads(line)["url"]

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(self.url + "/stats", timeout=10).json())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def builders(mw: Callable[..., Any], endpoint: str) -> list[Callable[[], Any]]:
    """One builder per system; ``mw(name, description, **settings)`` as run.py's scenario_systems has it."""
    common = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": "modelward-benchmark"}

    def make(name: str, description: str, settings: dict[str, str]) -> Callable[[], Any]:
        extra = {**common, **settings} if settings else {}
        return lambda: mw(name, description, **extra)

    return [make(name, description, settings) for name, description, settings in SYSTEMS]


def serve(port: int) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    counts = {"exports": 0, "bytes": 0, "spans": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            size = int(self.headers.get("content-length", "0"))
            request = ExportTraceServiceRequest.FromString(self.rfile.read(size))
            spans = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
            with lock:
                counts["exports"] += 1
                counts["bytes"] += size
                counts["spans"] += spans
            self._answer(b"", "application/x-protobuf")  # an empty ExportTraceServiceResponse

        def do_GET(self) -> None:
            with lock:
                body = json.dumps(counts).encode()
            self._answer(body, "application/json")

        def _answer(self, body: bytes, ctype: str) -> None:
            self.send_response(200)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(json.dumps({"url": f"http://127.0.0.1:{server.server_address[1]}"}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="an OTLP/HTTP sink that counts what it is sent")
    parser.add_argument("--port", type=int, default=0)
    serve(parser.parse_args().port)
