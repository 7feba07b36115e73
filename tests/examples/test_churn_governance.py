"""examples/churn, governed (examples/churn/README.md): typed features answering ``churn_probability``,
a fairness check on gender, explanations, the model card, consent on requests, redacted logs and a
10 % canary of the new version, each through the commands the README gives."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.serving.conftest import Server, server_env, start_server

# The set-up trains, registers and starts a server: minutes on a loaded machine.
pytestmark = pytest.mark.timeout(900)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "churn"
CUSTOMER = json.loads((EXAMPLE / "customer.json").read_text())


def _cli(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if ok:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, mlflow_db_template: Path) -> Path:
    home = tmp_path_factory.mktemp("churn-governed")
    shutil.copyfile(mlflow_db_template, home / "mlflow.db")
    env = server_env(home)
    _cli(env, str(EXAMPLE / "train.py"), "--rows", "3000", "--data-dir", str(home / "data"))
    _cli(
        env,
        "-m",
        "modelward",
        "card",
        "edit",
        "churn:2",
        "--intended-use",
        "rank retail customers for a retention call",
        "--limitations",
        "not for credit decisions",
    )
    return home


@pytest.fixture(scope="module")
def env(home: Path) -> dict[str, str]:
    return server_env(home, MODELWARD_LOG_REDACT="estimated_salary=drop,balance=hash")


@pytest.fixture(scope="module")
def fairness(env: dict[str, str], home: Path) -> dict[str, Any]:
    proc = _cli(
        env,
        "-m",
        "modelward",
        "fairness",
        "churn:2",
        "--data",
        str(home / "data" / "churn_test.parquet"),
        "--sensitive",
        "gender",
        "--label",
        "churn",
        "--json",
    )
    return dict(json.loads(proc.stdout))


def test_fairness_on_gender_reports_each_group_and_the_parity_gap(fairness: dict[str, Any]) -> None:
    report = fairness
    (gender,) = report["features"]
    groups = {g["group"]: g for g in gender["groups"]}

    assert set(groups) == {"Female", "Male"}
    assert sum(g["count"] for g in groups.values()) == 750
    # women churn more in the data, and the model flags more of them
    assert groups["Female"]["selection_rate"] > groups["Male"]["selection_rate"]
    gap = groups["Female"]["selection_rate"] - groups["Male"]["selection_rate"]
    assert gender["demographic_parity_difference"] == pytest.approx(gap)


def test_an_explanation_adds_up_to_the_churn_probability(env: dict[str, str]) -> None:
    proc = _cli(
        env, "-m", "modelward", "explain", "churn:2", "--input", str(EXAMPLE / "customer.json"), "--json"
    )
    body = json.loads(proc.stdout)
    (row,) = body["explanations"]
    total = row["base_value"] + sum(row["contributions"].values())

    assert set(row["contributions"]) == set(CUSTOMER)
    assert total == pytest.approx(row["output"], abs=1e-6)
    assert row["output_space"] in ("probability", "log_odds")
    assert str(row["class"]) == "1"  # the churn class is what is explained
    assert row["top"][0]["feature"] in CUSTOMER


def test_the_model_card_carries_the_intended_use_and_the_fairness_check(
    env: dict[str, str], fairness: dict[str, Any]
) -> None:
    card = _cli(env, "-m", "modelward", "card", "churn:2", "--format", "md").stdout

    assert "rank retail customers for a retention call" in card
    assert "not for credit decisions" in card
    assert "gender" in card  # the stored fairness report


@pytest.fixture(scope="module")
def server(env: dict[str, str], home: Path) -> Iterator[Server]:
    _cli(
        env,
        "-m",
        "modelward",
        "deploy",
        "churn",
        "--canary",
        "2",
        "--steps",
        "10,50,100",
        "--step-duration",
        "1h",
        "--key",
        "customer_id",
    )
    server = start_server(home, "churn", env=env, timeout=300)
    yield server
    server.stop()


def _logged(env: dict[str, str], request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        lines = _cli(env, "-m", "modelward", "predictions", "tail", "churn", "-n", "50", "--json").stdout
        for row in map(json.loads, lines.splitlines()):
            if row["request_id"] == request_id:
                return dict(row)
        assert time.monotonic() < deadline, f"{request_id} was never logged"
        time.sleep(0.5)


def test_requests_answer_churn_probability_and_the_log_keeps_what_consent_and_redaction_allow(
    server: Server, env: dict[str, str]
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        given = c.post("/models/churn/predict", json={"features": {**CUSTOMER, "customer_id": "C1"}})
        refused = c.post(
            "/models/churn/predict",
            json={"features": {**CUSTOMER, "customer_id": "C2"}},
            headers={"X-Consent": "false"},
        )
    assert given.status_code == 200, given.text
    assert refused.status_code == 200, refused.text
    answer = given.json()["predictions"][0]
    assert 0.0 < answer["churn_probability"] < 1.0
    assert answer["churn_probability"] == pytest.approx(answer["probabilities"]["1"])

    kept = _logged(env, answer["request_id"])
    assert kept["consent"] is True
    assert "estimated_salary" not in kept["inputs"]
    assert str(kept["inputs"]["balance"]).startswith("hmac:")
    assert kept["inputs"]["age"] == CUSTOMER["age"]
    withheld = _logged(env, refused.json()["predictions"][0]["request_id"])
    assert (withheld["consent"], withheld["inputs"]) == (False, {})


def test_the_new_version_takes_ten_percent_of_customers_as_a_canary(
    server: Server, env: dict[str, str], home: Path
) -> None:
    sent = _cli(
        env,
        str(EXAMPLE / "traffic.py"),
        server.url,
        "--rows",
        "750",
        "--data",
        str(home / "data" / "churn_test.parquet"),
    )
    assert "sent 750 customers" in sent.stdout
    status = json.loads(_cli(env, "-m", "modelward", "deploy", "status", "churn", "--json").stdout)

    assert status["spec"]["strategy"] == "canary"
    assert (str(status["canary"]["version"]), status["canary"]["percent"]) == ("2", 10)
    served = {w["arm"]: w["requests"] for w in status["stats"]}
    share = served["canary"] / (served["canary"] + served["baseline"])
    assert 0.05 < share < 0.16  # 10 % of customers, sticky by customer_id
