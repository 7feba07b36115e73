"""Every route declares its auth policy; tokens are enforced as declared."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from modelward.config import Settings
from modelward.errors import ConfigError
from modelward.serving import create_app
from modelward.serving.auth import check_route_policies, is_loopback
from tests.serving.conftest import ADMIN_TOKEN, server_env, start_server
from tests.serving.test_predict_api import ROW

EXPECTED = {
    "GET /health": "public",
    "GET /ready": "public",
    "GET /metrics": "public",
    "POST /admin/models/{name}/reload": "admin",
    "POST /models/churn/predict": "predict",
    "POST /models/{name}/predict": "predict",
    "POST /models/{name}/versions/{version}/predict": "predict",
    "GET /models": "predict",
    "GET /models/{name}": "predict",
    "GET /v2": "public",
    "GET /v2/health/live": "public",
    "GET /v2/health/ready": "public",
    "GET /v2/models/{name}": "predict",
    "GET /v2/models/{name}/versions/{version}": "predict",
    "GET /v2/models/{name}/ready": "public",
    "GET /v2/models/{name}/versions/{version}/ready": "public",
    "POST /v2/models/{name}/infer": "predict",
    "POST /v2/models/{name}/versions/{version}/infer": "predict",
    "GET /alerts": "predict",
    "POST /feedback": "predict",
    "DELETE /feedback/{request_id}": "admin",
    "GET /models/{name}/performance": "predict",
    "GET /models/{name}/abtest": "predict",
    "GET /models/{name}/drift": "predict",
    "GET /models/{name}/card": "predict",
    "POST /models/{name}/explain": "predict",
    "GET /admin/deployments": "admin",
    "GET /admin/deployments/{name}": "admin",
    "PUT /admin/deployments/{name}": "admin",
    "GET /admin/deployments/{name}/status": "admin",
    "GET /models/{name}/versions/{version}/validation": "predict",
    "POST /admin/models/{name}/promote": "admin",
    "POST /admin/models/{name}/retrain": "admin",
    "GET /models/{name}/retrains": "predict",
    "GET /ui": "predict",
    "GET /ui/models/{name}": "predict",
    "GET /ui/models/{name}/card": "predict",
    "GET /ui/audit": "predict",
    "GET /ui/login": "public",
    "POST /ui/login": "public",
    "POST /ui/logout": "public",
    "GET /ui/static/dashboard.css": "public",
    "POST /ui/models/{name}/actions/{action}": "admin",
}


@pytest.fixture(scope="module")
def app(churn_home: Path) -> FastAPI:
    return create_app(Settings(home=churn_home, prediction_log=False), ["churn"])


def test_every_route_has_the_expected_policy(app: FastAPI) -> None:
    policies = check_route_policies(app)
    framework = {
        k: v
        for k, v in policies.items()
        if k.split(" ")[1] in {"/openapi.json", "/docs", "/redoc", "/docs/assets"}
    }
    assert set(framework.values()) == {"public"}
    ours = {k.replace("GET,HEAD", "GET"): v for k, v in policies.items() if k not in framework}
    assert ours == EXPECTED


def test_a_route_without_a_declared_policy_fails_the_check(app: FastAPI) -> None:
    async def sneaky() -> dict[str, str]:
        return {"secret": "x"}

    app.add_api_route("/sneaky", sneaky, methods=["GET"])
    try:
        with pytest.raises(ConfigError, match="GET /sneaky"):
            check_route_policies(app)
    finally:
        app.router.routes.pop()


def test_loopback_detection() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.0.1", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.1.2.3", "example.com", "::"))


def test_predict_token_guards_prediction_routes_only(churn_home: Path) -> None:
    env = server_env(churn_home, MODELWARD_PREDICT_TOKEN="predict-secret")
    server = start_server(churn_home, "churn", "--reload-interval", "0", env=env)
    try:
        with httpx.Client(base_url=server.url) as c:
            denied = c.post("/models/churn/predict", json={"features": ROW})
            assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
            assert denied.headers["content-type"] == "application/problem+json"
            ok = c.post(
                "/models/churn/predict",
                json={"features": ROW},
                headers={"Authorization": "Bearer predict-secret"},
            )
            assert ok.status_code == 200
            admin_as_predict = c.get("/models", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            assert admin_as_predict.status_code == 200
            assert c.get("/v2/models/churn").status_code == 401
            assert c.get("/health").status_code == 200 and c.get("/metrics").status_code == 200
            wrong_admin = c.post(
                "/admin/models/churn/reload", headers={"Authorization": "Bearer predict-secret"}
            )
            assert wrong_admin.status_code == 401
    finally:
        server.stop()


def test_admin_routes_are_disabled_without_an_admin_token(churn_home: Path) -> None:
    env = server_env(churn_home)
    del env["MODELWARD_ADMIN_TOKEN"]
    server = start_server(churn_home, "churn", "--reload-interval", "0", env=env)
    try:
        r = httpx.post(
            server.url + "/admin/models/churn/reload", headers={"Authorization": "Bearer anything"}
        )
        assert r.status_code == 403 and "MODELWARD_ADMIN_TOKEN" in r.json()["detail"]
    finally:
        server.stop()
