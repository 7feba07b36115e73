"""One client's bad value never harms the requests answered beside it, and never counts as a model
failure.

One-record requests that arrive in the same turn of the event loop are validated together; a bad
value in one of them (a number beyond the range of a double, a lone UTF-16 surrogate in a value or
a member name) must get its own 4xx problem while every other request of the turn gets its answer,
and the version's error count must not move.
"""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.serving.conftest import Server
from tests.serving.test_predict_api import ROW

PREDICT = b"/models/churn/predict"
VALID = 120  # concurrent valid requests around the bad one
HUGE = "2" + "0" * 308  # an integer literal beyond the largest double (about 1.8e308)


def _with(replace: str, by: str, body: dict[str, object] | None = None) -> bytes:
    text = json.dumps(body if body is not None else {"features": ROW})
    assert replace in text
    return text.replace(replace, by, 1).encode()


BAD_BODIES = {
    "integer beyond the float range": (_with("1000.0", HUGE), 422, "balance"),
    "lone surrogate in a string value": (_with('"Germany"', '"\\ud800"'), 400, "surrogate"),
    "lone surrogate in a member name": (_with('"age"', '"\\udc00"'), 400, "surrogate"),
    "lone surrogate in the routing key": (
        _with('"k"', '"\\ud800"', {"features": ROW, "key": "k"}),
        400,
        "surrogate",
    ),
    "surrogate escape and NaN together": (
        _with('"Germany"', '"\\ud83d"', {"features": {**ROW, "balance": "NaN"}}).replace(b'"NaN"', b"NaN"),
        400,
        "surrogate",
    ),
}


def _request(body: bytes, request_id: str) -> bytes:
    head = (
        b"POST " + PREDICT + b" HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"X-Request-ID: " + request_id.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    return head + body


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a response"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside a response body"
        rest += chunk
    return status, headers, rest[:length]


def _burst(server: Server, bad: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """VALID valid one-record requests and one bad one, each on its own connection, written before
    any answer is read (so that the server reads many of them in one turn of its loop)."""
    host, port = server.url.removeprefix("http://").split(":")
    sockets = [socket.create_connection((host, int(port)), timeout=30) for _ in range(VALID + 1)]
    try:
        valid = json.dumps({"features": ROW}).encode()
        middle = VALID // 2
        for i, sock in enumerate(sockets):
            sock.sendall(_request(bad if i == middle else valid, f"iso-{i}"))
        return [_read_response(sock) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _server_errors(server: Server) -> float:
    """Requests to churn answered with a 5xx, as /metrics counts them (every version)."""
    text = httpx.get(server.url + "/metrics", timeout=10).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "modelward_requests_total"
                and labels.get("model") == "churn"
                and labels.get("status", "").startswith("5")
            ):
                total += sample.value
    return total


@pytest.mark.parametrize("kind", list(BAD_BODIES))
def test_a_bad_value_gets_its_own_problem_and_every_neighbour_its_answer(server: Server, kind: str) -> None:
    bad, status, fragment = BAD_BODIES[kind]
    errors_before = _server_errors(server)
    answers = _burst(server, bad)
    middle = VALID // 2
    code, headers, body = answers[middle]
    assert code == status, body
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == status and fragment in problem["detail"], problem
    assert headers["x-request-id"] == f"iso-{middle}"
    others = [a for i, a in enumerate(answers) if i != middle]
    assert [a[0] for a in others] == [200] * VALID, {a[0] for a in others}
    for i, (_, _, body) in enumerate(answers):
        if i != middle:
            assert json.loads(body)["predictions"][0]["request_id"] == f"iso-{i}"
    assert _server_errors(server) == errors_before  # the client's mistake is no model failure
