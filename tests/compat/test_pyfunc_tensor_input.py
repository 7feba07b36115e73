"""A pyfunc with a tensor signature (named TensorSpecs, rows first) registered with the CLI, served
over REST and scored from a parquet file; answers are what ``mlflow.pyfunc`` gives for the same
arrays."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from tests.compat.conftest import home_tracking, register_cli
from tests.serving.conftest import server_env, start_server

MODEL_CODE = """
import mlflow
import numpy as np


class Weighted(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        x = np.asarray(model_input["x"], dtype=np.float64)
        return (x * np.array([[1.0, 2.0], [3.0, 4.0]])).sum(axis=(1, 2)) + model_input["bias"]


mlflow.models.set_model(Weighted())
"""
X = [[[0.5, 1.0], [1.5, 2.0]], [[1.0, 0.0], [0.0, 1.0]]]
BIAS = [0.25, -1.0]


def _register(home: Path) -> str:
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    (home / "weighted.py").write_text(MODEL_CODE)
    signature = ModelSignature(
        inputs=Schema(
            [TensorSpec(np.dtype("float32"), (-1, 2, 2), "x"), TensorSpec(np.dtype("float64"), (-1,), "bias")]
        )
    )
    with home_tracking(home):
        with warnings.catch_warnings(), mlflow.start_run():
            warnings.simplefilter("ignore", UserWarning)  # MLflow asks for type hints on predict()
            info = mlflow.pyfunc.log_model(
                name="model", python_model=str(home / "weighted.py"), signature=signature
            )
        local = mlflow.artifacts.download_artifacts(artifact_uri=info.model_uri, dst_path=str(home / "copy"))
    rng = np.random.default_rng(1)
    reference = pd.DataFrame(
        {"x": [rng.normal(size=(2, 2)).tolist() for _ in range(50)], "bias": rng.normal(size=50)}
    )
    reference.to_parquet(home / "reference.parquet")
    done = register_cli(home, str(info.model_uri), "weighted", home / "reference.parquet", "--allow-pickle")
    assert done.returncode == 0, done.stdout + done.stderr
    return str(local)


def test_a_tensor_signature_is_served_and_batch_scored_like_mlflow_predicts(
    tmp_path: Path, mlflow_db_template: Path
) -> None:
    import mlflow.pyfunc

    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(mlflow_db_template, home / "mlflow.db")
    local = _register(home)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = mlflow.pyfunc.load_model(local)
    expected = np.asarray(model.predict({"x": np.array(X, dtype=np.float32), "bias": np.array(BIAS)}))

    pd.DataFrame({"x": X, "bias": BIAS}).to_parquet(home / "rows.parquet")
    scored = subprocess.run(
        [
            *(sys.executable, "-m", "modelward", "predict", "weighted"),
            *("-i", str(home / "rows.parquet"), "-o", str(home / "scored.parquet")),
        ],
        env=server_env(home),
        capture_output=True,
        text=True,
    )
    assert scored.returncode == 0, scored.stdout + scored.stderr
    np.testing.assert_allclose(pd.read_parquet(home / "scored.parquet")["prediction"], expected)

    server = start_server(home, "weighted", "--reload-interval", "0")
    try:
        with server.client() as c:
            r = c.post("/models/weighted/predict", json={"inputs": {"x": X, "bias": BIAS}})
            ragged = c.post(
                "/models/weighted/predict", json={"features": {"x": [[1.0, 2.0], [3.0]], "bias": 0}}
            )
        assert r.status_code == 200, r.text
        np.testing.assert_allclose([p["prediction"] for p in r.json()["predictions"]], expected)
        assert ragged.status_code == 422
        assert (
            ragged.json()["detail"]
            == "field 'x': expected a tensor of shape [2, 2], a list at depth 1 has 1 items"
        )
    finally:
        server.stop()
