"""A client names a version (``/v2/models/{name}/versions/{v}/infer``, ``/models/{name}/versions/{v}/
predict``) against a real server: every version it has loaded answers with its own prediction, logged
under the arm ``direct`` (so A/B counts, canary windows and the shadow's agreement leave it out); a
version registered but not loaded, a version that does not exist and an unknown model get 404
problems that say which."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from modelward.store import Store
from modelward.store.tables import predictions
from tests.monitoring.test_prediction_log import wait_until
from tests.serving.conftest import Server, server_env, start_server
from tests.serving.test_open_inference_protocol import _inputs
from tests.serving.test_predict_api import ROW, ROW2
from tests.serving.test_prediction_log_serving import _settled

tritonclient_http = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402 - after the skip

PROBLEM = "application/problem+json"
FRAME = pd.DataFrame([ROW, ROW2])


def _cli(home: Path, *argv: str) -> Any:
    """``modelward ... --json`` as an operator types it, on ``home``: its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "modelward", *argv, "--json"],
        capture_output=True,
        text=True,
        env=server_env(home),
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _deploy(home: Path, *argv: str) -> None:
    _cli(home, "deploy", "churn", *argv)


def _log_rows(home: Path, request_ids: list[str]) -> list[dict[str, Any]]:
    store = Store(f"sqlite:///{home / 'modelward.db'}").open()
    try:
        p = predictions.c
        query = select(p.request_id, p.version, p.arm).where(p.request_id.in_(request_ids)).order_by(p.id)
        with store.read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
    finally:
        store.close()


def _triton(server: Server) -> Any:
    return tritonclient_http.InferenceServerClient(url=server.url.removeprefix("http://"))


@pytest.fixture
def served(home: Path) -> Iterator[Callable[[], Server]]:
    """Starts a server on a private copy of the churn home (after the test deployed) and stops it."""
    servers: list[Server] = []

    def start() -> Server:
        servers.append(start_server(home, "churn", "--reload-interval", "0"))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


def test_each_ab_arm_answers_by_version_and_direct_calls_stay_out_of_the_ab_report(
    home: Path, served: Callable[[], Server], churn_models: dict[str, Any]
) -> None:
    _deploy(home, "--ab", "champion=50,challenger=50")
    since = datetime.now(UTC).isoformat()  # the copied home may hold other tests' rows
    server = served()
    triton = _triton(server)
    try:
        for version, fitted in (("1", "logreg"), ("2", "forest")):
            result = triton.infer(
                "churn",
                _inputs([ROW, ROW2], binary=True),
                model_version=version,
                request_id=f"oip-v{version}",
            )
            assert result.get_response()["model_version"] == version
            expected = churn_models[fitted].predict_proba(FRAME)
            # the forest runs compiled (float32 scores): equal to its own predictions within that
            np.testing.assert_allclose(result.as_numpy("predict_proba"), expected, atol=1e-6)
        assert triton.get_model_metadata("churn")["versions"] == ["1", "2"]
        assert triton.get_model_metadata("churn", model_version="2")["versions"] == ["2"]
        assert triton.is_model_ready("churn", model_version="2")
    finally:
        triton.close()
    with server.client() as c:
        rest = c.post("/models/churn/versions/2/predict", json={"features": ROW, "request_id": "rest-v2"})
        assert rest.status_code == 200, rest.text
        body = rest.json()
        assert (body["version"], body["alias"], body["arm"]) == ("2", "challenger", "direct")
        assert (rest.headers["x-model-version"], rest.headers["x-model-arm"]) == ("2", "direct")
        expected = churn_models["forest"].predict_proba(pd.DataFrame([ROW]))[0]
        assert body["predictions"][0]["probabilities"]["1"] == pytest.approx(expected[1])
        oip = c.post(
            "/v2/models/churn/versions/1/infer",
            json={"inputs": [{"name": "age", "datatype": "INT64", "shape": [1], "data": [42]}]},
        )
        assert oip.status_code == 422  # a named version validates like every other request
        routed = [f"routed-{i}" for i in range(30)]
        for rid in routed:
            r = c.post("/models/churn/predict", json={"features": ROW, "request_id": rid})
            assert r.status_code == 200 and r.json()["arm"] in {"champion", "challenger"}, r.text
        direct = ["oip-v1-0", "oip-v1-1", "oip-v2-0", "oip-v2-1", "rest-v2"]
        _settled(server.url)
        items = [{"request_id": rid, "label": 1} for rid in routed + direct]
        assert c.post("/feedback", json={"items": items}).status_code == 200
        report = c.get("/models/churn/abtest", params={"since": since}).json()
    counted = {a["name"]: a["requests"] for a in report["arms"]}
    assert set(counted) == {"champion", "challenger"} and sum(counted.values()) == len(routed)
    assert "direct" not in report["other_arms"]
    logged = {r["request_id"]: (r["version"], r["arm"]) for r in _log_rows(home, direct)}
    assert logged == {
        "oip-v1-0": ("1", "direct"),
        "oip-v1-1": ("1", "direct"),
        "oip-v2-0": ("2", "direct"),
        "oip-v2-1": ("2", "direct"),
        "rest-v2": ("2", "direct"),
    }


def test_a_shadow_version_answers_by_version_without_being_mirrored(
    home: Path, served: Callable[[], Server], churn_models: dict[str, Any]
) -> None:
    _deploy(home, "--single", "1", "--shadow", "2", "--shadow-rate", "1")
    server = served()
    triton = _triton(server)
    try:
        result = triton.infer(
            "churn", _inputs([ROW, ROW2], binary=False), model_version="2", request_id="to-shadow"
        )
        assert result.get_response()["model_version"] == "2"
        np.testing.assert_allclose(
            result.as_numpy("predict_proba"), churn_models["forest"].predict_proba(FRAME), atol=1e-6
        )
        routed = triton.infer("churn", _inputs([ROW], binary=False), request_id="routed")
        assert routed.get_response()["model_version"] == "1"
    finally:
        triton.close()

    ids = ["to-shadow-0", "to-shadow-1", "routed"]
    # the mirrored request is logged after the answer: wait for its row
    wait_until(lambda: any(r["arm"] == "shadow" for r in _log_rows(home, ids)), timeout=30)
    _settled(server.url)
    found = _log_rows(home, ids)
    assert sorted((r["request_id"], r["version"], r["arm"]) for r in found) == [
        ("routed", "1", "primary"),
        ("routed", "2", "shadow"),
        ("to-shadow-0", "2", "direct"),
        ("to-shadow-1", "2", "direct"),
    ]


def test_canary_arms_answer_by_version_outside_the_canary_window(
    home: Path, served: Callable[[], Server]
) -> None:
    _deploy(home, "--canary", "2", "--steps", "5,50,100", "--step-duration", "1h")
    server = served()
    with server.client() as c:
        for version in ("1", "2"):
            r = c.post(f"/models/churn/versions/{version}/predict", json={"instances": [ROW, ROW2]})
            assert r.status_code == 200, r.text
            assert (r.json()["version"], r.json()["arm"]) == (version, "direct")
        _settled(server.url)
        stats = {
            (s["arm"], s["version"]): s["requests"] for s in _cli(home, "deploy", "status", "churn")["stats"]
        }
        # the copied home may hold other tests' rows (arm primary); the canary's arms got nothing
        assert {k: n for k, n in stats.items() if k[0] != "primary"} == {
            ("direct", "1"): 2,
            ("direct", "2"): 2,
        }

        # An arm at weight 0 gets no traffic and is not loaded: named, it says so.
        _deploy(home, "--ab", "champion=100,challenger=0")
        reload = c.post("/admin/models/churn/reload", headers=server.admin_headers())
        assert reload.status_code == 200, reload.text
        idle = _problem(c.post("/models/churn/versions/2/predict", json={"features": ROW}))
        assert idle["detail"] == "version 2 of churn is registered but not loaded by this server (loaded: 1)"
        assert c.get("/v2/models/churn").json()["versions"] == ["1"]


def _problem(response: Any, status: int = 404) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    return dict(response.json())


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/models/churn/versions/{v}/infer"),
        ("POST", "/models/churn/versions/{v}/predict"),
        ("GET", "/v2/models/churn/versions/{v}"),
        ("GET", "/v2/models/churn/versions/{v}/ready"),
    ],
)
def test_a_version_not_loaded_or_unknown_gets_a_404_that_says_which(
    server: Server, method: str, path: str
) -> None:
    body: dict[str, Any] = {"inputs": [{"name": "age", "datatype": "INT64", "shape": [1], "data": [42]}]}
    if "predict" in path:
        body = {"features": ROW}
    with server.client() as c:
        kw: dict[str, Any] = {"json": body} if method == "POST" else {}
        not_loaded = _problem(c.request(method, path.format(v="2"), **kw))
        assert (
            not_loaded["detail"]
            == "version 2 of churn is registered but not loaded by this server (loaded: 1)"
        )
        assert not_loaded["type"].endswith("/version-not-loaded") and not_loaded["loaded_versions"] == ["1"]
        unknown = _problem(c.request(method, path.format(v="9"), **kw))
        assert unknown["type"].endswith("/version-not-found")
        assert unknown["detail"].startswith("churn has no version 9 (registered: 1, 2")
        assert unknown["detail"].endswith("loaded here: 1)")
        no_model = _problem(c.request(method, path.replace("churn", "nope").format(v="1"), **kw))
        assert no_model["type"].endswith("/model-not-found") and "'nope'" in no_model["detail"]


def test_the_served_version_answers_by_version_and_the_listing_says_what_is_loaded(
    server: Server, churn_models: dict[str, Any]
) -> None:
    triton = _triton(server)
    try:
        with pytest.raises(InferenceServerException, match="registered but not loaded"):
            triton.infer("churn", _inputs([ROW], binary=True), model_version="2")
        result = triton.infer("churn", _inputs([ROW], binary=True), model_version="1")
        np.testing.assert_allclose(
            result.as_numpy("predict_proba"), churn_models["logreg"].predict_proba(pd.DataFrame([ROW]))
        )
    finally:
        triton.close()
    with server.client() as c:
        listed = c.get("/models/churn").json()["versions"]
        assert [(v["version"], v["loaded"]) for v in listed] == [("1", True), ("2", False)]
        r = c.post("/v2/models/churn/versions/1/infer", json={"inputs": []})
        assert r.status_code == 422  # the version exists: the body is what is wrong
