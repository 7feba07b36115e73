"""Canaries end to end: a real routing server, the standalone controller (and the server's own),
real time with short steps.

A model whose version 2 raises on 20 % of requests is rolled back within its first step (with an
alert and an audit event naming the reason); a healthy version 3 walks through its steps and ends
as champion.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import httpx
import mlflow.pyfunc
import pandas as pd
import pytest
from sqlalchemy import select

from modelward.config import Settings
from modelward.registry import Registry
from modelward.store.tables import alerts
from tests.serving.conftest import Server, server_env, start_server


class Doubler(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """2x; with ``flaky``, raises for every x divisible by 5 (a fifth of the requests sent here)."""

    def __init__(self, flaky: bool = False) -> None:
        self.flaky = flaky

    def predict(self, context: object, model_input: pd.DataFrame, params: dict | None = None) -> list[float]:
        if self.flaky and (model_input["x"] % 5 == 0).any():
            raise RuntimeError("injected failure")
        return [float(v) * 2.0 for v in model_input["x"]]


@pytest.fixture(scope="module")
def canary_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """doubler:1 (champion, healthy), doubler:2 (flaky), doubler:3 (healthy)."""
    import modelward
    from modelward.api import open_registry

    home = tmp_path_factory.mktemp("canary-e2e") / "home"
    settings = Settings(home=home, actor="tester")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})  # the warm-up example never fails
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the server cannot import this module
    try:
        for flaky in (False, True, False):
            with open_registry(settings) as registry, registry.mlflow_context(), mlflow.start_run() as run:
                mlflow.pyfunc.log_model(
                    name="model", python_model=Doubler(flaky), input_example=frame, pip_requirements=[]
                )
            modelward.register_mlflow_model(
                f"runs:/{run.info.run_id}/model",
                "doubler",
                reference_data=frame,
                allow_pickle=True,
                settings=settings,
            )
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    modelward.promote("doubler", 1, settings=settings)
    return home


@pytest.fixture(scope="module")
def running(canary_home: Path) -> Iterator[tuple[Server, subprocess.Popen[bytes]]]:
    """The server (deployments polled every 0.3 s, its own controller off) and a standalone
    controller ticking every 0.3 s."""
    env = server_env(canary_home, MODELWARD_CONTROLLER="false")
    server = start_server(canary_home, "doubler", "--reload-interval", "0.3", env=env)
    log = (canary_home / "controller.log").open("wb")
    controller = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelward",
            "controller",
            "--interval",
            "0.3",
            "--lease-ttl",
            "5",
            "--no-monitor",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield server, controller
    controller.terminate()
    controller.wait(30)
    server.stop()


def cli(home: Path, *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "modelward", *argv], env=server_env(home), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def registry_of(home: Path) -> Registry:
    return Registry.from_settings(Settings(home=home, actor="tester")).open()


def canary_state(home: Path) -> dict[str, Any]:
    with registry_of(home) as registry:
        dep = registry.deployments.get("doubler")
        assert dep is not None
        return dep.to_dict()


def drive(server: Server, until: Any, *, timeout: float = 90.0) -> list[httpx.Response]:
    """Send requests one at a time (x = 1, 2, ..., 100, 1, 2, ...: the same input distribution in
    every period) until ``until()`` is true."""
    answers: list[httpx.Response] = []
    deadline = time.monotonic() + timeout
    x = 0
    with server.client() as c:
        while time.monotonic() < deadline:
            for _ in range(10):
                x = x % 100 + 1
                answers.append(c.post("/models/doubler/predict", json={"features": {"x": float(x)}}))
            if until():
                return answers
    plan = canary_state(server.home)["spec"].get("canary")
    raise AssertionError(
        f"not done after {timeout} s and {len(answers)} requests: {until.__doc__}; the plan: {plan}"
    )


def test_a_canary_failing_20_percent_is_rolled_back_within_its_first_step(
    running: tuple[Server, subprocess.Popen[bytes]], canary_home: Path
) -> None:
    server, _ = running
    cli(canary_home, "deploy", "doubler", "--canary", "2", "--steps", "20,50,100", "--step-duration", "60s")

    def rolled_back() -> bool:
        """the canary is rolled back"""
        return canary_state(canary_home)["spec"]["canary"]["state"] == "rolled_back"

    answers = drive(server, rolled_back)

    plan = canary_state(canary_home)["spec"]["canary"]
    assert plan["step"] == 0  # still in the first step (60 s): stopped long before it ended
    assert "error rate" in plan["reason"] and "95% confidence" in plan["reason"]
    from_canary = [r for r in answers if r.headers.get("X-Model-Arm") == "canary"]
    assert from_canary and all(r.headers["X-Model-Version"] == "2" for r in from_canary)
    failed = [r for r in answers if r.status_code == 500]
    assert failed and len(failed) < len(answers) // 5  # only the canary's share failed
    with registry_of(canary_home) as registry:
        (event,) = registry.audit.events(subject="doubler", action="canary_rollback")
        assert "error rate" in event.payload["reason"]
        assert registry.resolve("doubler@champion").version == "1"
        with registry.store.read() as conn:
            rows = conn.execute(select(alerts.c.rule, alerts.c.subject, alerts.c.message)).all()
    assert [(r.rule, r.subject) for r in rows] == [("canary_rollback", "doubler:2")]
    assert "error rate" in rows[0].message
    # Once servers pick the rollback up, every request is served by the baseline.
    time.sleep(1.0)
    with server.client() as c:
        after = [c.post("/models/doubler/predict", json={"features": {"x": float(x)}}) for x in range(1, 41)]
    assert {(r.status_code, r.headers["X-Model-Arm"], r.headers["X-Model-Version"]) for r in after} == {
        (200, "baseline", "1")
    }


def test_a_healthy_canary_walks_its_steps_and_ends_as_champion(
    running: tuple[Server, subprocess.Popen[bytes]], canary_home: Path
) -> None:
    server, _ = running
    cli(
        canary_home,
        "deploy",
        "doubler",
        "--canary",
        "3",
        "--steps",
        "20,50,100",
        "--step-duration",
        "3s",
        "--min-requests",
        "20",
        # The same model on both arms: any latency gap is this shared machine's scheduling noise
        # (a 100 ms stall in a loaded CI run), not the canary's. The latency rule has its own tests.
        "--latency-slack-ms",
        "2000",
    )

    def promoted() -> bool:
        """the canary is promoted"""
        spec = canary_state(canary_home)["spec"]
        plan = spec.get("canary") or {}
        # A rollback is final: say why at once rather than drive traffic until the timeout.
        assert plan.get("state") != "rolled_back", f"rolled back: {plan.get('reason')}"
        return spec["strategy"] == "single"

    answers = drive(server, promoted, timeout=120)

    assert all(r.status_code == 200 for r in answers)
    assert {r.headers["X-Model-Version"] for r in answers} >= {"1", "3"}
    with registry_of(canary_home) as registry:
        assert registry.resolve("doubler@champion").version == "3"
        actions = [e.action for e in registry.audit.events(subject="doubler")]
    assert actions.count("canary_advance") == 2 and actions[-1] == "canary_promote"
    status = cli(canary_home, "deploy", "history", "doubler", "--json")
    assert '"canary_promote"' not in status  # history lists specs; the audit log has the actions
    time.sleep(1.0)
    with server.client() as c:
        r = c.post("/models/doubler/predict", json={"features": {"x": 5.0}})
    assert (r.status_code, r.headers["X-Model-Version"]) == (200, "3")


def test_the_controller_inside_serve_rolls_a_failing_canary_back(canary_home: Path, tmp_path: Path) -> None:
    """No standalone controller: the server's own (the default) acts, under the same lease."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(canary_home, home, ignore=shutil.ignore_patterns("server-*.log", "controller.log"))
    with registry_of(home) as registry:
        champion = registry.resolve("doubler@champion").version
    env = server_env(home, MODELWARD_CONTROLLER_INTERVAL="0.3")
    server = start_server(home, "doubler", "--reload-interval", "0.3", env=env)
    try:
        cli(home, "deploy", "doubler", "--canary", "2", "--steps", "20,100", "--step-duration", "60s")

        def rolled_back() -> bool:
            """the canary is rolled back by the server's controller"""
            return canary_state(home)["spec"]["canary"]["state"] == "rolled_back"

        drive(server, rolled_back)
        with registry_of(home) as registry:
            event = registry.audit.events(subject="doubler", action="canary_rollback")[-1]
            assert event.actor.startswith("controller:") and event.payload["spec"]["canary"]["version"] == "2"
            assert registry.resolve("doubler@champion").version == champion
        assert "canary doubler v2: rollback" in server.log()
    finally:
        server.stop()
