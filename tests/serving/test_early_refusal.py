"""Under overload a REST prediction is refused before its body is parsed or validated: the cheap
503 leaves the server's time to the requests it accepted."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import orjson

from modelward.runtime.batcher import Batcher
from modelward.serving.models import Routing
from tests.serving.test_protocol_failures import _lane


class _Routing:
    refusal = Routing.refusal  # the real rule, over stand-in arms

    def __init__(self, batcher: Batcher) -> None:
        self.arms = {"primary": SimpleNamespace(batcher=batcher)}


def _answer(
    batcher: Batcher, body: bytes, started: float, busy: bool = False
) -> tuple[int, bytes, dict[str, Any]]:
    lane = _lane(_Routing(batcher))
    got: list[tuple[int, bytes, bytes]] = []

    async def main() -> None:
        if busy:  # a request queued before, predicted when this turn of the loop ends
            batcher.submit({"x": np.zeros(1)}, 1, lambda *answer: None)
        lane.accept("m", "/models/m/predict", [], body, lambda *a: got.append(a), started)

    asyncio.run(main())
    ((status, head, answer),) = got
    return status, head, orjson.loads(answer)


def _batcher() -> Batcher:
    return Batcher("m:1", lambda columns: (np.zeros(1), None), budget=1.0)


def test_an_overloaded_model_refuses_a_request_before_parsing_its_body() -> None:
    batcher = _batcher()
    # A request already older than the budget when the lane got it (the server fell behind).
    status, head, problem = _answer(batcher, b"{not json", time.perf_counter() - 5.0, busy=True)
    assert status == 503 and problem["type"].endswith("/overloaded")
    assert b"retry-after: 1\r\n" in head.lower() and b"application/problem+json" in head
    assert batcher.stats.shed == 1


def test_a_model_that_is_not_overloaded_reads_the_body_first() -> None:
    batcher = _batcher()
    status, _, _problem = _answer(batcher, b"{not json", time.perf_counter())
    assert status == 400 and batcher.stats.shed == 0
