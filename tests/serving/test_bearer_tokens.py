"""A bearer token is read the same way on every path: the prediction lane (the server's protocol),
the FastAPI routes' guard and the admin routes accept and refuse exactly the same headers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving.conftest import ADMIN_TOKEN, Server, server_env, start_server
from tests.serving.test_predict_api import ROW

PREDICT_TOKEN = "predict-secret"
HEADERS = {
    "plain": f"Bearer {PREDICT_TOKEN}",
    "lower-case scheme": f"bearer {PREDICT_TOKEN}",
    "upper-case scheme": f"BEARER {PREDICT_TOKEN}",
    "two spaces": f"Bearer  {PREDICT_TOKEN}",
    "tab": f"Bearer\t{PREDICT_TOKEN}",
    "admin token": f"Bearer {ADMIN_TOKEN}",
    "wrong token": "Bearer nope",
    "no scheme": PREDICT_TOKEN,
    "basic scheme": f"Basic {PREDICT_TOKEN}",
    "scheme only": "Bearer",
    "empty": "",
}


@pytest.fixture(scope="module")
def guarded(churn_home: Path) -> Iterator[Server]:
    env = server_env(churn_home, MODELWARD_PREDICT_TOKEN=PREDICT_TOKEN)
    server = start_server(churn_home, "churn", "--reload-interval", "0", env=env)
    yield server
    server.stop()


@pytest.mark.parametrize("kind", list(HEADERS))
def test_the_lane_and_the_guard_accept_the_same_authorization_headers(guarded: Server, kind: str) -> None:
    headers = {"Authorization": HEADERS[kind]}
    with guarded.client() as c:
        lane = c.post("/models/churn/predict", json={"features": ROW}, headers=headers)
        guard = c.get("/models/churn", headers=headers)
        general = c.post("/models/churn/predict", json={"instances": [ROW, ROW]}, headers=headers)
    assert lane.status_code == guard.status_code == general.status_code, (lane.text, guard.text)
    assert lane.status_code in (200, 401)
    if lane.status_code == 401:
        for r in (lane, guard):
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["www-authenticate"] == "Bearer"
            assert r.json()["detail"] == "prediction token missing or wrong"


def test_admin_routes_read_the_header_the_same_way(guarded: Server) -> None:
    with guarded.client() as c:
        for value, status in ((f"bearer  {ADMIN_TOKEN}", 200), (f"Bearer {PREDICT_TOKEN}", 401)):
            r = c.get("/admin/deployments", headers={"Authorization": value})
            assert r.status_code == status, r.text
