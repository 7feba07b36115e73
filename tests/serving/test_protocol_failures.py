"""A bug inside the prediction lane still answers the client (a 500 problem), in the protocol and in
the end-of-turn step that answers requests together; the connection is not dropped."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from modelward.monitoring.metrics import ServingMetrics
from modelward.serving.lane import FastLane
from modelward.serving.protocol import ModelwardProtocol


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.written += bytes(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        return None

    def resume_reading(self) -> None:
        return None


class _Manager:
    def __init__(self, routing: Any) -> None:
        self.slots = {"m": object()}
        self._routing = routing

    def routing(self, name: str) -> Any:
        if isinstance(self._routing, Exception):
            raise self._routing
        return self._routing


class _App:
    """What find_lane looks for: an ASGI app whose ``fast.lane`` is a FastLane."""

    def __init__(self, lane: FastLane) -> None:
        self.fast = type("Fast", (), {"lane": lane})()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the lane answers these requests")


def _lane(routing: Any) -> FastLane:
    return FastLane(
        manager=_Manager(routing),  # type: ignore[arg-type]
        predictor=None,  # type: ignore[arg-type]
        max_rows=10,
        max_body_bytes=1000,
        predict_token=None,
        admin_token=None,
        metrics=ServingMetrics(),
    )


async def _exchange(lane: FastLane, body: bytes) -> bytes:
    config = uvicorn.Config(_App(lane), http=ModelwardProtocol, lifespan="off", ws="none")
    config.load()
    protocol = ModelwardProtocol(config, ServerState(), {}, asyncio.get_running_loop())
    transport = _Transport()
    protocol.connection_made(transport)
    protocol.data_received(
        b"POST /models/m/predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    for _ in range(10):  # the end-of-turn step runs on a later turn of the loop
        await asyncio.sleep(0)
    protocol.connection_lost(None)
    return transport.written


def _status_and_problem(written: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = written.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def test_a_lane_that_raises_answers_500_instead_of_dropping_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lane = _lane(RuntimeError("unused"))

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(lane, "accept", broken)
    status, problem = _status_and_problem(asyncio.run(_exchange(lane, b'{"features": {"x": 1}}')))
    assert status == 500 and problem["status"] == 500 and "server log" in problem["detail"]


def test_a_bug_in_the_joint_step_still_answers_every_request_of_the_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import modelward.serving.hot as hot

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("a bug")

    routing = type(
        "Routing", (), {"shadow": None, "spec": type("Spec", (), {"key": None})(), "primary": None}
    )()
    monkeypatch.setattr(hot, "records_columns", broken)
    monkeypatch.setattr(hot.HotPath, "_flush", lambda *a: broken())
    status, problem = _status_and_problem(asyncio.run(_exchange(_lane(routing), b'{"features": {"x": 1}}')))
    assert status == 500 and problem["title"] == "internal error"


def test_a_model_that_cannot_be_routed_gets_its_problem_from_the_joint_step() -> None:
    from modelward.serving.problems import ModelLoading

    status, problem = _status_and_problem(
        asyncio.run(_exchange(_lane(ModelLoading("m")), b'{"features": {"x": 1}}'))
    )
    assert status == 503 and problem["type"].endswith("/model-loading")
