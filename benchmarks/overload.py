"""The overload scenario's measurement: goodput, the latency of accepted requests and the share shed.

wrk's own latency table mixes the quick 503s of shed requests with the answered requests, and its
status count says only "non-2xx". benchmarks/wrk/overload.lua measures each answer by its status
instead (each request carries its send time in X-Request-ID, which modelward echoes in every
answer) and prints one ``BENCH_JSON`` line, which :func:`run_overload` turns into an
:class:`OverloadResult`. Load is closed-loop like every scenario here: a connection sends its next
request as soon as the last answer arrived, a 503 included (wrk does not wait for Retry-After), so
at 1,000 connections the refused requests come back at once: the worst case for a server.

Only wrk can do this (the Python client is itself the bottleneck long before 1,000 connections),
and 1,000 connections need a file limit above the usual 1,024: :func:`raise_file_limit` raises
the soft limit of this process (inherited by the servers and wrk) up to its hard limit.
"""

from __future__ import annotations

import json
import resource
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import loadgen

HERE = Path(__file__).resolve().parent
LUA = HERE / "wrk" / "overload.lua"
# Sockets per connection (the client's and the server's) plus what servers and wrk keep open.
FILES_PER_CONNECTION = 2
SPARE_FILES = 512


@dataclass(frozen=True)
class OverloadResult:
    """One run. ``accepted`` answers are 2xx, ``shed`` 503; ``errors`` counts socket errors, timeouts
    and every other status (a 503 is the expected answer to the excess, not an error). Latencies
    are the client's, in milliseconds, per status class. ``rps``, ``p50_ms`` and ``p99_ms`` are the
    accepted requests' (goodput and its latency), so the generic summary reads them."""

    client: str
    connections: int
    seconds: float
    requests: int
    accepted: int
    shed: int
    other: int
    socket_errors: int
    timeouts: int
    rps: float  # goodput: 2xx answers per second
    shed_rps: float
    shed_share: float  # of the answers
    p50_ms: float
    p99_ms: float
    max_ms: float
    shed_p50_ms: float
    shed_p99_ms: float
    shed_without_retry_after: int
    client_cpu_s: float | None = None

    @property
    def errors(self) -> int:
        return self.socket_errors + self.timeouts + self.other

    @property
    def ok(self) -> bool:
        return self.errors == 0 and self.accepted > 0

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "errors": self.errors, "non_2xx": self.shed + self.other, "ok": self.ok}


def parse(output: str, connections: int) -> OverloadResult:
    """The result in overload.lua's summary line."""
    for line in output.splitlines():
        if line.startswith(loadgen.MARK):
            raw = json.loads(line[len(loadgen.MARK) :])
            break
    else:
        raise RuntimeError(f"wrk printed no summary line:\n{output[-2000:]}")
    seconds = raw["duration_us"] / 1e6 or 1e-9
    answered = raw["ok"] + raw["shed"] + raw["other"]
    return OverloadResult(
        client="wrk",
        connections=connections,
        seconds=round(seconds, 3),
        requests=int(raw["requests"]),
        accepted=int(raw["ok"]),
        shed=int(raw["shed"]),
        other=int(raw["other"]),
        socket_errors=int(raw["connect_errors"] + raw["read_errors"] + raw["write_errors"]),
        timeouts=int(raw["timeouts"]),
        rps=round(raw["ok"] / seconds, 1),
        shed_rps=round(raw["shed"] / seconds, 1),
        shed_share=round(raw["shed"] / answered, 4) if answered else 0.0,
        p50_ms=round(raw["ok_p50_us"] / 1000, 3),
        p99_ms=round(raw["ok_p99_us"] / 1000, 3),
        max_ms=round(raw["ok_max_us"] / 1000, 3),
        shed_p50_ms=round(raw["shed_p50_us"] / 1000, 3),
        shed_p99_ms=round(raw["shed_p99_us"] / 1000, 3),
        shed_without_retry_after=int(raw["shed_without_retry_after"]),
    )


def raise_file_limit(connections: int) -> int:
    """Raise this process's soft limit on open files to what ``connections`` need (at most the
    hard limit); returns the limit now in force. Children (servers, wrk) inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections * FILES_PER_CONNECTION + SPARE_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def run_overload(
    url: str,
    body: bytes,
    connections: int,
    duration: float,
    *,
    client: str = "auto",
    threads: int = 1,
    timeout: float = 10.0,
) -> OverloadResult:
    """Closed-loop load on ``url`` for ``duration`` seconds over ``connections`` connections,
    measured per status by overload.lua (wrk only)."""
    if client == "python" or loadgen.wrk_path() is None:
        raise RuntimeError("the overload scenario needs wrk (Debian/Ubuntu: apt-get install -y wrk)")
    limit = raise_file_limit(connections)
    if limit < connections * FILES_PER_CONNECTION:
        raise RuntimeError(
            f"{connections} connections need more open files than the hard limit allows ({limit}); "
            "raise it (ulimit -Hn, /etc/security/limits.conf) and run again"
        )
    cmd = loadgen.wrk_command(url, LUA, connections, duration, threads, timeout)
    output, used = loadgen.run_client(cmd, body, duration + timeout + 60)
    return replace(parse(output, connections), client_cpu_s=used)
