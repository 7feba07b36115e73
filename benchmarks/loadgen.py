"""Load generators: wrk when it is installed, else a small asyncio HTTP/1.1 keep-alive client.

Both send the same pre-built POST to one URL over ``connections`` persistent connections for
``duration`` seconds, each connection sending its next request as soon as the last answer arrived
(a closed loop, as wrk does), and both report through one line ``BENCH_JSON {...}`` with the same
fields, which :func:`run_load` turns into a :class:`LoadResult`.

wrk (C, epoll) needs a fraction of a core for tens of thousands of requests a second, so on a
2-core machine it leaves the server its share. The Python client is the fallback for machines
without wrk (CI): it is itself CPU-bound near 10,000 requests/s, so use it to check that things
work, not to publish numbers. The result records which client measured it.

As a script this module is the Python client (run in its own process, like wrk):

    BENCH_BODY='{"features": {"x": 1}}' python benchmarks/loadgen.py --url http://127.0.0.1:8000/p -c 4 -d 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
LUA = HERE / "wrk" / "post.lua"
MARK = "BENCH_JSON "


@dataclass(frozen=True)
class LoadResult:
    """One measured run. Latencies are in milliseconds; ``errors`` counts socket errors,
    timeouts and responses with status >= 400 (``non_2xx``)."""

    client: str
    connections: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    non_2xx: int
    errors: int
    client_cpu_s: float | None = None  # the load generator's own CPU time (user + system)

    @property
    def ok(self) -> bool:
        return self.errors == 0 and self.requests > 0

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


def wrk_path() -> str | None:
    return shutil.which("wrk")


def choose_client(preference: str = "auto") -> str:
    """``auto`` picks wrk when it is on PATH; asking for wrk without it is an error."""
    if preference == "python":
        return "python"
    if wrk_path() is not None:
        return "wrk"
    if preference == "wrk":
        raise RuntimeError("wrk is not installed (Debian/Ubuntu: apt-get install -y wrk)")
    return "python"


def _parse(output: str, client: str, connections: int) -> LoadResult:
    for line in output.splitlines():
        if line.startswith(MARK):
            raw = json.loads(line[len(MARK) :])
            break
    else:
        raise RuntimeError(f"{client} printed no summary line:\n{output[-2000:]}")
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "non_2xx", "timeouts"))
    return LoadResult(
        client=client,
        connections=connections,
        seconds=round(seconds, 3),
        requests=int(raw["requests"]),
        rps=round(raw["requests"] / seconds, 1) if seconds > 0 else 0.0,
        p50_ms=round(raw["p50_us"] / 1000, 3),
        p90_ms=round(raw["p90_us"] / 1000, 3),
        p99_ms=round(raw["p99_us"] / 1000, 3),
        max_ms=round(raw["max_us"] / 1000, 3),
        mean_ms=round(raw["mean_us"] / 1000, 3),
        non_2xx=int(raw["non_2xx"]),
        errors=int(errors),
    )


def run_load(
    url: str,
    body: bytes,
    connections: int,
    duration: float,
    *,
    client: str = "auto",
    threads: int = 1,
    timeout: float = 10.0,
) -> LoadResult:
    """Send ``body`` to ``url`` for ``duration`` seconds over ``connections`` connections."""
    chosen = choose_client(client)
    if chosen == "wrk":
        cmd = wrk_command(url, LUA, connections, duration, threads, timeout)
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--url", url]
        cmd += ["-c", str(connections), "-d", str(duration), "--timeout", str(timeout)]
    output, used = run_client(cmd, body, duration + timeout + 60)
    return replace(_parse(output, chosen, connections), client_cpu_s=used)


def wrk_command(
    url: str, script: Path, connections: int, duration: float, threads: int, timeout: float
) -> list[str]:
    threads = max(1, min(threads, connections))
    seconds = max(1, round(duration))  # wrk takes whole seconds
    cmd = [wrk_path() or "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s"]
    return [*cmd, "--timeout", f"{max(1, round(timeout))}s", "-s", str(script), url]


def run_client(cmd: list[str], body: bytes, timeout: float) -> tuple[str, float]:
    """Run a load generator with ``BENCH_BODY``: its output and the CPU seconds it used."""
    env = {**os.environ, "BENCH_BODY": body.decode()}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        tail = f"{done.stdout[-1000:]}{done.stderr[-2000:]}"
        raise RuntimeError(f"{Path(cmd[0]).name} exited with {done.returncode}:\n{tail}")
    # The children waited for in between: the load generator only (the servers are waited for at stop).
    used = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return done.stdout, round(used, 4)


# --- the Python client -------------------------------------------------------------------------


class _Stats:
    def __init__(self) -> None:
        self.latencies_ns: list[int] = []
        self.non_2xx = 0
        self.connect_errors = 0
        self.read_errors = 0
        self.timeouts = 0
        self.bytes = 0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """Status, body size, and whether the server will close the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    chunked = close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and b"close" in value.lower():
            close = True
    size = len(head)
    if chunked:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            chunk = int(size_line.split(b";")[0], 16)
            await reader.readexactly(chunk + 2)
            size += chunk
            if chunk == 0:
                break
    elif length is not None:
        await reader.readexactly(length)
        size += length
    else:  # no length: the body runs to the end of the connection
        size += len(await reader.read())
        close = True
    return status, size, close


async def _connection(
    host: str, port: int, request: bytes, deadline: float, timeout: float, stats: _Stats
) -> None:
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    while time.perf_counter() < deadline:
        if writer is None:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            except (OSError, TimeoutError):
                stats.connect_errors += 1
                await asyncio.sleep(0.05)
                continue
        assert reader is not None
        assert writer is not None
        started = time.perf_counter_ns()
        try:
            writer.write(request)
            status, size, close = await asyncio.wait_for(_read_response(reader), timeout)
        except TimeoutError:
            stats.timeouts += 1
            close = True
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
            stats.read_errors += 1
            close = True
        else:
            stats.latencies_ns.append(time.perf_counter_ns() - started)
            stats.bytes += size
            if not 200 <= status < 400:
                stats.non_2xx += 1
        if close:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def _python_client(
    url: str, body: bytes, connections: int, duration: float, timeout: float
) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    stats = _Stats()
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(
        *(_connection(host, port, request, deadline, timeout, stats) for _ in range(connections))
    )
    elapsed = time.perf_counter() - started
    lat = sorted(stats.latencies_ns)

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q / 100 * len(lat)))] / 1000 if lat else 0.0

    return {
        "requests": len(lat),
        "duration_us": int(elapsed * 1e6),
        "bytes": stats.bytes,
        "connect_errors": stats.connect_errors,
        "read_errors": stats.read_errors,
        "write_errors": 0,
        "non_2xx": stats.non_2xx,
        "timeouts": stats.timeouts,
        "p50_us": pct(50),
        "p90_us": pct(90),
        "p99_us": pct(99),
        "max_us": lat[-1] / 1000 if lat else 0.0,
        "mean_us": sum(lat) / len(lat) / 1000 if lat else 0.0,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="asyncio HTTP/1.1 keep-alive load generator")
    parser.add_argument("--url", required=True)
    parser.add_argument("-c", "--connections", type=int, default=1)
    parser.add_argument("-d", "--duration", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    body = os.environ.get("BENCH_BODY", "{}").encode()
    run = asyncio.run
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        pass
    raw = run(_python_client(args.url, body, args.connections, args.duration, args.timeout))
    print(MARK + json.dumps(raw), flush=True)


if __name__ == "__main__":
    main()
