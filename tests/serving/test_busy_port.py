"""`modelward serve` on a port that is taken, or a host it cannot bind, says so in one line and exits 1
before it starts anything: no model loaded, no controller, no "serving ..." line."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelward.serving.listen import WorkerSocket
from tests.serving.conftest import free_port, server_env, start_server

BUSY = "error: port {port} is in use (by another process); pick one with --port"


def _serve(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelward", "serve", "churn", "--reload-interval", "0", *args],
        env=server_env(home),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _holder(kind: str, port: int) -> socket.socket:
    """A socket holding 127.0.0.1:port the way someone else might."""
    if kind == "modelward-parent":  # another `serve --workers N` whose workers are still loading
        return WorkerSocket.bind_to("127.0.0.1", port)
    sock = socket.socket()
    if kind == "reuseport-listener":  # another `serve --workers N`'s worker, answering
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


@pytest.fixture(params=["plain-listener", "reuseport-listener", "modelward-parent"])
def held_port(request: pytest.FixtureRequest) -> Iterator[int]:
    if request.param != "plain-listener" and not hasattr(socket, "SO_REUSEPORT"):
        pytest.skip("SO_REUSEPORT is not available on this platform")
    port = free_port()
    sock = _holder(request.param, port)
    yield port
    sock.close()


def _assert_refused_in_one_line(proc: subprocess.CompletedProcess[str], line: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [line]
    assert proc.stdout == ""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_refused_before_anything_starts(
    churn_home: Path, held_port: int, workers: str
) -> None:
    proc = _serve(churn_home, "--port", str(held_port), "--workers", workers)
    _assert_refused_in_one_line(proc, BUSY.format(port=held_port))


def test_a_second_modelward_with_workers_is_refused_on_the_port_of_the_first(churn_home: Path) -> None:
    first = start_server(churn_home, "churn", "--reload-interval", "0", "--workers", "2")
    try:
        port = int(first.url.rsplit(":", 1)[1])
        proc = _serve(churn_home, "--port", str(port), "--workers", "2")
        _assert_refused_in_one_line(proc, BUSY.format(port=port))
        assert first.proc.poll() is None
    finally:
        first.stop()


def test_a_host_that_is_not_on_this_machine_is_refused_in_one_line(churn_home: Path) -> None:
    # 192.0.2.0/24 is reserved for documentation: no machine has it, so binding it fails.
    proc = _serve(churn_home, "--host", "192.0.2.1", "--port", str(free_port()))
    _assert_refused_in_one_line(
        proc,
        "error: cannot bind 192.0.2.1: it is not an address of this machine; pick one with --host "
        "(127.0.0.1 for this machine only, 0.0.0.0 for every interface)",
    )
