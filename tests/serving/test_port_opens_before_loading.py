"""`modelward serve` takes connections before its models are loaded: /health answers 200 at once,
/ready and predictions answer 503 (predictions as problem+json with Retry-After, never a refused
connection or a 500) until every model is loaded, then /ready turns 200 and predictions are answered.

The model here cannot load until the test opens its gate (a file): warming it (the server predicts
its input example before it serves it) waits for the file to exist (for two minutes at most)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import httpx
import mlflow.pyfunc
import pandas as pd

from modelward.config import Settings
from tests.monitoring.test_prediction_log import wait_until
from tests.serving.conftest import free_port, server_env, start_server


class GatedModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Doubles x; every call first waits for the gate file to exist."""

    def __init__(self, gate: str) -> None:
        self.gate = gate

    def predict(
        self, context: object, model_input: pd.DataFrame, params: dict[str, object] | None = None
    ) -> list[float]:
        deadline = time.monotonic() + 120
        while not Path(self.gate).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return [float(v) * 2.0 for v in model_input["x"]]


def _register_gated(home: Path, gate: Path) -> None:
    import modelward
    from modelward.api import open_registry

    settings = Settings(home=home, actor="tester")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the server cannot import this test module
    try:
        with open_registry(settings) as registry, registry.mlflow_context(), mlflow.start_run() as run:
            mlflow.pyfunc.log_model(
                name="model", python_model=GatedModel(str(gate)), input_example=frame, pip_requirements=[]
            )
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    modelward.register_mlflow_model(
        f"runs:/{run.info.run_id}/model", "gated", reference_data=frame, allow_pickle=True, settings=settings
    )


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=5).status_code == 200
    except httpx.TransportError:  # not listening yet
        return False


def test_health_answers_before_the_model_loads_and_ready_turns_200_once_it_has(tmp_path: Path) -> None:
    home, gate = tmp_path / "home", tmp_path / "gate"
    gate.touch()  # registration predicts the input example too
    _register_gated(home, gate)
    gate.unlink()
    server = start_server(home, "gated", "--reload-interval", "0", wait_ready=False)
    try:
        wait_until(lambda: _answers(server.url), timeout=120)
        with server.client() as client:
            ready = client.get("/ready")
            assert ready.status_code == 503 and ready.json()["ready"] is False
            # while the app is built ("starting") or the model loads ("model-loading"): 503, retry later
            loading = client.post("/models/gated/predict", json={"features": {"x": 1.0}})
            assert loading.status_code == 503
            assert loading.headers["content-type"] == "application/problem+json"
            assert int(loading.headers["retry-after"]) >= 1
            assert loading.json()["type"].rsplit("/", 1)[1] in ("starting", "model-loading")
            # the app gets built behind the port: the model's own loading answer follows
            wait_until(lambda: client.get("/ready").json().get("models") != {}, timeout=120)
            loading = client.post("/models/gated/predict", json={"features": {"x": 1.0}})
            assert loading.status_code == 503 and loading.json()["type"].endswith("/model-loading")

            gate.touch()
            wait_until(lambda: client.get("/ready").status_code == 200, timeout=120)
            answered = client.post("/models/gated/predict", json={"features": {"x": 1.0}})
            assert answered.status_code == 200 and answered.json()["predictions"][0]["prediction"] == 2.0
    finally:
        code = server.stop()
    # uvicorn re-raises the SIGTERM it caught once it has shut down
    assert code in (0, -signal.SIGTERM) and "Traceback" not in server.log(), server.log()


# What `serve` has imported when uvicorn runs the start-up app's lifespan, just before it listens:
# the modules written to a file by a wrapper around StartingApp, in the server's own process.
_BEFORE_LISTENING = """
import json, os, runpy, sys
from modelward.serving import starting

run = starting.StartingApp._run_lifespan
path = sys.argv[1]

async def noted(self, scope, receive, send):
    with open(path + ".part", "w") as out:
        json.dump(sorted(sys.modules), out)
    os.replace(path + ".part", path)
    return await run(self, scope, receive, send)

starting.StartingApp._run_lifespan = noted
sys.argv = ["modelward", "serve", *sys.argv[2:]]
runpy.run_module("modelward", run_name="__main__")
"""


def test_the_port_opens_before_fastapi_mlflow_or_a_model_stack_is_imported(
    churn_home: Path, tmp_path: Path
) -> None:
    noted = tmp_path / "modules.json"
    env = server_env(churn_home)
    port = str(free_port())
    argv = [sys.executable, "-c", _BEFORE_LISTENING, str(noted), "churn", "--port", port]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(noted.exists, timeout=120)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    modules = set(json.loads(noted.read_text()))
    heavy = ("fastapi", "starlette", "mlflow", "numpy", "pandas", "sklearn", "modelward.serving.app")
    assert "uvicorn" in modules and "modelward.serving.protocol" in modules
    assert sorted(m for m in heavy if m in modules) == []
