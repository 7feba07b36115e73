"""A client refused with 503 + Retry-After that sends its next request on the same connection at
once, and is refused again, has that connection read again only once the Retry-After has passed:
a closed loop of immediate retries (1,000 connections of them) would otherwise keep the event loop
refusing and take the interpreter from the model it waits for. A first refusal, and a client that
waited as told, are read at once."""

from __future__ import annotations

import asyncio
import re

import uvicorn
from uvicorn.server import ServerState

from modelward.runtime.batcher import Overloaded
from modelward.serving.protocol import ModelwardProtocol
from tests.serving.test_protocol_failures import _App, _lane, _Transport


class _PausableTransport(_Transport):
    def __init__(self) -> None:
        super().__init__()
        self.paused = False

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


class _Routing:
    def __init__(self) -> None:
        self.overloaded = True

    def refusal(self, started: float) -> Overloaded | None:
        return Overloaded("m:1", 2.0, 1.0, 2) if self.overloaded else None


REQUEST = b"POST /models/m/predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


async def _connection(routing: _Routing) -> tuple[ModelwardProtocol, _PausableTransport]:
    lane = _lane(routing)
    config = uvicorn.Config(_App(lane), http=ModelwardProtocol, lifespan="off")
    config.load()
    protocol = ModelwardProtocol(config, ServerState(), {}, asyncio.get_running_loop())
    transport = _PausableTransport()
    protocol.connection_made(transport)
    return protocol, transport


def _statuses(transport: _Transport) -> list[int]:
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", transport.written)]


def test_an_immediate_retry_refused_again_parks_the_connection_until_its_retry_after() -> None:
    async def main() -> tuple[list[int], list[bool], float]:
        protocol, transport = await _connection(_Routing())
        paused = []
        protocol.data_received(REQUEST)  # refused: told to retry in 2 s
        paused.append(transport.paused)
        protocol.data_received(REQUEST)  # retried at once, refused again
        paused.append(transport.paused)
        timer = protocol.parked
        assert timer is not None
        left = timer.when() - asyncio.get_running_loop().time()
        timer._run()  # the Retry-After has passed (rather than waiting two seconds)
        paused.append(transport.paused)
        protocol.connection_lost(None)
        return _statuses(transport), paused, left

    statuses, paused, left = asyncio.run(main())
    assert statuses == [503, 503]
    assert paused == [False, True, False]
    assert 1.5 < left <= 2.0  # from the first refusal's Retry-After


def test_a_client_whose_retry_is_answered_is_not_parked_by_a_later_refusal() -> None:
    async def main() -> list[bool]:
        routing = _Routing()
        protocol, transport = await _connection(routing)
        paused = []
        protocol.data_received(REQUEST)  # 503
        routing.overloaded = False
        protocol.data_received(REQUEST)  # read at once, answered (a 400: the body is no record)
        routing.overloaded = True
        protocol.data_received(REQUEST)  # 503 again, but the one before was answered
        for _ in range(10):
            await asyncio.sleep(0)
        paused.append(transport.paused)
        protocol.connection_lost(None)
        return paused

    assert asyncio.run(main()) == [False]
