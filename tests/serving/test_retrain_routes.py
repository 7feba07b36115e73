"""Retraining through a real server: the admin route queues a manual run, the server's controller
runs the policy's command, the history route shows the outcome and /metrics counts it; a second
request while one is queued or running is a 409 problem."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from modelward.config import Settings
from modelward.governance.reports import VersionReports
from modelward.store import Store
from tests.monitoring.test_prediction_log import wait_until
from tests.serving.conftest import server_env, start_server


def test_the_admin_route_queues_a_run_that_the_servers_controller_carries_out(
    home: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "trained.txt"
    command = [
        sys.executable,
        "-c",
        f"import os; open({str(marker)!r}, 'w').write(os.environ['MODELWARD_RETRAIN_REASON'])",
    ]
    with Store(Settings(home=home).resolved_database_url) as store:
        store.migrate()
        VersionReports(store).set_policy(
            "churn", json.dumps({"retrain": {"command": command}}), actor="tester"
        )
    env = server_env(home, MODELWARD_CONTROLLER_INTERVAL="0.5")
    server = start_server(home, "churn", "--reload-interval", "0", env=env)
    try:
        with server.client() as c:
            bad = c.post("/admin/models/churn/retrain", json={"why": "x"}, headers=server.admin_headers())
            assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
            unknown = c.post(
                "/admin/models/churnn/retrain", json={"reason": "x"}, headers=server.admin_headers()
            )
            assert unknown.status_code == 404
            assert c.post("/admin/models/churn/retrain", json={"reason": "x"}).status_code == 401
            queued = c.post(
                "/admin/models/churn/retrain", json={"reason": "new labels"}, headers=server.admin_headers()
            )
            assert queued.status_code == 202 and queued.json()["status"] == "queued"
            again = c.post(
                "/admin/models/churn/retrain", json={"reason": "again"}, headers=server.admin_headers()
            )
            assert again.status_code in (202, 409)  # 202 only if the first one already finished
            if again.status_code == 409:
                assert again.json()["run_id"] == queued.json()["id"]

            def finished() -> bool:
                runs = c.get("/models/churn/retrains").json()["runs"]
                return bool(runs) and all(r["status"] == "succeeded" for r in runs)

            wait_until(finished, timeout=120)
            runs = c.get("/models/churn/retrains").json()["runs"]
            assert runs[-1]["id"] == queued.json()["id"] and runs[-1]["trigger"] == "manual"
            assert runs[-1]["exit_code"] == 0 and "output" not in runs[-1]
            assert marker.exists()
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(c.get("/metrics").text)
                for s in family.samples
            }
            labels = (("model", "churn"), ("outcome", "succeeded"), ("trigger", "manual"))
            assert samples[("modelward_retrain_runs_total", labels)] >= 1
            assert c.get("/models/churnn/retrains").status_code == 404
    finally:
        server.stop()
