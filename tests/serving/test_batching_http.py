"""Adaptive batching through the real server: thousands of concurrent distinct rows, every answer
checked against the model; requests beyond the latency budget get 503 with Retry-After."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import modelward
from modelward.config import Settings
from tests.serving.conftest import Server, server_env, start_server
from tests.serving.test_shutdown import _register_slow


@pytest.fixture(scope="module")
def unhurried(churn_home: Path) -> Iterator[Server]:
    """The churn server with a latency budget no burst here reaches on a loaded machine: shedding
    has its own tests; these check that coalesced requests get their own answers."""
    env = server_env(churn_home, MODELWARD_BATCH_BUDGET_MS="60000")
    server = start_server(churn_home, "churn", "--reload-interval", "0", env=env)
    yield server
    server.stop()


def test_thousands_of_concurrent_distinct_rows_each_get_their_own_answer(
    unhurried: Server, churn_home: Path, churn_frame: pd.DataFrame
) -> None:
    server = unhurried
    rows = churn_frame.drop(columns=["churn"]).head(2000).reset_index(drop=True)
    rng = np.random.default_rng(7)
    rows["balance"] = np.round(rng.uniform(0, 200_000, len(rows)), 2)  # every row distinct
    model = modelward.load("churn", settings=Settings(home=churn_home, actor="tester"))
    expected = model.predict_proba(rows)[:, 1]
    records = rows.to_dict(orient="records")

    async def send_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as c:
            gate = asyncio.Semaphore(64)

            async def one(i: int) -> httpx.Response:
                async with gate:
                    body = {"features": records[i], "request_id": f"row-{i}"}
                    return await c.post("/models/churn/predict", json=body)

            return await asyncio.gather(*(one(i) for i in range(len(records))))

    responses = asyncio.run(send_all())
    assert [r.status_code for r in responses] == [200] * len(records)
    for i, r in enumerate(responses):
        (prediction,) = r.json()["predictions"]
        assert prediction["request_id"] == f"row-{i}"
        assert abs(prediction["probabilities"]["1"] - expected[i]) <= 1e-6
        assert prediction["prediction"] == int(expected[i] > 0.5)
    with server.client() as c:
        batching = c.get("/models/churn").json()["deployment"]["arms"][0]["batching"]
    assert batching["enabled"] is True and batching["requests"] >= len(records)
    assert batching["largest_batch"] > 1  # concurrent requests shared predict calls


def _burst(server: Server, body: dict[str, Any], n: int) -> tuple[list[httpx.Response], str]:
    """``n`` concurrent predictions of the slow model, then the server's metrics."""

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            return await asyncio.gather(*(c.post("/models/slow/predict", json=body) for _ in range(n)))

    responses = asyncio.run(burst())
    with server.client() as c:
        return responses, c.get("/metrics").text


def test_requests_beyond_the_latency_budget_get_503_with_retry_after(tmp_path: Path) -> None:
    home = _register_slow(tmp_path, 0.0)
    env = server_env(home, MODELWARD_BATCH_BUDGET_MS="100", MODELWARD_MAX_BATCH_ROWS="1")
    server = start_server(home, "slow", "--reload-interval", "0", env=env)
    try:
        responses, metrics = _burst(server, {"features": {"x": 1.0, "delay": 0.4}}, 6)
    finally:
        server.stop()
    statuses = sorted(r.status_code for r in responses)
    assert 200 in statuses and 503 in statuses, statuses
    shed = next(r for r in responses if r.status_code == 503)
    assert shed.headers["content-type"] == "application/problem+json"
    assert int(shed.headers["retry-after"]) >= 1
    assert shed.json()["type"].endswith("/overloaded") and "latency budget of 100 ms" in shed.json()["detail"]
    assert f'modelward_shed_requests_total{{model="slow"}} {statuses.count(503)}.0' in metrics


def test_a_burst_beyond_capacity_is_partly_refused_and_the_accepted_are_answered_within_the_budget(
    tmp_path: Path,
) -> None:
    # Calls of 0.4 s, one request each, a budget of 1 s counted from each request's arrival: of a
    # burst of 8, the first is answered after 0.4 s and the second after 0.8 s; a third would be
    # answered after 1.2 s, so it and the rest are refused at once with 503 and Retry-After. (The
    # budget used to cover only the wait for the model: the third was accepted and answered late.)
    home = _register_slow(tmp_path, 0.0)
    env = server_env(home, MODELWARD_BATCH_BUDGET_MS="1000", MODELWARD_MAX_BATCH_ROWS="1")
    server = start_server(home, "slow", "--reload-interval", "0", env=env)
    body = {"features": {"x": 1.0, "delay": 0.4}}
    try:
        with server.client() as c:
            for _ in range(6):  # measured calls: the estimate is trusted only after a few
                assert c.post("/models/slow/predict", json=body).status_code == 200
        responses, metrics = _burst(server, body, 8)
    finally:
        server.stop()
    statuses = [r.status_code for r in responses]
    assert 200 in statuses and 503 in statuses, statuses
    assert set(statuses) == {200, 503}, statuses
    for shed in (r for r in responses if r.status_code == 503):
        assert shed.headers["content-type"] == "application/problem+json"
        assert int(shed.headers["retry-after"]) >= 1
        assert shed.json()["type"].endswith("/overloaded")
    # The rule, as the server measured each request (its access log: from its arrival to its answer).
    accepted = {r.headers["x-request-id"] for r in responses if r.status_code == 200}
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith('{"time"')]
    times = [line["latency_ms"] for line in lines if line["request_id"] in accepted]
    assert len(times) == len(accepted)
    assert max(times) <= 1000, times
    assert f'modelward_shed_requests_total{{model="slow"}} {statuses.count(503)}.0' in metrics
