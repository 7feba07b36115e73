"""A custom MLflow pyfunc with an array input, the way a recommender tutorial logs one, through the CLI
and the real server: ``user_id: long``, ``item_ids: Array(long)`` -> one score per item.

Registered with ``modelward register --from-mlflow``, served, and asked over REST (every body form)
and the Open Inference Protocol (tritonclient: an array field is a ``BYTES`` tensor of one JSON text
per row); every answer must be what ``mlflow.pyfunc.load_model(...).predict`` gives.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.compat.conftest import home_tracking, register_cli
from tests.serving.conftest import Server, start_server
from tests.serving.test_prediction_log_serving import _settled

tritonclient_http = pytest.importorskip("tritonclient.http")

MODEL_CODE = '''
import mlflow
import numpy as np
import pandas as pd


class Recommender(mlflow.pyfunc.PythonModel):
    """Scores each candidate item for a user: a stand-in for a factorisation model's dot products."""

    def predict(self, context, model_input, params=None):
        users = np.asarray(model_input["user_id"], dtype=np.int64)
        scores = []
        for user, items in zip(users, model_input["item_ids"]):
            items = np.asarray(items, dtype=np.int64)
            scores.append((np.sin(user * 0.7 + items * 0.3) + 1.0) / 2.0)
        return pd.Series(scores)


mlflow.models.set_model(Recommender())
'''

ROWS = [
    {"user_id": 7, "item_ids": [3, 14, 15]},
    {"user_id": 42, "item_ids": [9]},
    {"user_id": 1, "item_ids": [2, 6, 5, 3, 5]},
]


def _log_model(home: Path) -> str:
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, Schema

    code = home / "recommender.py"
    code.write_text(MODEL_CODE)
    signature = ModelSignature(
        inputs=Schema([ColSpec("long", "user_id"), ColSpec(Array("long"), "item_ids")]),
        outputs=Schema([ColSpec(Array("double"), "scores")]),
    )
    with home_tracking(home), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # MLflow asks for type hints on predict()
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(code),
                signature=signature,
                input_example=pd.DataFrame(ROWS[:2]),
            )
    return str(info.model_uri)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, mlflow_db_template: Path
) -> Iterator[tuple[Server, Any]]:
    import mlflow.pyfunc

    home = tmp_path_factory.mktemp("array-input-home")
    shutil.copyfile(mlflow_db_template, home / "mlflow.db")
    uri = _log_model(home)
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {
            "user_id": rng.integers(0, 100, 200),
            "item_ids": [rng.integers(0, 50, rng.integers(1, 6)).tolist() for _ in range(200)],
        }
    )
    reference.to_parquet(home / "reference.parquet")
    registered = register_cli(home, uri, "reco", home / "reference.parquet", "--allow-pickle")
    assert registered.returncode == 0, registered.stdout + registered.stderr
    assert "not profiled for drift" in registered.stderr  # item_ids: said, not silently dropped
    with warnings.catch_warnings():  # MLflow asks for type hints on predict(); tutorials have none
        warnings.simplefilter("ignore", UserWarning)
        model = mlflow.pyfunc.load_model(_local_copy(uri, home))
    server = start_server(home, "reco", "--reload-interval", "0")
    yield server, model
    server.stop()


def _local_copy(uri: str, home: Path) -> str:
    import mlflow
    import mlflow.artifacts

    with home_tracking(home):
        return str(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(home / "copy")))


def _expected(model: Any, rows: list[dict[str, Any]]) -> list[list[float]]:
    out = model.predict(pd.DataFrame(rows))
    return [np.asarray(v, dtype=np.float64).tolist() for v in out]


def _predictions(response: Any) -> list[Any]:
    assert response.status_code == 200, response.text
    return [p["prediction"] for p in response.json()["predictions"]]


def test_every_rest_body_form_answers_what_mlflow_predicts(served: tuple[Server, Any]) -> None:
    server, model = served
    expected = _expected(model, ROWS)
    positional = [[r["user_id"], r["item_ids"]] for r in ROWS]
    bodies = {
        "instances": {"instances": ROWS},
        "inputs (columns)": {
            "inputs": {"user_id": [r["user_id"] for r in ROWS], "item_ids": [r["item_ids"] for r in ROWS]}
        },
        "inputs (records)": {"inputs": ROWS},
        "dataframe_records": {"dataframe_records": ROWS},
        "dataframe_split": {"dataframe_split": {"columns": ["user_id", "item_ids"], "data": positional}},
        "instances (positional)": {"instances": positional},
    }
    with server.client() as c:
        for form, body in bodies.items():
            got = _predictions(c.post("/models/reco/predict", json=body))
            np.testing.assert_allclose(np.concatenate(got), np.concatenate(expected), err_msg=form)
            assert [len(g) for g in got] == [len(e) for e in expected], form
        for row, want in zip(ROWS, expected, strict=True):
            keyed = _predictions(c.post("/models/reco/predict", json={"features": row}))
            listed = _predictions(
                c.post("/models/reco/predict", json={"features": [row["user_id"], row["item_ids"]]})
            )
            np.testing.assert_allclose(keyed[0], want)
            assert listed == keyed


def test_a_bad_item_is_named_with_its_position(served: tuple[Server, Any]) -> None:
    server, _ = served
    with server.client() as c:
        r = c.post("/models/reco/predict", json={"features": {"user_id": 7, "item_ids": [3, "x"]}})
        not_a_list = c.post("/models/reco/predict", json={"features": {"user_id": 7, "item_ids": 3}})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"] == [
        {
            "message": "field 'item_ids': item 1: expected an integer, got a string (\"x\")",
            "field": "item_ids",
            "row": 0,
        }
    ]
    assert not_a_list.status_code == 422
    assert "expected a list of long values" in not_a_list.json()["detail"]


def test_open_inference_protocol_takes_an_array_as_json_text_per_row(served: tuple[Server, Any]) -> None:
    server, model = served
    expected = _expected(model, ROWS)
    client = tritonclient_http.InferenceServerClient(url=server.url.removeprefix("http://"))
    try:
        metadata = client.get_model_metadata("reco")
        assert {"name": "item_ids", "datatype": "BYTES", "shape": [-1]} in metadata["inputs"]
        for binary in (False, True):
            users = tritonclient_http.InferInput("user_id", [len(ROWS)], "INT64")
            users.set_data_from_numpy(
                np.array([r["user_id"] for r in ROWS], dtype=np.int64), binary_data=binary
            )
            items = tritonclient_http.InferInput("item_ids", [len(ROWS)], "BYTES")
            texts = np.array([json.dumps(r["item_ids"]) for r in ROWS], dtype=object)
            items.set_data_from_numpy(texts, binary_data=binary)
            wanted = tritonclient_http.InferRequestedOutput("predict", binary_data=binary)
            result = client.infer("reco", [users, items], outputs=[wanted])
            out = result.as_numpy("predict")
            got = [json.loads(v) for v in out.tolist()]
            for g, e in zip(got, expected, strict=True):
                np.testing.assert_allclose(g, e)
    finally:
        client.close()


def test_the_prediction_log_keeps_the_lists(served: tuple[Server, Any]) -> None:
    server, model = served
    with server.client() as c:
        r = c.post(
            "/models/reco/predict", json={"features": ROWS[2]}, headers={"X-Request-ID": "array-logged"}
        )
    assert r.status_code == 200
    _settled(server.url)
    tail = subprocess.run(
        [sys.executable, "-m", "modelward", "predictions", "tail", "reco", "--json"],
        env=server.env,
        capture_output=True,
        text=True,
    )
    assert tail.returncode == 0, tail.stderr
    row = next(json.loads(line) for line in tail.stdout.splitlines() if "array-logged" in line)
    assert row["inputs"] == ROWS[2]
    np.testing.assert_allclose(row["outputs"]["prediction"], _expected(model, [ROWS[2]])[0])


def test_live_drift_says_which_inputs_it_leaves_out(served: tuple[Server, Any]) -> None:
    server, _ = served
    with server.client() as c:
        r = c.get("/models/reco/drift", params={"version": "1"})
    assert r.status_code == 200, r.text
    assert r.json()["not_profiled"]["features"] == ["item_ids"]
