"""SIGTERM: readiness turns false at once, in-flight requests complete, the process exits cleanly.
And a model that raises gives a 500 problem, not a dead server."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

import cloudpickle
import httpx
import mlflow.pyfunc
import pandas as pd
import pytest

from modelward.config import Settings
from tests.serving.conftest import start_server


class SlowModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Doubles x after sleeping for the largest `delay` of the batch; raises for a negative x."""

    def predict(self, context: object, model_input: pd.DataFrame, params: dict | None = None) -> list[float]:
        if (model_input["x"] < 0).any():
            raise ValueError("negative x")
        time.sleep(float(model_input["delay"].max()))
        return [float(v) * 2.0 for v in model_input["x"]]


def _register_slow(tmp_path: Path, warm_delay: float) -> Path:
    import modelward
    from modelward.api import open_registry

    home = tmp_path / "home"
    settings = Settings(home=home, actor="tester")
    # the input example is what the server warms the model with
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "delay": [warm_delay, 0.0, 0.0]})
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the server cannot import this test module
    try:
        with open_registry(settings) as registry, registry.mlflow_context(), mlflow.start_run() as run:
            mlflow.pyfunc.log_model(
                name="model", python_model=SlowModel(), input_example=frame, pip_requirements=[]
            )
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    modelward.register_mlflow_model(
        f"runs:/{run.info.run_id}/model", "slow", reference_data=frame, allow_pickle=True, settings=settings
    )
    return home


@pytest.fixture
def slow_home(tmp_path: Path) -> Path:
    return _register_slow(tmp_path, 0.0)


def test_a_loading_model_answers_503_with_retry_after_until_ready(tmp_path: Path) -> None:
    home = _register_slow(tmp_path, 3.0)  # warming takes 3 s
    server = start_server(home, "slow", "--reload-interval", "0", wait_ready=False)
    try:
        seen: list[int] = []
        loading = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status = httpx.get(server.url + "/ready", timeout=2).status_code
            except httpx.HTTPError:
                time.sleep(0.05)
                continue
            seen.append(status)
            if status == 503 and loading is None:
                loading = httpx.post(
                    server.url + "/models/slow/predict", json={"features": {"x": 1.0, "delay": 0.0}}
                )
            if status == 200:
                break
            time.sleep(0.05)
        assert 503 in seen and seen[-1] == 200
        assert loading is not None and loading.status_code == 503
        assert (
            loading.headers["Retry-After"] and loading.headers["content-type"] == "application/problem+json"
        )
    finally:
        server.stop()


@pytest.mark.slow
def test_sigterm_finishes_in_flight_requests_then_exits(slow_home: Path) -> None:
    server = start_server(slow_home, "slow", "--reload-interval", "0")
    result: dict[str, object] = {}

    def slow_request() -> None:
        r = httpx.post(
            server.url + "/models/slow/predict", json={"features": {"x": 4.0, "delay": 2.0}}, timeout=30
        )
        result["status"], result["body"] = r.status_code, r.json()

    worker = threading.Thread(target=slow_request)
    worker.start()
    time.sleep(0.7)  # the request is now inside the model
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    try:
        after = httpx.get(server.url + "/ready", timeout=2).status_code
    except httpx.HTTPError:
        after = None  # the listening socket is already closed: no new traffic either way
    worker.join(timeout=30)
    code = server.proc.wait(timeout=30)
    assert after != 200
    assert result["status"] == 200
    assert result["body"]["predictions"][0]["prediction"] == 8.0
    # uvicorn re-raises the captured SIGTERM once shut down, so the exit reports that signal (143 in a shell)
    assert code in (0, -signal.SIGTERM)
    assert "Finished server process" in server.log() or "Shutting down" in server.log()
    log = server.log()
    assert "SIGTERM: readiness is false" in log
    assert "Traceback" not in log


def test_a_model_that_raises_gives_a_500_problem_and_the_server_keeps_serving(slow_home: Path) -> None:
    server = start_server(slow_home, "slow", "--reload-interval", "0")
    try:
        with server.client() as c:
            failed = c.post(
                "/models/slow/predict",
                json={"features": {"x": -1.0, "delay": 0.0}},
                headers={"X-Request-ID": "boom-1"},
            )
            ok = c.post("/models/slow/predict", json={"features": {"x": 1.0, "delay": 0.0}})
    finally:
        server.stop()
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert "boom-1" in failed.json()["detail"] and "ValueError: negative x" in failed.json()["detail"]
    assert ok.status_code == 200 and ok.json()["predictions"][0]["prediction"] == 2.0
    assert "negative x" in server.log()  # the traceback is in the server log, not the response
