"""POST /models/{name}/explain over HTTP on a real server: body forms, row limit, auth, metrics."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tests.explain.test_missing_shap import SRC, hide_shap
from tests.serving.conftest import Server, server_env, start_server

TOKEN = "explain-predict-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(explain_home: Path) -> Iterator[Server]:
    env = server_env(explain_home, MODELWARD_PREDICT_TOKEN=TOKEN, MODELWARD_EXPLAIN_MAX_ROWS="3")
    s = start_server(explain_home, "hgb", "logreg", "--reload-interval", "0", env=env)
    yield s
    s.stop()


def records(frame: pd.DataFrame, n: int) -> list[dict[str, object]]:
    columns = [c for c in frame.columns if c != "churn"]
    return frame[columns].head(n).to_dict(orient="records")  # type: ignore[return-value]


def test_every_predict_body_form_gets_the_same_explanation(server: Server, churn_frame: pd.DataFrame) -> None:
    two = records(churn_frame, 2)
    columns = list(two[0])
    forms = {
        "features": {"features": two[0]},
        "instances": {"instances": two},
        "inputs": {"inputs": {c: [r[c] for r in two] for c in columns}},
        "dataframe_split": {"dataframe_split": {"columns": columns, "data": [list(r.values()) for r in two]}},
        "dataframe_records": {"dataframe_records": two},
    }
    answers = {}
    with server.client(headers=AUTH) as c:
        for form, body in forms.items():
            r = c.post("/models/hgb/explain", json=body)
            assert r.status_code == 200, (form, r.text)
            answers[form] = r.json()
    first = answers["features"]
    assert (first["model"], first["version"], first["method"]) == ("hgb", "1", "tree")
    assert first["output_space"] == "log_odds"
    row = first["explanations"][0]
    assert set(row["contributions"]) == set(columns)
    assert row["base_value"] + sum(row["contributions"].values()) == pytest.approx(row["output"], abs=1e-6)
    assert len(row["top"]) == 5
    for form, answer in answers.items():
        assert answer["explanations"][0]["contributions"] == pytest.approx(row["contributions"], abs=1e-12), (
            form
        )
    assert len(answers["instances"]["explanations"]) == 2


def test_top_k_and_a_linear_model(server: Server, churn_frame: pd.DataFrame) -> None:
    with server.client(headers=AUTH) as c:
        r = c.post("/models/logreg/explain?top_k=2", json={"features": records(churn_frame, 1)[0]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["method"], body["output_space"]) == ("linear", "log_odds")
    top = body["explanations"][0]["top"]
    assert [t["feature"] for t in top] == sorted(
        body["explanations"][0]["contributions"],
        key=lambda f: -abs(body["explanations"][0]["contributions"][f]),
    )[:2]


def test_bad_requests_are_problems_never_500(server: Server, churn_frame: pd.DataFrame) -> None:
    row = records(churn_frame, 1)[0]
    with server.client(headers=AUTH) as c:
        too_many = c.post("/models/hgb/explain", json={"instances": records(churn_frame, 4)})
        bad_value = c.post("/models/hgb/explain", json={"features": {**row, "age": "old"}})
        bad_query = c.post("/models/hgb/explain?top_k=many", json={"features": row})
        unknown_query = c.post("/models/hgb/explain?explain=all", json={"features": row})
        unknown_model = c.post("/models/nope/explain", json={"features": row})
        unloaded = c.post("/models/hgb/explain?version=7", json={"features": row})
    assert too_many.status_code == 413 and "limit of 3" in too_many.json()["detail"]
    assert bad_value.status_code == 422 and bad_value.json()["errors"][0]["field"] == "age"
    assert bad_query.status_code == 422 and "top_k" in bad_query.json()["detail"]
    assert unknown_query.status_code == 422
    assert unknown_model.status_code == 404
    assert unloaded.status_code == 404
    for r in (too_many, bad_value, bad_query, unknown_query, unknown_model, unloaded):
        assert r.headers["content-type"] == "application/problem+json"


def test_explain_takes_the_predict_policy(server: Server, churn_frame: pd.DataFrame) -> None:
    row = records(churn_frame, 1)[0]
    denied = httpx.post(server.url + "/models/hgb/explain", json={"features": row})
    assert denied.status_code == 401 and denied.headers["content-type"] == "application/problem+json"
    admin = httpx.post(
        server.url + "/models/hgb/explain", json={"features": row}, headers=server.admin_headers()
    )
    assert admin.status_code == 200


def test_latency_and_builds_appear_in_metrics(server: Server, churn_frame: pd.DataFrame) -> None:
    with server.client(headers=AUTH) as c:
        for row in records(churn_frame, 3):
            assert c.post("/models/hgb/explain", json={"features": row}).status_code == 200
        text = c.get("/metrics").text
    count = re.search(r'modelward_explain_seconds_count\{model="hgb",version="1"\} (\S+)', text)
    builds = re.search(r'modelward_explainer_builds_total\{model="hgb",version="1"\} (\S+)', text)
    assert count is not None and float(count.group(1)) >= 3
    assert builds is not None and float(builds.group(1)) == 1.0  # built once for every request


def test_without_shap_the_route_answers_501_naming_the_extra(explain_home: Path, tmp_path: Path) -> None:
    hidden = hide_shap(tmp_path / "noshap")
    env = server_env(explain_home, PYTHONPATH=f"{hidden}:{SRC}")
    s = start_server(explain_home, "hgb", "--reload-interval", "0", env=env)
    try:
        r = httpx.post(s.url + "/models/hgb/explain", json={"features": {"age": 40}})
        assert r.status_code == 422  # the request is checked first
        full = {
            "age": 40,
            "tenure": 3,
            "balance": 0.0,
            "num_products": 2,
            "has_cr_card": 1,
            "is_active_member": 1,
            "estimated_salary": 50000.0,
            "geography": "France",
            "gender": "Male",
        }
        r = httpx.post(s.url + "/models/hgb/explain", json={"features": full})
        assert r.status_code == 501 and r.headers["content-type"] == "application/problem+json"
        assert "modelward[explain]" in r.json()["detail"]
        assert httpx.post(s.url + "/models/hgb/predict", json={"features": full}).status_code == 200
    finally:
        s.stop()
