"""examples/ab_test: two churn models split by customer id, two weeks of simulated traffic and
outcomes, the A/B report's verdict with its sample-ratio check and always-valid p-values, and the
winner promoted and given all the traffic."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.serving.conftest import Server, server_env, start_server

# The set-up trains, registers and starts a server: minutes on a loaded machine.
pytestmark = pytest.mark.timeout(900)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ab_test"


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def ab(tmp_path_factory: pytest.TempPathFactory, mlflow_db_template: Path) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("ab-home")
    shutil.copyfile(mlflow_db_template, home / "mlflow.db")
    env = server_env(home)
    trained = _run(env, str(EXAMPLE / "train.py"), "--rows", "3000")
    assert "registered churn_ab:2 as challenger" in trained.stdout
    _run(
        env,
        "-m",
        "modelward",
        "deploy",
        "churn_ab",
        "--ab",
        "champion=50",
        "challenger=50",
        "--key",
        "customer_id",
    )
    server = start_server(home, "churn_ab", "--reload-interval", "0", env=env, timeout=300)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def report(ab: Server) -> dict[str, Any]:
    proc = _run(ab.env, str(EXAMPLE / "simulate.py"), ab.url, "--days", "14", "--per-day", "200", "--json")
    return dict(json.loads(proc.stdout))


def test_two_weeks_of_traffic_are_split_by_customer_and_labelled(report: dict[str, Any]) -> None:
    arms = {a["name"]: a for a in report["arms"]}
    assert set(arms) == {"champion", "challenger"}
    assert sum(a["requests"] for a in arms.values()) == 14 * 200
    assert all(a["n"] == a["requests"] for a in arms.values())  # every request got its outcome
    assert report["srm"]["mismatch"] is False
    assert 0.4 < arms["challenger"]["served_share"] < 0.6


def test_the_challenger_keeps_more_customers_with_an_always_valid_p_value(report: dict[str, Any]) -> None:
    arms = {a["name"]: a for a in report["arms"]}
    (comparison,) = report["comparisons"]

    assert arms["challenger"]["mean"] > arms["champion"]["mean"]
    assert comparison["treatment"] == "challenger"
    assert comparison["difference"] > 0.02
    assert comparison["sequential_p_value"] < 0.05
    assert comparison["sequential_significant"] is True
    assert "challenger" in report["verdict"]


def test_the_decision_promotes_the_winner_and_routes_all_traffic_to_it(
    ab: Server, report: dict[str, Any]
) -> None:
    proc = _run(ab.env, str(EXAMPLE / "decide.py"), ab.url, "--apply")
    decision = json.loads(proc.stdout)

    assert (decision["winner"], decision["promoted"]) == ("challenger", "2")
    versions = json.loads(_run(ab.env, "-m", "modelward", "versions", "churn_ab", "--json").stdout)
    assert "champion" in {r["version"]: r["aliases"] for r in versions}["2"]
    status = json.loads(_run(ab.env, "-m", "modelward", "deploy", "status", "churn_ab", "--json").stdout)
    assert status["spec"]["strategy"] == "single"
    assert status["spec"]["arms"][0]["target"] == "@champion"


def test_no_winner_is_declared_without_a_significant_difference() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("ab_decide", EXAMPLE / "decide.py")
    assert spec is not None and spec.loader is not None
    decide = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(decide)
    flat = {
        "treatment": "challenger",
        "control": "champion",
        "difference": 0.01,
        "sequential_p_value": 0.4,
        "sequential_significant": False,
    }
    assert decide.decide({"comparisons": [flat], "srm": {"mismatch": False}})["winner"] is None
    won = {**flat, "sequential_p_value": 0.001, "sequential_significant": True}
    assert decide.decide({"comparisons": [won], "srm": {"mismatch": False}})["winner"] == "challenger"
    broken = {"comparisons": [won], "srm": {"mismatch": True, "p_value": 1e-6}}
    assert decide.decide(broken)["winner"] is None
