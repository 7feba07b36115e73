"""examples/recommender: LightFM trained, logged as a pyfunc, registered with ``register --from-mlflow``,
served, asked over REST and the Open Inference Protocol, drift watched, exposure by provider measured."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.compat.conftest import home_tracking
from tests.serving.conftest import Server, server_env, start_server

lightfm = pytest.importorskip("lightfm")

# The set-up trains, registers and starts a server: minutes on a loaded machine.
pytestmark = pytest.mark.timeout(900)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "recommender"
USERS, ITEMS = 120, 60


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _load(name: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"reco_{name}", EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reco(tmp_path_factory: pytest.TempPathFactory, mlflow_db_template: Path) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("reco-home")
    shutil.copyfile(mlflow_db_template, home / "mlflow.db")
    env = server_env(home, MODELWARD_PROFILE_BUCKET_SECONDS="1")
    data = home / "data"
    trained = _run(
        env,
        str(EXAMPLE / "train.py"),
        "--users",
        str(USERS),
        "--items",
        str(ITEMS),
        "--epochs",
        "10",
        "--data-dir",
        str(data),
    )
    assert "precision@10" in trained.stdout
    uri = (data / "model_uri.txt").read_text().strip()
    registered = _run(
        env,
        "-m",
        "modelward",
        "register",
        "--from-mlflow",
        uri,
        "--name",
        "reco",
        "--reference",
        str(data / "requests.parquet"),
        "--allow-pickle",
        "--json",
    )
    assert json.loads(registered.stdout)["version"] == "1"
    assert "card" not in registered.stderr  # lists of item ids are not read as card numbers
    server = start_server(home, "reco", "--reload-interval", "0", env=env, timeout=300)
    server.extra["uri"] = uri
    yield server
    server.stop()


def test_the_pyfunc_scores_are_lightfms_own(tmp_path: Path) -> None:
    import scipy.sparse as sp

    interactions, _ = _load("data").generate(40, 25, seed=3, per_user=5)
    matrix = sp.coo_matrix(
        (np.ones(len(interactions), dtype=np.float32), (interactions["user_id"], interactions["item_id"])),
        shape=(40, 25),
    )
    model = lightfm.LightFM(loss="warp", no_components=4, random_state=0).fit(matrix, epochs=3)
    (ub, ue), (ib, ie) = model.get_user_representations(), model.get_item_representations()
    np.savez(tmp_path / "f.npz", user_embeddings=ue, user_biases=ub, item_embeddings=ie, item_biases=ib)
    pyfunc = _load("model").LightFMScores()
    pyfunc.load_context(types.SimpleNamespace(artifacts={"factors": str(tmp_path / "f.npz")}))

    got = pyfunc.predict(None, pd.DataFrame({"user_id": [3, 39, 99], "item_ids": [[0, 5, 24], [7], [1, 2]]}))

    np.testing.assert_allclose(got[0], model.predict(3, np.array([0, 5, 24])), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[1], model.predict(39, np.array([7])), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[2], ib[[1, 2]], rtol=1e-6)  # an unknown user: the items' biases


def test_rest_and_open_inference_protocol_answer_one_score_per_candidate(reco: Server) -> None:
    import mlflow.artifacts

    with home_tracking(reco.home):
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=str(reco.extra["uri"]), dst_path=str(reco.home / "copy")
        )
    expected = _load("model").LightFMScores()
    expected.load_context(
        types.SimpleNamespace(artifacts={"factors": str(Path(local) / "artifacts" / "factors.npz")})
    )
    rows = [{"user_id": 7, "item_ids": [3, 14, 15, 59]}, {"user_id": 42, "item_ids": [9]}]
    want = expected.predict(None, pd.DataFrame(rows))

    with reco.client() as c:
        rest = c.post("/models/reco/predict", json={"instances": rows})
        oip = c.post(
            "/v2/models/reco/infer",
            json={
                "inputs": [
                    {"name": "user_id", "datatype": "INT64", "shape": [2], "data": [7, 42]},
                    {
                        "name": "item_ids",
                        "datatype": "BYTES",
                        "shape": [2],
                        "data": [json.dumps(r["item_ids"]) for r in rows],
                    },
                ]
            },
        )

    assert rest.status_code == 200, rest.text
    assert oip.status_code == 200, oip.text
    by_rest = [p["prediction"] for p in rest.json()["predictions"]]
    by_oip = [json.loads(v) for v in oip.json()["outputs"][0]["data"]]
    assert [len(s) for s in by_rest] == [4, 1]
    for a, b, w in zip(by_rest, by_oip, want, strict=True):
        np.testing.assert_allclose(a, w, rtol=1e-6)
        np.testing.assert_allclose(b, w, rtol=1e-6)


def test_drift_is_watched_on_the_request_features(reco: Server) -> None:
    requests = _load("data").requests(200, USERS, ITEMS, seed=9)
    with reco.client() as c:
        answer = c.post("/models/reco/predict", json={"instances": requests.to_dict(orient="records")})
        assert answer.status_code == 200, answer.text

        def features() -> dict[str, Any]:
            body = c.get("/models/reco/drift", params={"window": "1h"}).json()
            return {f["feature"]: f for f in (body.get("drift") or {}).get("features", [])}

        deadline = time.monotonic() + 30
        while "user_id" not in features():
            assert time.monotonic() < deadline, "no drift figures for user_id"
            time.sleep(0.2)
        body = c.get("/models/reco/drift", params={"window": "1h"}).json()
        assert isinstance(features()["user_id"]["drifted"], bool)  # judged (200 rows: no verdict asserted)
        assert body["rows"] >= 200
    assert "item_ids" in body["not_profiled"]["features"]


def test_exposure_by_provider_shows_the_popular_provider_over_exposed(reco: Server) -> None:
    proc = _run(
        reco.env,
        str(EXAMPLE / "exposure.py"),
        reco.url,
        "--users",
        "30",
        "--k",
        "10",
        "--data-dir",
        str(reco.home / "data"),
        "--json",
    )
    report = json.loads(proc.stdout)
    groups = {g["group"]: g for g in report["groups"]}

    assert report["rankings"] == 30
    assert sum(g["exposure_share"] for g in groups.values()) == pytest.approx(1.0)
    assert groups["major"]["exposure_share"] > groups["major"]["catalogue_share"]
    assert groups["indie"]["exposure_share"] < groups["indie"]["catalogue_share"]
    assert 0.0 < report["exposure_ratio"] < 1.0
