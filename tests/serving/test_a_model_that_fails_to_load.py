"""A model that cannot load is unready on its own, with the reason; the server's others serve on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd

from modelward.config import Settings
from tests.monitoring.test_prediction_log import wait_until
from tests.serving.conftest import server_env, start_server
from tests.serving.test_predict_api import ROW


def _break(home: Path, churn_models: dict, churn_frame: pd.DataFrame) -> None:
    """Register "broken" and change its reference profile: its pins no longer match, it cannot load."""
    import modelward
    from modelward.api import open_registry

    settings = Settings(home=home, actor="tester")
    info = modelward.register(
        churn_models["logreg"], "broken", train_data=churn_frame, target="churn", settings=settings
    )
    with open_registry(settings) as registry:
        run_root = Path(registry.client.get_run(info.run_id).info.artifact_uri.removeprefix("file://"))
    profile = run_root / info.tags["modelward.artifacts"] / "reference_profile.json"
    profile.write_text(profile.read_text() + "\n")  # still a valid profile, with other bytes


def test_a_model_that_fails_to_load_is_unready_alone_with_its_reason(
    home: Path, churn_models: dict, churn_frame: pd.DataFrame
) -> None:
    _break(home, churn_models, churn_frame)
    server = start_server(home, "churn", "broken", "--reload-interval", "0")
    try:
        with server.client() as c:
            ready = c.get("/ready")
            assert ready.status_code == 200
            models = ready.json()["models"]
            assert models["churn"]["ready"] is True
            assert models["broken"]["ready"] is False
            assert "changed since registration" in models["broken"]["error"]
            ok = c.post("/models/churn/predict", json={"features": ROW})
            assert ok.status_code == 200
            refused = c.post("/models/broken/predict", json={"features": ROW})
            assert refused.status_code == 503
            problem = refused.json()
            assert problem["type"].endswith("/model-unavailable")
            assert "failed to load" in problem["detail"] and "changed since registration" in problem["detail"]
        wait_until(lambda: "loading broken:1 failed, nothing is served" in server.log())
    finally:
        server.stop()
    shown = subprocess.run(
        [sys.executable, "-m", "modelward", "show", "broken"],
        env=server_env(home),
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "does not load" in shown.stdout and "changed since registration" in shown.stdout
    assert "Downloading artifacts" not in shown.stderr


def test_a_server_whose_only_model_fails_to_load_is_not_ready(
    home: Path, churn_models: dict, churn_frame: pd.DataFrame
) -> None:
    _break(home, churn_models, churn_frame)
    server = start_server(home, "broken", "--reload-interval", "0", wait_ready=False)
    try:

        def settled() -> bool:
            try:
                body = httpx.get(server.url + "/ready", timeout=2).json()
            except httpx.HTTPError:
                return False
            return "error" in body.get("models", {}).get("broken", {})  # none while the app is built

        wait_until(settled, timeout=120)
        assert httpx.get(server.url + "/ready", timeout=5).status_code == 503
    finally:
        server.stop()
