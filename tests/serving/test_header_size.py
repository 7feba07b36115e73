"""The request line and headers are limited (64 KiB by default): a larger block gets 431 as
problem+json and the connection closes, on the fast lane and on routes FastAPI answers, whether
the block streams in over many reads or arrives in one; the server's memory does not grow by what
clients send beyond the limit; a block under the limit, and a pipelined burst larger than it, are
served."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from pathlib import Path

from tests.serving import test_http_protocol as raw
from tests.serving.conftest import Server
from tests.serving.test_predict_api import ROW

LIMIT = 64 * 1024


def head(path: str, header_bytes: int, *, method: str = "POST") -> bytes:
    """A request line and headers with one ``X-Big`` header of about ``header_bytes``, no blank line."""
    return f"{method} {path} HTTP/1.1\r\nHost: t\r\nX-Big: {'a' * header_bytes}\r\n".encode()


def send_in_background(sock: socket.socket, data: bytes) -> threading.Thread:
    def send() -> None:
        # the server closes the connection: what it did not read is not sent
        with contextlib.suppress(OSError):
            sock.sendall(data)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_header_block_over_the_limit_gets_431_and_the_connection_closes(server: Server) -> None:
    for path, method in ((raw.PREDICT, "POST"), ("/health", "GET")):
        with raw.connect(server) as s:
            sender = send_in_background(s, head(path, 4 * 1024 * 1024, method=method))
            status, _, body = raw.problem(raw.read_until_closed(s))
            sender.join(30)
        assert status == 431 and body["status"] == 431
        assert body["type"] == "https://modelward.dev/problems/header-too-large"


def test_a_whole_request_over_the_limit_in_one_write_gets_431(server: Server) -> None:
    data = json.dumps({"features": ROW}).encode()
    whole = head(raw.PREDICT, LIMIT + 1024) + f"Content-Length: {len(data)}\r\n\r\n".encode() + data
    for payload in (whole, head("/health", LIMIT + 1024, method="GET") + b"\r\n"):
        with raw.connect(server) as s:
            s.sendall(payload)
            status, _, _ = raw.problem(raw.read_until_closed(s))
        assert status == 431


def test_a_header_block_under_the_limit_is_served(server: Server) -> None:
    data = json.dumps({"features": ROW}).encode()
    with raw.connect(server) as s:
        s.sendall(head(raw.PREDICT, LIMIT - 2048) + f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        s.sendall(head("/health", LIMIT - 2048, method="GET") + b"\r\n")
        answers = raw.read_responses(s, 2)
    assert [a[0] for a in answers] == [200, 200]


def test_a_pipelined_burst_larger_than_the_limit_is_answered_whole(server: Server) -> None:
    burst = b"".join(raw.request({"features": ROW, "request_id": f"burst-{i}"}) for i in range(600))
    assert len(burst) > 2 * LIMIT
    with raw.connect(server) as s:
        s.sendall(burst)
        answers = raw.read_responses(s, 600)
    assert [a[0] for a in answers] == [200] * 600
    assert [a[1]["x-request-id"] for a in answers] == [f"burst-{i}" for i in range(600)]


def test_header_floods_do_not_grow_the_server_by_their_volume(server: Server) -> None:
    """Four connections each send 64 MiB of one header; measured: 226 MB each took a server from
    374 MB to 2.3 GB. The server cuts each off after the limit (and at most one read more)."""
    volume = 64 * 1024 * 1024
    before = rss_bytes(server.proc.pid)
    sockets = [raw.connect(server) for _ in range(4)]
    try:
        senders = [send_in_background(s, head("/health", volume, method="GET")) for s in sockets]
        for sender in senders:  # cut off by the server, or everything sent
            sender.join(120)
        grown = rss_bytes(server.proc.pid) - before
        assert grown < volume // 4, f"the server grew by {grown / 2**20:.0f} MiB"
        answers = [raw.read_until_closed(s) for s in sockets]
    finally:
        for s in sockets:
            s.close()
    assert all(raw.problem(a)[0] == 431 for a in answers)
