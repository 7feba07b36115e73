"""The promotion gates over HTTP, on a real server: the admin promote route refuses a version that
fails its gates (409 naming them), promotes with force and a reason, and the stored validation is
served to readers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.serving.conftest import server_env, start_server

# The registration calibration of the churn models is far above this: the calibration gate fails.
STRICT = "regression: null\ncalibration:\n  max_ece: 0.000001\n"


def cli(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelward", *argv], env=server_env(home), capture_output=True, text=True
    )


def test_admin_promote_runs_the_gates_and_validations_are_served(home: Path) -> None:
    policy = home / "policy.yaml"
    policy.write_text(STRICT)
    assert cli(home, "policy", "set", "churn", str(policy)).returncode == 0
    server = start_server(home, "churn", env=server_env(home, MODELWARD_CONTROLLER="false"))
    try:
        with server.client() as c:
            admin = server.admin_headers()
            # The home's promotion of churn:2 to challenger ran (and stored) its gates, before the policy.
            before = c.get("/models/churn/versions/2/validation")
            assert before.status_code == 200 and before.json()["verdict"] == "pass"
            for path in ("/models/nope/versions/1/validation", "/models/churn/versions/9/validation"):
                missing = c.get(path)
                assert missing.status_code == 404
                assert missing.headers["content-type"] == "application/problem+json"

            assert c.post("/admin/models/churn/promote", json={"version": "2"}).status_code == 401
            bad = c.post("/admin/models/churn/promote", json={"versoin": "2"}, headers=admin)
            assert bad.status_code == 422 and "versoin" in bad.json()["detail"]
            unknown = c.post("/admin/models/churn/promote", json={"version": "9"}, headers=admin)
            assert unknown.status_code == 404

            refused = c.post("/admin/models/churn/promote", json={"version": "2"}, headers=admin)
            assert refused.status_code == 409
            assert refused.headers["content-type"] == "application/problem+json"
            assert [g["name"] for g in refused.json()["gates"]] == ["calibration"]
            assert "calibration" in refused.json()["detail"]

            no_reason = c.post(
                "/admin/models/churn/promote", json={"version": "2", "force": True}, headers=admin
            )
            assert no_reason.status_code == 422 and "reason" in no_reason.json()["detail"]

            forced = c.post(
                "/admin/models/churn/promote",
                json={"version": "2", "force": True, "reason": "calibrated downstream"},
                headers=admin,
            )
            assert forced.status_code == 200, forced.text
            assert forced.json()["forced"] is True
            assert "champion" in forced.json()["aliases"]

            stored = c.get("/models/churn/versions/2/validation")
            assert stored.status_code == 200
            body = stored.json()
            assert body["verdict"] == "fail"
            assert {g["name"]: g["verdict"] for g in body["gates"]}["calibration"] == "fail"
    finally:
        server.stop()
    log = cli(home, "audit", "log", "--model", "churn:2", "--action", "promote", "--json")
    assert '"override": true' in log.stdout
