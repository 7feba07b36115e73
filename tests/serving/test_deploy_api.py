"""The deployments admin API over HTTP against a real server: tokens, validation, revisions, pickup."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelward.routing import DeploymentSpec
from tests.serving.conftest import Server, server_env, start_server
from tests.serving.test_predict_api import ROW


@pytest.fixture(scope="module")
def server(churn_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the file, on a private copy of the home; the controller is off (nothing here
    runs a canary) and deployments are polled every 0.3 s."""
    home = tmp_path_factory.mktemp("deploy-api") / "home"
    shutil.copytree(churn_home, home, ignore=shutil.ignore_patterns("server-*.log"))
    s = start_server(
        home, "churn", "--reload-interval", "0.3", env=server_env(home, MODELWARD_CONTROLLER="false")
    )
    yield s
    s.stop()


def revision(server: Server) -> int:
    with server.client() as c:
        r = c.get("/admin/deployments/churn", headers=server.admin_headers())
    return int(r.json()["revision"]) if r.status_code == 200 else 0


def test_deployments_api_needs_the_admin_token_validates_and_is_picked_up(server: Server) -> None:
    start = revision(server)
    with server.client() as c:
        admin = server.admin_headers()
        # Without the token, or with a wrong one: 401 problems, for reads and writes alike.
        for method, path in (("GET", "/admin/deployments"), ("GET", "/admin/deployments/churn")):
            r = c.request(method, path)
            assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        spec = DeploymentSpec.ab("churn", {"champion": 0, "challenger": 100}, key="customer_id").to_dict()
        assert c.put("/admin/deployments/churn", json=spec).status_code == 401
        wrong = c.put("/admin/deployments/churn", json=spec, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401

        missing = c.get("/admin/deployments/nope", headers=admin)
        assert missing.status_code == 404 and "no deployment spec" in missing.json()["detail"]

        stored = c.put("/admin/deployments/churn?reason=all%20to%20the%20forest", json=spec, headers=admin)
        assert stored.status_code == 200, stored.text
        body = stored.json()
        assert body["revision"] == start + 1 and stored.headers["etag"] == f'"{start + 1}"'
        assert body["reason"] == "all to the forest"
        assert body["resolved"] == {"@champion": "1", "@challenger": "2"}
        assert body["spec"]["key"] == "customer_id"

        got = c.get("/admin/deployments/churn", headers=admin)
        assert got.json()["spec"] == body["spec"] and got.headers["etag"] == f'"{start + 1}"'
        assert [d["model"] for d in c.get("/admin/deployments", headers=admin).json()["deployments"]] == [
            "churn"
        ]

        # The server routes by the new spec within a poll: every request goes to the challenger.
        deadline = time.monotonic() + 20
        arm = None
        while time.monotonic() < deadline:
            r = c.post("/models/churn/predict", json={"features": {**ROW, "customer_id": "c-1"}})
            arm = r.headers.get("X-Model-Arm")
            if arm == "challenger":
                break
            time.sleep(0.2)
        assert arm == "challenger" and r.headers["X-Model-Version"] == "2"

        # A stale If-Match is a 409 naming the current revision; the right one writes.
        single = DeploymentSpec.single("churn").to_dict()
        stale = c.put("/admin/deployments/churn", json=single, headers={**admin, "If-Match": f'"{start}"'})
        assert stale.status_code == 409
        assert stale.json()["revision"] == start + 1
        assert f"revision {start + 1}, not {start}" in stale.json()["detail"]
        envelope = {"spec": single, "reason": "back to the champion"}
        ok = c.put("/admin/deployments/churn", json=envelope, headers={**admin, "If-Match": f'"{start + 1}"'})
        assert ok.status_code == 200 and ok.json()["revision"] == start + 2
        assert ok.json()["reason"] == "back to the champion"

        # The prediction log is written in the background: poll until the challenger's rows are in.
        deadline = time.monotonic() + 20
        while True:
            status = c.get("/admin/deployments/churn/status?window=10m", headers=admin)
            assert status.status_code == 200
            if {w["arm"] for w in status.json()["stats"]} >= {"challenger"} or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status.json()["arms"][0]["version"] == "1"
        assert {w["arm"] for w in status.json()["stats"]} >= {"challenger"}


def test_invalid_deployments_are_422_problems_naming_the_problem(server: Server) -> None:
    before = revision(server)
    with server.client() as c:
        admin = server.admin_headers()
        cases = [
            (
                {"strategy": "zigzag", "arms": [{"name": "a", "target": "1"}]},
                "strategy 'zigzag' is not one of",
            ),
            (DeploymentSpec.single("churn", "9").to_dict(), "model 'churn' has no version 9"),
            (DeploymentSpec.ab("churn", {"champion": 50, "ghost": 50}).to_dict(), "has no alias 'ghost'"),
            (
                DeploymentSpec.start_canary("churn", 1).to_dict(),
                "a canary of version 1, which its baseline @champion already serves",
            ),
            ({"arms": [{"name": "a", "target": "1", "weight": -1}]}, "weight"),
            (
                {**DeploymentSpec.single("churn").to_dict(), "colour": "red"},
                "unknown deployment field(s): colour",
            ),
            ({**DeploymentSpec.single("churn").to_dict(), "model": "other"}, "not 'churn'"),
            ({"spec": DeploymentSpec.single("churn").to_dict(), "why": "x"}, "unknown field(s) why"),
        ]
        for body, message in cases:
            r = c.put("/admin/deployments/churn", json=body, headers=admin)
            assert r.status_code == 422, (body, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert message in r.json()["detail"], (message, r.json()["detail"])
        not_json = c.put(
            "/admin/deployments/churn",
            content=b"{nope",
            headers={**admin, "Content-Type": "application/json"},
        )
        assert not_json.status_code == 400 and "malformed JSON" in not_json.json()["detail"]
        not_text = c.put(
            "/admin/deployments/churn", content=b"a=1", headers={**admin, "Content-Type": "text/plain"}
        )
        assert not_text.status_code == 415 and "send JSON" in not_text.json()["detail"]
        bad_if_match = c.put(
            "/admin/deployments/churn",
            json=DeploymentSpec.single("churn").to_dict(),
            headers={**admin, "If-Match": "yesterday"},
        )
        assert bad_if_match.status_code == 400
        unknown = c.put(
            "/admin/deployments/nope", json=DeploymentSpec.single("nope").to_dict(), headers=admin
        )
        assert unknown.status_code == 404 and "not registered" in unknown.json()["detail"]
    assert revision(server) == before  # nothing was stored


def test_a_spec_serving_a_version_against_itself_is_refused_unless_the_request_allows_it(
    server: Server,
) -> None:
    """The checks `modelward deploy` makes: two arms on one version (here @champion and 1) are a 422
    naming them; "allow_same_version": true (or ?allow_same_version=true) stores it with warnings."""
    before = revision(server)
    spec = DeploymentSpec.ab("churn", {"champion": 50, "1": 50}).to_dict()
    same = "arms champion (@champion) and v1 (1) both resolve to version 1"
    with server.client() as c:
        admin = server.admin_headers()
        refused = c.put("/admin/deployments/churn", json=spec, headers=admin)
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert same in problem["detail"] and '"allow_same_version": true' in problem["detail"]
        assert [p for p in problem["problems"] if same in p], problem
        shadowed = DeploymentSpec.single("churn", shadow="@champion").to_dict()
        refused = c.put("/admin/deployments/churn", json={"spec": shadowed, "reason": "x"}, headers=admin)
        assert refused.status_code == 422
        assert "the shadow @champion is version 1, which arm primary" in refused.json()["detail"]
        bad = c.put(
            "/admin/deployments/churn", json={"spec": spec, "allow_same_version": "yes"}, headers=admin
        )
        assert bad.status_code == 422 and "allow_same_version must be true or false" in bad.json()["detail"]
        assert revision(server) == before

        stored = c.put(
            "/admin/deployments/churn",
            json={"spec": spec, "reason": "A/A test", "allow_same_version": True},
            headers=admin,
        )
        assert stored.status_code == 200, stored.text
        body = stored.json()
        assert body["revision"] == before + 1 and body["reason"] == "A/A test"
        assert [w for w in body["warnings"] if same in w], body
        stored = c.put("/admin/deployments/churn?allow_same_version=true", json=shadowed, headers=admin)
        assert stored.status_code == 200, stored.text
        assert stored.json()["warnings"][0].startswith("the shadow @champion is version 1")
        plain = c.put(
            "/admin/deployments/churn", json=DeploymentSpec.single("churn").to_dict(), headers=admin
        )
        assert plain.status_code == 200 and plain.json()["warnings"] == []
