"""The ``tracing`` scenario of benchmarks/run.py: what OpenTelemetry tracing costs the serving path.

The same modelward server (churn, the benchmark's settings) untraced, traced with every request
sampled (phases as child spans, and as events), sampled at 1 % and at 0 %, each exporting OTLP/HTTP
through its export process (the SDK's batch span processor and exporter) to a local sink (this file
run as a script: a separate process that answers every export with 200 and counts the spans it got).
The servers are measured in turn, A B C D E A B C D E ..., at the largest ``--connections``, and the
medians compared.

    python benchmarks/run.py --only tracing --rounds 5 --duration 10
    python benchmarks/run.py --only tracing --mw-env MODELWARD_BATCHING=true   # batching on
    python benchmarks/tracing_cost.py --in-process   # the cost in the server's process alone
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
from typing import Any, Literal

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


HEADERS = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), (b"content-length", b"250")]


def in_process(requests: int, rounds: int) -> None:
    """What tracing costs a request in the server's process, without a server: for each traced
    system's settings, ``requests`` requests through ``load_tracing()``'s Tracing (start, the four
    phase marks, finish), exporting to the sink; the CPU time of this process per request (every
    thread: the SDK's export thread when there is one) and of its children (an export process),
    read when the tracing is closed. Medians of ``rounds``, the settings alternating. Runs against
    whichever modelward is imported (PYTHONPATH), for comparisons between commits."""
    import os
    import statistics
    import time

    from modelward.serving.tracing import load_tracing

    sink = Sink()
    os.environ.update(OTEL_EXPORTER_OTLP_ENDPOINT=sink.url, OTEL_SERVICE_NAME="modelward-benchmark")
    os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = str(requests * 6 + 1)  # none dropped: all of it is paid
    found: dict[str, list[tuple[float, float]]] = {}
    try:
        for _ in range(rounds):
            for name, _, settings in SYSTEMS[1:]:
                for key in ("MODELWARD_TRACING_PHASES", "OTEL_TRACES_SAMPLER_ARG"):
                    os.environ.pop(key, None)
                os.environ.update(settings)
                phases: Literal["spans", "events"] = (
                    "spans" if settings.get("MODELWARD_TRACING_PHASES") == "spans" else "events"
                )
                children = os.times()
                own = time.process_time()
                tracing = load_tracing(phases)
                for i in range(requests):
                    trace = tracing.start("churn", "/models/churn/predict", HEADERS, time.perf_counter())
                    if trace is not None:
                        trace.mark("parse")
                        trace.mark("route")
                        trace.mark("validate")
                        trace.mark("predict", attributes={"modelward.rows": 1})
                        trace.finish(200, version="1", arm="primary", request_id=f"request-{i}")
                tracing.close()  # every span exported before the clock stops
                own = time.process_time() - own
                after = os.times()
                child = after.children_user + after.children_system
                child -= children.children_user + children.children_system
                found.setdefault(name, []).append((own, child))
    finally:
        spans = sink.stats()["spans"]
        sink.stop()
    # An export process's start-up (imports) is what it costs when nothing is sampled: taken out.
    start_up = statistics.median(r[1] for r in found["mw-traced-0"])
    print("| system | us/request in the server's process | us/request in the export process |")
    print("|---|---|---|")
    for name, runs in found.items():
        own_us = 1e6 * statistics.median(r[0] for r in runs) / requests
        child_us = 1e6 * max(statistics.median(r[1] for r in runs) - start_up, 0.0) / requests
        print(f"| {name} | {own_us:.1f} | {child_us:.1f} |")
    print(f"\nexport process start-up: {start_up * 1e3:.0f} ms of CPU; {spans} spans received by the sink")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="an OTLP/HTTP sink that counts what it is sent")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--in-process", action="store_true", help="time the tracing of requests in process")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.in_process:
        in_process(args.requests, args.rounds)
    else:
        serve(args.port)
