"""Every client mistake gets a 4xx problem+json naming what is wrong; none gets a 500."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from tests.serving.conftest import Server, server_env, start_server
from tests.serving.test_predict_api import ROW

PREDICT = "/models/churn/predict"


@pytest.fixture(scope="module", params=["fast-path", "fastapi-route"])
def server(request: pytest.FixtureRequest, churn_home: Any) -> Any:
    """Every case runs against the raw ASGI fast path and against the FastAPI route it stands in for:
    both must answer the same status, problem type and message."""
    env = server_env(churn_home, MODELWARD_FAST_PATH="true" if request.param == "fast-path" else "false")
    s = start_server(churn_home, "churn", "--reload-interval", "0", env=env)
    yield s
    s.stop()


INFER = "/v2/models/churn/infer"


def without(*keys: str) -> dict[str, Any]:
    return {k: v for k, v in ROW.items() if k not in keys}


def tensor(name: str, datatype: Any, data: list[Any], shape: list[int] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "datatype": datatype,
        "shape": shape if shape is not None else [len(data)],
        "data": data,
    }


def good_tensors(**override: Any) -> list[dict[str, Any]]:
    types = {"geography": "BYTES", "gender": "BYTES", "balance": "FP64", "estimated_salary": "FP64"}
    out = [tensor(k, types.get(k, "INT64"), [v]) for k, v in ROW.items()]
    return [override.get(t["name"], t) for t in out]


def with_text(body: Any, replace: str, by: str) -> bytes:
    """``body`` as JSON text with one piece of it replaced: for what a JSON encoder will not write."""
    text = json.dumps(body)
    assert replace in text
    return text.replace(replace, by, 1).encode()


HUGE = "2" + "0" * 308  # an integer literal beyond the largest double
NESTED = "[" * 1000 + "42" + "]" * 1000

# (id, method, path, body bytes or JSON, headers, status, message fragment, field or None)
CASES: list[tuple[str, str, str, Any, dict[str, str], int, str, str | None]] = [
    ("malformed json", "POST", PREDICT, b'{"features": {', {}, 400, "malformed JSON", None),
    ("empty body", "POST", PREDICT, b"", {}, 400, "empty", None),
    ("body is a list", "POST", PREDICT, [ROW], {}, 422, "JSON object", None),
    ("body is a string", "POST", PREDICT, "hello", {}, 422, "JSON object", None),
    ("no data member", "POST", PREDICT, {"key": "a"}, {}, 422, "features", None),
    (
        "two data members",
        "POST",
        PREDICT,
        {"features": ROW, "instances": [ROW]},
        {},
        422,
        "exactly one",
        None,
    ),
    (
        "unknown top-level member",
        "POST",
        PREDICT,
        {"features": ROW, "extra": 1},
        {},
        422,
        "unknown member 'extra'",
        None,
    ),
    ("missing field", "POST", PREDICT, {"features": without("age")}, {}, 422, "missing field 'age'", "age"),
    (
        "missing field, version named",
        "POST",
        "/models/churn/versions/1/predict",
        {"features": without("age")},
        {},
        422,
        "missing field 'age'",
        "age",
    ),
    (
        "version registered, not loaded",
        "POST",
        "/models/churn/versions/2/predict",
        {"features": ROW},
        {},
        404,
        "version 2 of churn is registered but not loaded by this server (loaded: 1)",
        None,
    ),
    (
        "version named, model not served",
        "POST",
        "/models/nope/versions/1/predict",
        {"features": ROW},
        {},
        404,
        "'nope' is not served",
        None,
    ),
    (
        "extra field",
        "POST",
        PREDICT,
        {"features": {**ROW, "shoe_size": 44}},
        {},
        422,
        "unknown field 'shoe_size'",
        "shoe_size",
    ),
    (
        "string for integer",
        "POST",
        PREDICT,
        {"features": {**ROW, "age": "forty"}},
        {},
        422,
        "expected an integer",
        "age",
    ),
    (
        "fraction for integer",
        "POST",
        PREDICT,
        {"features": {**ROW, "age": 41.5}},
        {},
        422,
        "expected an integer, got 41.5",
        "age",
    ),
    (
        "bool for integer",
        "POST",
        PREDICT,
        {"features": {**ROW, "has_cr_card": True}},
        {},
        422,
        "expected an integer",
        "has_cr_card",
    ),
    (
        "string for double",
        "POST",
        PREDICT,
        {"features": {**ROW, "balance": "lots"}},
        {},
        422,
        "expected a number",
        "balance",
    ),
    (
        "number for string",
        "POST",
        PREDICT,
        {"features": {**ROW, "geography": 7}},
        {},
        422,
        "expected a string",
        "geography",
    ),
    (
        "null where required",
        "POST",
        PREDICT,
        {"features": {**ROW, "tenure": None}},
        {},
        422,
        "null is not allowed",
        "tenure",
    ),
    (
        "NaN for double",
        "POST",
        PREDICT,
        b'{"features": {"age": 42, "tenure": 3, "balance": NaN, "num_products": 2, "has_cr_card": 1, "is_active_member": 0, "estimated_salary": 5.0, "geography": "Spain", "gender": "Male"}}',
        {},
        422,
        "NaN is not allowed",
        "balance",
    ),
    (
        "Infinity for double",
        "POST",
        PREDICT,
        b'{"features": {"age": 42, "tenure": 3, "balance": 1.0, "num_products": 2, "has_cr_card": 1, "is_active_member": 0, "estimated_salary": Infinity, "geography": "Spain", "gender": "Male"}}',
        {},
        422,
        "Infinity is not allowed",
        "estimated_salary",
    ),
    ("integer overflow", "POST", PREDICT, {"features": {**ROW, "age": 2**70}}, {}, 422, "age", "age"),
    (
        "object for integer",
        "POST",
        PREDICT,
        {"features": {**ROW, "age": {"v": 1}}},
        {},
        422,
        "expected an integer",
        "age",
    ),
    (
        "list for string",
        "POST",
        PREDICT,
        {"features": {**ROW, "gender": ["F"]}},
        {},
        422,
        "expected a string",
        "gender",
    ),
    (
        "bad row among many",
        "POST",
        PREDICT,
        {"instances": [ROW, {**ROW, "age": "x"}, ROW]},
        {},
        422,
        "row 1",
        "age",
    ),
    ("row not an object", "POST", PREDICT, {"instances": [ROW, 5]}, {}, 422, "row 1", None),
    ("instances not a list", "POST", PREDICT, {"instances": ROW}, {}, 422, "instances", None),
    ("empty instances", "POST", PREDICT, {"instances": []}, {}, 422, "no rows", None),
    (
        "columns of unequal length",
        "POST",
        PREDICT,
        {"inputs": {**{k: [v] for k, v in ROW.items()}, "age": [1, 2]}},
        {},
        422,
        "age",
        None,
    ),
    (
        "column not a list",
        "POST",
        PREDICT,
        {"inputs": {**{k: [v] for k, v in ROW.items()}, "age": 3}},
        {},
        422,
        "age",
        None,
    ),
    (
        "too many rows",
        "POST",
        PREDICT,
        {"instances": [ROW] * 10_001},
        {},
        413,
        "more than the limit of 10000",
        None,
    ),
    (
        "request_ids wrong length",
        "POST",
        PREDICT,
        {"instances": [ROW, ROW], "request_ids": ["a"]},
        {},
        422,
        "request_ids",
        None,
    ),
    (
        "duplicate request_ids",
        "POST",
        PREDICT,
        {"instances": [ROW, ROW], "request_ids": ["a", "a"]},
        {},
        422,
        "request_ids",
        None,
    ),
    ("key is a list", "POST", PREDICT, {"features": ROW, "key": [1]}, {}, 422, "key", None),
    (
        "integer beyond the float range",
        "POST",
        PREDICT,
        with_text({"features": ROW}, "1000.0", HUGE),
        {},
        422,
        "out of range for a number",
        "balance",
    ),
    (
        "integer beyond the float range among many",
        "POST",
        PREDICT,
        with_text({"instances": [ROW, ROW]}, "1000.0", "-" + HUGE),
        {},
        422,
        "row 0",
        "balance",
    ),
    (
        "lone surrogate in a value",
        "POST",
        PREDICT,
        with_text({"features": ROW}, '"Germany"', '"\\ud800"'),
        {},
        400,
        "features.geography has a lone UTF-16 surrogate",
        None,
    ),
    (
        "lone surrogate in a member name",
        "POST",
        PREDICT,
        with_text({"instances": [ROW]}, '"age"', '"\\udc00"'),
        {},
        400,
        "a member name in instances[0] has a lone UTF-16 surrogate",
        None,
    ),
    (
        "lone surrogate in a member name, percent-encoded path",
        "POST",
        "/models/%63hurn/predict",
        with_text({"instances": [ROW]}, '"age"', '"\\udc00"'),
        {},
        400,
        "lone UTF-16 surrogate",
        None,
    ),
    (
        "surrogate encoded as UTF-8 bytes",
        "POST",
        PREDICT,
        json.dumps({"features": ROW}).encode().replace(b"Germany", b"\xed\xb3\xbf"),
        {},
        400,
        "malformed JSON",
        None,
    ),
    (
        "unknown model",
        "POST",
        "/models/nope/predict",
        {"features": ROW},
        {},
        404,
        "model 'nope' is not served",
        None,
    ),
    (
        "wrong content type",
        "POST",
        PREDICT,
        b"age=3",
        {"content-type": "application/x-www-form-urlencoded"},
        415,
        "send JSON",
        None,
    ),
    ("GET on predict", "GET", PREDICT, None, {}, 405, "GET is not allowed", None),
    ("unknown route", "GET", "/nowhere", None, {}, 404, "no route GET /nowhere", None),
    ("reload without token", "POST", "/admin/models/churn/reload", None, {}, 401, "admin token", None),
    (
        "reload with wrong token",
        "POST",
        "/admin/models/churn/reload",
        None,
        {"Authorization": "Bearer nope"},
        401,
        "admin token",
        None,
    ),
    (
        "v2 unknown model",
        "POST",
        "/v2/models/nope/infer",
        {"inputs": good_tensors()},
        {},
        404,
        "not served",
        None,
    ),
    (
        "v2 wrong version",
        "POST",
        "/v2/models/churn/versions/9/infer",
        {"inputs": good_tensors()},
        {},
        404,
        "version 9",
        None,
    ),
    ("v2 no inputs", "POST", INFER, {"inputs": []}, {}, 422, "inputs", None),
    (
        "v2 shape mismatch",
        "POST",
        INFER,
        {"inputs": good_tensors(age=tensor("age", "INT64", [1, 2], [3]))},
        {},
        422,
        "needs 3 values",
        "age",
    ),
    (
        "v2 unknown datatype",
        "POST",
        INFER,
        {"inputs": good_tensors(age=tensor("age", "INT3", [1]))},
        {},
        422,
        "unknown datatype",
        "age",
    ),
    (
        "v2 missing tensor",
        "POST",
        INFER,
        {"inputs": good_tensors()[1:]},
        {},
        422,
        "missing field 'age'",
        "age",
    ),
    (
        "v2 bad value",
        "POST",
        INFER,
        {"inputs": good_tensors(age=tensor("age", "INT64", ["x"]))},
        {},
        422,
        "expected an integer",
        "age",
    ),
    (
        "v2 unknown output",
        "POST",
        INFER,
        {"inputs": good_tensors(), "outputs": [{"name": "logits"}]},
        {},
        422,
        "unknown output",
        None,
    ),
    (
        "v2 datatype not a string",
        "POST",
        INFER,
        {"inputs": good_tensors(age=tensor("age", 5, [1]))},
        {},
        422,
        "'datatype' must be a string",
        "age",
    ),
    (
        "v2 datatype a list",
        "POST",
        INFER,
        {"inputs": good_tensors(age=tensor("age", ["INT64"], [1]))},
        {},
        422,
        "'datatype' must be a string",
        "age",
    ),
    (
        "v2 data nested 1,000 deep",
        "POST",
        INFER,
        with_text({"inputs": good_tensors(age=tensor("age", "INT64", ["DEEP"]))}, '["DEEP"]', NESTED),
        {},
        422,
        "nested deeper",
        "age",
    ),
    (
        "v2 id not a string",
        "POST",
        INFER,
        {"inputs": good_tensors(), "id": [[1]]},
        {},
        422,
        "'id' must be a string",
        None,
    ),
    (
        "v2 lone surrogate in an input name",
        "POST",
        INFER,
        with_text({"inputs": good_tensors()}, '"age"', '"\\ud800"'),
        {},
        400,
        "lone UTF-16 surrogate",
        None,
    ),
    ("v2 ready, version not served", "GET", "/v2/models/churn/versions/9/ready", None, {}, 404, "9", None),
    ("v2 ready, model not served", "GET", "/v2/models/nope/ready", None, {}, 404, "nope", None),
    (
        "feedback label with a lone surrogate",
        "POST",
        "/feedback",
        with_text({"items": [{"request_id": "a", "label": "x"}]}, '"x"', '"\\ud800"'),
        {},
        400,
        "items[0].label has a lone UTF-16 surrogate",
        None,
    ),
    (
        "v2 bad header length",
        "POST",
        INFER,
        {"inputs": good_tensors()},
        {"Inference-Header-Content-Length": "99999"},
        400,
        "out of range",
        None,
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "message", "field"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_input_gets_a_clear_4xx_problem(
    server: Server,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    status: int,
    message: str,
    field: str | None,
) -> None:
    with server.client() as c:
        if body is None:
            r = c.request(method, path, headers=headers)
        elif isinstance(body, bytes):
            r = c.request(method, path, content=body, headers={"content-type": "application/json", **headers})
        else:
            r = c.request(method, path, json=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == status and problem["title"] and problem["type"]
    assert message in problem["detail"], problem
    assert problem["error"] == problem["detail"]  # what Open Inference Protocol clients read
    if field is not None:
        assert field in {e.get("field") for e in problem.get("errors", [])}, problem


DATA_MEMBERS = (
    "the body must have exactly one of 'features' (one record), 'instances' (a list of records), "
    "'inputs' (an object of columns), 'dataframe_split' or 'dataframe_records' (MLflow's forms); it has none"
)


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        (ROW, 'it looks like a bare record: wrap it as {"features": {...}}'),
        ({k: [v] for k, v in ROW.items()}, 'it looks like bare columns: wrap them as {"inputs": {...}}'),
        ([ROW, ROW], 'for a list of records, send {"instances": [...]}'),
    ],
    ids=["record", "columns", "list of records"],
)
def test_a_bare_body_is_told_once_how_to_wrap_it(server: Server, body: Any, hint: str) -> None:
    with server.client() as c:
        r = c.post(PREDICT, json=body)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["detail"].endswith(hint), problem
    if isinstance(body, dict):
        assert problem["detail"] == f"{DATA_MEMBERS}; {hint}"
    assert len(problem["errors"]) == 1


def test_unknown_members_are_named_in_one_problem(server: Server) -> None:
    with server.client() as c:
        r = c.post(PREDICT, json={"features": ROW, "extra": 1, "more": 2})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith("unknown members 'extra', 'more' (the body may have: features, "), detail
    assert detail.count("the body may have") == 1


def test_the_table_is_at_least_thirty_cases_and_never_expects_a_500() -> None:
    assert len(CASES) >= 30
    assert all(400 <= c[5] < 500 for c in CASES)


def test_fifty_megabyte_body_is_refused_with_413_before_it_is_read(server: Server) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * 1024 * 1024}\r\n\r\n".encode()
            + b'{"instances": ['
        )
        received = b""
        while chunk := s.recv(65536):  # the server answers at once and closes
            received += chunk
        reply = received.decode(errors="replace")
    assert reply.startswith("HTTP/1.1 413"), reply
    assert "application/problem+json" in reply and "larger than the limit" in reply


def test_streamed_body_over_the_limit_is_cut_off_with_413(server: Server) -> None:
    def chunks():  # no Content-Length: chunked transfer encoding
        yield b'{"instances": ['
        for _ in range(12 * 1024):
            yield b'{"age": 1, "padding": "' + b"x" * 1000 + b'"},'
        yield b"{}]}"

    with server.client() as c:
        r = c.post(PREDICT, content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"


def test_server_survives_the_table_and_still_predicts(server: Server) -> None:
    with server.client() as c:
        assert c.post(PREDICT, json={"features": ROW}).status_code == 200
        assert "Traceback" not in server.log()


def test_deeply_nested_values_are_a_422_not_a_500(server: Server) -> None:
    # built as text: the client's own JSON encoder may not recurse 1,000 deep either
    row = json.dumps({k: v for k, v in ROW.items() if k != "geography"})[:-1]
    nested = ("[" * 1000 + "1" + "]" * 1000).encode()
    payload = b'{"features": ' + row.encode() + b', "geography": ' + nested + b"}}"
    with server.client() as c:
        r = c.post(PREDICT, content=payload, headers={"content-type": "application/json"})
        body = c.post(
            PREDICT, content=b"[" * 1000 + b"]" * 1000, headers={"content-type": "application/json"}
        )
    assert r.status_code == 422, r.text
    assert 400 <= body.status_code < 500, body.text


def test_a_query_parameter_cannot_pick_another_model(server: Server) -> None:
    with server.client() as c:
        r = c.post(PREDICT + "?_name=other&name=other", json={"features": ROW})
    assert r.status_code == 200 and r.json()["model"] == "churn"


def test_head_requests_are_answered_on_get_routes(server: Server) -> None:
    with server.client() as c:
        for path in ("/health", "/ready", "/metrics", "/models", "/v2/health/live"):
            assert c.head(path).status_code == 200, path


def test_error_counts_cover_every_problem_not_only_the_listed_ones(server: Server) -> None:
    rows = [{**ROW, "age": "x", "tenure": "y"} for _ in range(500)]
    with server.client() as c:
        r = c.post(PREDICT, json={"instances": rows})
    assert r.status_code == 422
    assert "(and 995 more)" in r.json()["detail"]


def _raw_exchange(server: Server, path: bytes, body: bytes, extra: bytes = b"") -> bytes:
    """One request on its own connection, as bytes; with ``Expect: 100-continue`` the body is sent
    once the interim answer came."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            b"POST "
            + path
            + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + b"Content-Length: %d\r\n" % len(body)
            + extra
            + b"\r\n"
        )
        received = b""
        if extra:
            while b"\r\n\r\n" not in received:
                received += s.recv(65536)
            assert received.startswith(b"HTTP/1.1 100 Continue"), received
        s.sendall(body)
        while chunk := s.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize(
    "body",
    [
        with_text({"features": {**ROW, "x": 1}}, '"x"', '"\\udc00"'),
        with_text({"instances": [{**ROW, "x": 1}]}, '"x"', '"\\udc00"'),
        with_text({"instances": [ROW]}, "1000.0", HUGE),
    ],
    ids=["one record", "instances", "huge integer"],
)
@pytest.mark.parametrize(
    "path", [PREDICT.encode(), b"/models/%63hurn/predict"], ids=["plain", "percent-encoded"]
)
def test_expect_100_continue_and_percent_encoded_paths_answer_problems(
    server: Server, body: bytes, path: bytes
) -> None:
    """Requests that reach the prediction through the ASGI server's own path, not the protocol's."""
    for extra in (b"Expect: 100-continue\r\n", b""):
        reply = _raw_exchange(server, path, body, extra).decode("utf-8", "replace")
        final = reply.split("HTTP/1.1 ")[-1]
        assert final.startswith("4"), reply
        assert "content-type: application/problem+json" in final.lower(), reply


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        (PREDICT.encode(), b""),  # the server's protocol
        (PREDICT.encode(), b"Expect: 100-continue\r\n"),  # the ASGI fast path
        (b"/feedback", b""),  # the app's middleware
    ],
    ids=["protocol", "asgi fast path", "middleware"],
)
@pytest.mark.parametrize("digits", [12, 19])  # 20 digits or more: the HTTP parser refuses them
def test_a_declared_length_over_the_limit_is_413_on_every_path(
    server: Server, path: bytes, extra: bytes, digits: int
) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + b"9" * digits + b"\r\n" + extra + b"\r\n"
        )
        received = b""
        while chunk := s.recv(65536):
            received += chunk
    final = received.decode(errors="replace").split("HTTP/1.1 ")[-1]
    assert final.startswith("413"), received
    assert "application/problem+json" in final
