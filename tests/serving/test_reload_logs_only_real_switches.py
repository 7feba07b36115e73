"""A server logs a switch only when the version it serves changes: a new deployment revision that
keeps serving the same version is not "switched churn from version 1 to 1"."""

from __future__ import annotations

from pathlib import Path

from modelward.config import Settings
from modelward.registry import Registry
from modelward.routing import DeploymentSpec
from tests.serving.conftest import start_server


def test_a_new_revision_of_the_same_version_is_not_a_switch(home: Path) -> None:
    server = start_server(home, "churn", "--reload-interval", "0")
    try:
        settings = Settings(home=home, actor="tester", tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
        with Registry.from_settings(settings).open() as registry:
            registry.deployments.put(DeploymentSpec.single("churn"), reason="the same, written down")
        with server.client() as c:
            r = c.post("/admin/models/churn/reload", headers=server.admin_headers())
        assert r.status_code == 200 and r.json()["version"] == "1"
        assert "switched churn" not in server.log()
    finally:
        server.stop()
