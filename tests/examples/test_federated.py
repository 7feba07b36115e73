"""examples/federated: three banks train a logistic regression by FedAvg on Flower's simulation engine,
each on its own shard; the aggregate is registered with the federation as its lineage (no data
fingerprint), served, and compared on unseen data with a model trained on the pooled shards.

Flower runs in a virtual environment of its own (``examples/federated/setup_venv.sh``, made on first
use): its pins on the web stack must not change the environment the server runs from."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.serving.conftest import Server, server_env, start_server

# Ray's start and the actors' imports take most of the federation's half minute; a loaded machine
# (or the first run, which creates Flower's virtual environment) takes longer.
pytestmark = pytest.mark.timeout(1200)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "federated"
NODES, ROUNDS, ROWS_PER_NODE = 3, 5, 800


def _run(python: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([python, *args], env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _flower_python() -> str:
    """This interpreter when it has Flower, else the example's own virtual environment."""
    if importlib.util.find_spec("flwr") is not None:
        return sys.executable
    setup = subprocess.run(
        ["bash", str(EXAMPLE / "setup_venv.sh")], capture_output=True, text=True, timeout=900, check=False
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    return str(EXAMPLE / ".venv" / "bin" / "python")


def _example_data() -> Any:
    spec = importlib.util.spec_from_file_location("federated_data", EXAMPLE / "data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def federated(tmp_path_factory: pytest.TempPathFactory, mlflow_db_template: Path) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("federated-home")
    shutil.copyfile(mlflow_db_template, home / "mlflow.db")
    env = server_env(home)
    out = home / "federated.json"
    args = ["--nodes", str(NODES), "--rounds", str(ROUNDS), "--rows-per-node", str(ROWS_PER_NODE)]
    ran = _run(_flower_python(), env, str(EXAMPLE / "federate.py"), *args, "--out", str(out))
    registered = _run(sys.executable, env, str(EXAMPLE / "register.py"), str(out), "--promote")
    server = start_server(home, "credit_fl", "--reload-interval", "0", env=env, timeout=300)
    yield {
        "env": env,
        "summary": json.loads(out.read_text()),
        "federate_stdout": ran.stdout,
        "registered": json.loads(registered.stdout),
        "server": server,
        "compare": json.loads(_run(sys.executable, env, str(EXAMPLE / "compare.py"), str(out)).stdout),
    }
    server.stop()


def test_every_node_trains_in_every_round_and_the_federation_learns(federated: dict[str, Any]) -> None:
    summary = federated["summary"]
    assert (summary["nodes"], summary["rounds"], summary["strategy"]) == (NODES, ROUNDS, "FedAvg")
    history = summary["history"]
    assert [h["round"] for h in history] == list(range(1, ROUNDS + 1))
    losses = [h["train_loss"] for h in history]
    assert losses == sorted(losses, reverse=True)  # each average is a better start than the last
    assert history[-1]["eval_accuracy"] > 0.75  # the nodes' own data, scored on the final average
    assert f"{NODES} nodes, {ROUNDS} rounds of FedAvg" in federated["federate_stdout"]


def test_the_federated_model_is_about_as_accurate_as_one_trained_on_the_pooled_data(
    federated: dict[str, Any],
) -> None:
    compared = federated["compare"]
    fed, central = compared["federated"], compared["central"]
    assert compared["holdout_rows"] == 1500
    assert central["accuracy"] > 0.75  # well above the 0.63 of always answering "no default"
    assert abs(fed["accuracy"] - central["accuracy"]) < 0.02
    assert abs(fed["auc"] - central["auc"]) < 0.02


def test_the_version_names_the_federation_and_fingerprints_no_data(federated: dict[str, Any]) -> None:
    registered = federated["registered"]
    assert (registered["model"], registered["version"], registered["champion"]) == ("credit_fl", "1", True)
    tags = registered["tags"]  # as the registry reads them back
    assert tags["modelward.federation.rounds"] == str(ROUNDS)
    assert tags["modelward.federation.nodes"] == str(NODES)
    assert tags["modelward.federation.strategy"] == "FedAvg"
    assert tags["modelward.federation.framework"] == f"flwr {federated['summary']['flwr_version']}"
    assert tags["modelward.federation.examples"] == str(NODES * ROWS_PER_NODE)
    assert not [k for k in tags if k.startswith(("modelward.dataset.", "modelward.dvc."))]


def test_the_served_model_answers_with_the_federated_coefficients(federated: dict[str, Any]) -> None:
    data, summary = _example_data(), federated["summary"]
    rows = data.holdout(NODES, rows_per_node=4)
    logit = rows[summary["features"]].to_numpy() @ np.asarray(summary["coef"][0]) + summary["intercept"][0]
    expected = 1 / (1 + np.exp(-logit))  # the averaged coefficients, by hand
    server: Server = federated["server"]  # serving credit_fl@champion
    with server.client() as c:
        answer = c.post(
            "/models/credit_fl/predict", json={"instances": rows[data.FEATURES].to_dict("records")}
        )
    assert answer.status_code == 200, answer.text
    served = [p["default_probability"] for p in answer.json()["predictions"]]
    np.testing.assert_allclose(served, expected, rtol=1e-6)
