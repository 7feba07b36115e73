"""Routing through real servers: sticky keys land on the same arm in two separate processes (and
where the pure policy says), and a shadow never changes what clients get, while its agreement with
the primary is reported."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from modelward.config import Settings
from modelward.registry import Registry
from modelward.routing import DeploymentSpec
from tests.serving.conftest import server_env, start_server
from tests.serving.test_predict_api import ROW


def _deploy(home: Path, spec: DeploymentSpec) -> None:
    settings = Settings(home=home, actor="tester", tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    with Registry.from_settings(settings).open() as registry:
        registry.deployments.put(spec, reason="test")


def test_every_key_lands_on_the_same_arm_in_two_server_processes(home: Path) -> None:
    spec = DeploymentSpec.ab("churn", {"champion": 30, "challenger": 70}, key="customer_id", salt="exp-7")
    _deploy(home, spec)
    keys = [f"customer-{i}" for i in range(400)]
    seen: list[list[tuple[str, str]]] = []
    for _ in range(2):
        server = start_server(home, "churn", "--reload-interval", "0")
        try:
            with server.client() as c:
                # a key in the record (the deployment's key field) and in the header give one arm each
                answers = []
                for i, key in enumerate(keys):
                    body = {"features": {**ROW, "customer_id": key}} if i % 2 else {"features": ROW}
                    headers = {} if i % 2 else {"X-Routing-Key": key}
                    r = c.post("/models/churn/predict", json=body, headers=headers)
                    assert r.status_code == 200, r.text
                    answers.append((r.json()["arm"], r.json()["version"]))
        finally:
            server.stop()
        seen.append(answers)
    assert seen[0] == seen[1]
    policy = spec.policy()
    assert [arm for arm, _ in seen[0]] == [policy.assign(k).name for k in keys]
    assert {v for arm, v in seen[0] if arm == "champion"} == {"1"}
    assert {v for arm, v in seen[0] if arm == "challenger"} == {"2"}
    share = sum(arm == "champion" for arm, _ in seen[0]) / len(keys)
    assert 0.22 < share < 0.38


def test_a_shadow_never_changes_the_responses_and_its_agreement_is_reported(home: Path) -> None:
    bodies = [
        {"features": {**ROW, "age": 20 + i, "balance": 1000.0 * i}, "request_id": f"req-{i}"}
        for i in range(60)
    ]
    answers: dict[str, list[bytes]] = {}
    for label, spec in (
        ("plain", DeploymentSpec.single("churn")),
        ("shadowed", DeploymentSpec.single("churn").with_shadow("2")),
    ):
        _deploy(home, spec)
        server = start_server(home, "churn", "--reload-interval", "0", env=server_env(home))
        try:
            with server.client() as c:
                answers[label] = [c.post("/models/churn/predict", json=b).content for b in bodies]
                described = c.get("/models/churn").json()["deployment"]
        finally:
            server.stop()
        assert (described["shadow"] is not None) == (label == "shadowed")
    assert answers["plain"] == answers["shadowed"]  # byte for byte

    status = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = subprocess.run(
            [sys.executable, "-m", "modelward", "deploy", "status", "churn", "--json"],
            capture_output=True,
            text=True,
            env=server_env(home),
            check=True,
        )
        status = json.loads(out.stdout)
        if (status["shadow_agreement"] or {}).get("compared", 0) >= len(bodies):
            break
        time.sleep(0.5)
    assert status is not None
    agreement = status["shadow_agreement"]
    assert agreement["compared"] == len(bodies), agreement
    assert 0.0 <= agreement["agreement"] <= 1.0
