"""What one connection may hold, over raw sockets: a request whose headers or body stall is cut off
(408), an idle connection is closed (also one that never sent a byte, also while others are busy),
a connection answered 413 before its body arrived is closed (one answered otherwise goes on), and connections beyond the per-worker
cap get 503 with Retry-After while the first ones are served. The limits are set small here."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.monitoring.test_prediction_log import wait_until
from tests.serving.conftest import Server, server_env, start_server
from tests.serving.test_http_protocol import (
    PREDICT,
    connect,
    problem,
    read_responses,
    read_until_closed,
    request,
)
from tests.serving.test_predict_api import ROW

INFER = "/v2/models/churn/infer"  # a route FastAPI answers (uvicorn's ASGI path)


@pytest.fixture(scope="module")
def limited(churn_home: Path) -> Iterator[Server]:
    env = server_env(
        churn_home,
        MODELWARD_HEADER_TIMEOUT="1",
        MODELWARD_BODY_TIMEOUT="1",
        MODELWARD_KEEP_ALIVE_TIMEOUT="1",
        MODELWARD_MAX_BODY_BYTES="4096",
    )
    s = start_server(churn_home, "churn", "--reload-interval", "0", env=env)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def capped(churn_home: Path) -> Iterator[Server]:
    env = server_env(churn_home, MODELWARD_MAX_CONNECTIONS="4", MODELWARD_KEEP_ALIVE_TIMEOUT="120")
    s = start_server(churn_home, "churn", "--reload-interval", "0", env=env)
    yield s
    s.stop()


def test_a_request_whose_headers_stall_gets_408_and_is_closed(limited: Server) -> None:
    for head in (b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: t\r\nContent-", b"GET /hea"):
        with connect(limited) as s:
            s.sendall(head)
            status, _, body = problem(read_until_closed(s))
        assert status == 408 and body["status"] == 408 and "headers" in str(body["detail"])


def test_headers_sent_a_byte_at_a_time_are_cut_off_too(limited: Server) -> None:
    """The header time limit counts from the first byte, not from the last one: a byte every 0.1 s
    (each sent when the server has not answered in that time) does not keep the connection."""
    with connect(limited) as s:
        s.sendall(b"GET /health HTTP/1.1\r\n")
        for _ in range(300):  # 30 s of trickling at most
            readable, _, _ = select.select([s], [], [], 0.1)
            if readable:
                break
            try:
                s.sendall(b"x")
            except OSError:
                break
        status, _, _ = problem(read_until_closed(s))
    assert status == 408


def test_a_body_that_stalls_is_cut_off(limited: Server) -> None:
    body = json.dumps({"features": ROW}).encode()
    with connect(limited) as s:  # the fast lane: 408
        s.sendall(request(body)[:-10])
        status, _, problem_body = problem(read_until_closed(s))
    assert status == 408 and "body" in str(problem_body["detail"])
    with connect(limited) as s:  # the app has the request: it sees the client go, nothing is answered
        s.sendall(request(body, path=INFER)[:-10])
        assert read_until_closed(s) == b""


def test_idle_connections_are_closed_while_busy_ones_are_served(limited: Server) -> None:
    stop = threading.Event()
    served: list[int] = []
    errors: list[BaseException] = []

    def busy() -> None:
        try:
            with connect(limited) as s:
                while not stop.is_set():
                    s.sendall(request({"features": ROW}))
                    assert read_responses(s, 1)[0][0] == 200
                    served.append(1)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    workers = [threading.Thread(target=busy) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        never_sent = connect(limited)
        answered = connect(limited)
        answered.sendall(request({"features": ROW}))
        assert read_responses(answered, 1)[0][0] == 200
        assert read_until_closed(never_sent) == b""
        assert read_until_closed(answered) == b""
        never_sent.close()
        answered.close()
    finally:
        stop.set()
        for w in workers:
            w.join(30)
    assert not errors, errors
    assert served


@pytest.mark.parametrize("path", [PREDICT, INFER])
def test_a_connection_answered_413_before_its_chunked_body_ended_is_closed(
    limited: Server, path: str
) -> None:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"%x\r\n%s\r\n" % (1000, b" " * 1000)
    with connect(limited) as s:
        s.sendall(head + chunk * 8)  # 8,000 bytes against the limit of 4,096, and no last chunk
        response = read_until_closed(s)
    # The app's answer may not announce the close (it cannot know the body is unfinished)
    status, _, body = problem(response, says_close=path == PREDICT)
    assert status == 413 and body["status"] == 413


def test_an_answer_sent_before_its_body_arrived_keeps_the_connection_for_the_next_request(
    limited: Server,
) -> None:
    """A route that answers without reading the body (401 on an admin route) before the body has
    arrived: the answer does not say it closes, so the client sends its next request on the same
    connection, and that request is answered (the rest of the first body is read and dropped)."""
    body = json.dumps({"model": "churn", "arms": []}).encode()
    head = (
        "PUT /admin/deployments/churn HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with connect(limited) as s:
        s.sendall(head)  # the headers only: the route answers before the body is sent
        [(status, headers, _)] = read_responses(s, 1)
        assert status == 401 and headers.get("connection") != "close"
        s.sendall(body + b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        [(status, _, answer)] = read_responses(s, 1)
    assert status == 200, answer


def test_connections_beyond_the_cap_get_503_while_the_first_are_served(capped: Server) -> None:
    held: list[socket.socket] = []

    def one_more_served() -> bool:
        # the readiness probe's connection may be counted a moment after it closed: retry
        s = connect(capped)
        s.sendall(request({"features": ROW}))
        try:
            answered = read_responses(s, 1)[0][0] == 200
        except (AssertionError, ConnectionResetError):
            answered = False
        if answered:
            held.append(s)
        else:
            s.close()
        return answered

    try:
        for _ in range(4):
            wait_until(one_more_served, timeout=20)
        for _ in range(3):
            with connect(capped) as s:
                with contextlib.suppress(OSError):  # closed before the request was written: still answered
                    s.sendall(request({"features": ROW}))
                status, headers, body = problem(read_until_closed(s))
            assert status == 503 and headers["retry-after"] == "1"
            assert body["type"] == "https://modelward.dev/problems/overloaded"
        for s in held:
            s.sendall(request({"features": ROW}))
            assert read_responses(s, 1)[0][0] == 200
        held.pop().close()
        wait_until(one_more_served, timeout=20)
    finally:
        for s in held:
            s.close()
