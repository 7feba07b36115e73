"""The server's HTTP/1.1 protocol on the prediction route, byte by byte over raw sockets: keep-alive,
pipelining, HTTP/1.0 and Connection: close, Expect: 100-continue, encoded paths and query strings,
unsafe request ids, clients that vanish mid-request, requests that cannot be parsed; and the joint
(hot) path answering exactly as the request-by-request path does."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.serving.conftest import Server
from tests.serving.test_predict_api import ROW, ROW2

PREDICT = "/models/churn/predict"


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=15)


def request(body: object, *, path: str = PREDICT, version: str = "1.1", extra: str = "") -> bytes:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/{version}\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n{extra}\r\n"
    )
    return head.encode() + data


def read_responses(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """``count`` whole responses (status, lower-cased headers, body), by their Content-Length."""
    buffer = b""
    out: list[tuple[int, dict[str, str], bytes]] = []
    while len(out) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed after {len(out)} responses: {buffer!r}")
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:])}
        length = int(headers["content-length"])
        while len(buffer) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError("connection closed inside a body")
            buffer += chunk
        out.append((status, headers, buffer[:length]))
        buffer = buffer[length:]
    return out


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, TimeoutError):
        return False


def read_until_closed(sock: socket.socket, timeout: float = 20) -> bytes:
    """Everything the server sends until it closes the connection (a reset after data counts as a
    close); fails if it is still open after ``timeout``."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        except TimeoutError:
            raise AssertionError(f"the server kept the connection open; got {data!r}") from None
        if not chunk:
            return data
        data += chunk


def problem(response: bytes, *, says_close: bool = True) -> tuple[int, dict[str, str], dict[str, object]]:
    """Status, headers and body of a problem answer (announcing that the connection closes)."""
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:])}
    assert headers["content-type"] == "application/problem+json", response
    if says_close:
        assert headers["connection"] == "close"
    return int(lines[0].split()[1]), headers, json.loads(body)


def test_keep_alive_connection_answers_many_requests_in_turn(server: Server) -> None:
    with connect(server) as s:
        for i in range(50):
            s.sendall(request({"features": ROW, "request_id": f"k-{i}"}))
            [(status, headers, body)] = read_responses(s, 1)
            assert status == 200 and headers["x-request-id"] == f"k-{i}"
            assert json.loads(body)["predictions"][0]["request_id"] == f"k-{i}"
            assert "connection" not in headers and "date" in headers


def test_pipelined_requests_are_answered_in_the_order_sent(server: Server) -> None:
    """Five predictions, a GET of another route and an invalid body in one write: seven answers, in
    order, each the right one."""
    burst = b"".join(request({"features": ROW, "request_id": f"p-{i}"}) for i in range(5))
    burst += b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n"
    burst += request({"features": {**ROW, "age": "old"}, "request_id": "p-bad"})
    with connect(server) as s:
        s.sendall(burst)
        answers = read_responses(s, 7)
    assert [a[0] for a in answers] == [200] * 6 + [422]
    assert [a[1]["x-request-id"] for a in answers[:5]] == [f"p-{i}" for i in range(5)]
    assert json.loads(answers[5][2])["status"] == "live"
    assert answers[6][1]["content-type"] == "application/problem+json"


def test_http_10_and_connection_close_get_one_answer_then_the_connection_closes(server: Server) -> None:
    for version, extra in (("1.0", ""), ("1.1", "Connection: close\r\n")):
        with connect(server) as s:
            s.sendall(request({"features": ROW}, version=version, extra=extra))
            [(status, headers, _)] = read_responses(s, 1)
            assert status == 200 and headers.get("connection") == "close"
            assert closed_by_server(s)


def test_expect_100_continue_gets_continue_then_the_answer(server: Server) -> None:
    body = json.dumps({"features": ROW}).encode()
    head = request(body, extra="Expect: 100-continue\r\n")[: -len(body)]
    with connect(server) as s:
        s.sendall(head)
        assert s.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(body)
        [(status, _, answer)] = read_responses(s, 1)
    assert status == 200 and json.loads(answer)["model"] == "churn"


def test_query_strings_and_encoded_paths_reach_the_same_route(server: Server) -> None:
    with connect(server) as s:
        s.sendall(request({"features": ROW}, path=PREDICT + "?trace=1"))
        s.sendall(request({"features": ROW}, path="/models/%63hurn/predict"))
        answers = read_responses(s, 2)
    assert [a[0] for a in answers] == [200, 200]
    assert (
        json.loads(answers[0][2])["predictions"][0]["prediction"]
        == json.loads(answers[1][2])["predictions"][0]["prediction"]
    )


def test_a_request_id_with_control_characters_stays_out_of_the_headers(server: Server) -> None:
    with connect(server) as s:
        s.sendall(request({"features": ROW, "request_id": "evil\r\nSet-Cookie: x=1"}))
        [(status, headers, body)] = read_responses(s, 1)
    assert status == 200
    assert "set-cookie" not in headers and "x-request-id" not in headers
    assert json.loads(body)["predictions"][0]["request_id"] == "evil\r\nSet-Cookie: x=1"


def test_clients_that_vanish_mid_request_do_not_disturb_the_others(server: Server) -> None:
    for _ in range(20):
        s = connect(server)
        whole = request({"features": ROW})
        s.sendall(whole[: len(whole) // 2])  # half a body, then gone
        s.close()
        s = connect(server)
        s.sendall(request({"features": ROW}))  # a whole request, gone before the answer
        s.close()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.post(PREDICT, json={"features": ROW}).status_code == 200
    assert "Traceback" not in server.log()


@pytest.fixture
def burst_answers(server: Server) -> Iterator[list[tuple[int, dict[str, str], bytes]]]:
    """Forty one-record requests written at once on forty connections: the server reads them in
    the same turns of its event loop and answers them together."""
    sockets = [connect(server) for _ in range(40)]
    try:
        payloads = [request({"features": ROW if i % 2 else ROW2, "request_id": f"b-{i}"}) for i in range(40)]
        for s, payload in zip(sockets, payloads, strict=True):
            s.sendall(payload)
        yield [read_responses(s, 1)[0] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_requests_answered_together_get_the_bytes_answered_alone_would_get(
    server: Server, burst_answers: list[tuple[int, dict[str, str], bytes]]
) -> None:
    """The joint path against the general one: ``instances`` of one record always goes alone."""
    with httpx.Client(base_url=server.url, timeout=10) as c:
        for i, (status, headers, body) in enumerate(burst_answers):
            alone = c.post(PREDICT, json={"instances": [ROW if i % 2 else ROW2], "request_ids": [f"b-{i}"]})
            assert status == alone.status_code == 200
            assert body == alone.content
            for name in ("content-type", "x-model-version", "x-model-arm", "x-request-id"):
                assert headers[name] == alone.headers[name]


def test_answered_together_requests_are_counted_one_by_one(server: Server) -> None:
    def served() -> float:
        text = httpx.get(server.url + "/metrics").text
        line = next(
            line
            for line in text.splitlines()
            if line.startswith("modelward_requests_total{") and 'status="200"' in line and '"predict"' in line
        )
        return float(line.rsplit(" ", 1)[1])

    before = served()
    sockets = [connect(server) for _ in range(30)]
    for i, s in enumerate(sockets):
        s.sendall(request({"features": ROW, "request_id": f"count-{i}-{time.time_ns()}"}))
    for s in sockets:
        assert read_responses(s, 1)[0][0] == 200
        s.close()
    assert served() == before + 30


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout_and_a_busy_one_is_not(
    server: Server,
) -> None:
    """The default keep-alive limit is 5 s: one connection sits idle after its answer, the
    other sends a request every 2 s for 8 s (longer than one timeout) and stays open."""
    import threading

    idle_closed_after: list[float] = []

    def idle() -> None:
        with connect(server) as s:
            s.sendall(request({"features": ROW}))
            read_responses(s, 1)
            started = time.monotonic()
            s.settimeout(12)
            assert s.recv(1) == b""  # closed by the server
            idle_closed_after.append(time.monotonic() - started)

    waiter = threading.Thread(target=idle)
    waiter.start()
    with connect(server) as s:
        for _ in range(5):
            s.sendall(request({"features": ROW}))
            assert read_responses(s, 1)[0][0] == 200
            time.sleep(2)
        s.sendall(request({"features": ROW}))
        assert read_responses(s, 1)[0][0] == 200
    waiter.join(15)
    assert idle_closed_after and 4.5 <= idle_closed_after[0] <= 7.0


def test_a_request_that_cannot_be_parsed_gets_a_400_problem_and_the_connection_closes(
    server: Server,
) -> None:
    for garbage in (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n", b"\x00\x01 nonsense\r\n\r\n"):
        with connect(server) as s:
            s.sendall(garbage)
            status, _, body = problem(read_until_closed(s))
        assert status == 400 and body["type"] == "https://modelward.dev/problems/bad-request"
