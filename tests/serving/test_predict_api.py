"""The REST prediction API of a real server: three request forms, ids, headers, models, docs, logs."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from tests.serving.conftest import Server

ROW = {
    "age": 42,
    "tenure": 3,
    "balance": 1000.0,
    "num_products": 2,
    "has_cr_card": 1,
    "is_active_member": 0,
    "estimated_salary": 50000.0,
    "geography": "Germany",
    "gender": "Female",
}
ROW2 = {**ROW, "age": 61, "geography": "France", "is_active_member": 1}


def test_one_record_gets_prediction_probabilities_ids_and_version_headers(server: Server) -> None:
    with server.client() as c:
        r = c.post("/models/churn/predict", json={"features": ROW})
    assert r.status_code == 200
    body = r.json()
    assert (body["model"], body["version"], body["alias"]) == ("churn", "1", "champion")
    [row] = body["predictions"]
    assert row["prediction"] in (0, 1)
    assert set(row["probabilities"]) == {"0", "1"}
    assert sum(row["probabilities"].values()) == pytest.approx(1.0)
    assert r.headers["X-Model-Version"] == "1"
    assert r.headers["X-Request-ID"] == row["request_id"]


def test_records_and_columns_forms_give_the_same_answers(server: Server) -> None:
    with server.client() as c:
        by_rows = c.post("/models/churn/predict", json={"instances": [ROW, ROW2]}).json()
        by_cols = c.post("/models/churn/predict", json={"inputs": {k: [ROW[k], ROW2[k]] for k in ROW}}).json()
        single = [
            c.post("/models/churn/predict", json={"features": r}).json()["predictions"][0]
            for r in (ROW, ROW2)
        ]
    strip = lambda rows: [(p["prediction"], p["probabilities"]) for p in rows]  # noqa: E731
    assert strip(by_rows["predictions"]) == strip(by_cols["predictions"]) == strip(single)


def test_client_request_ids_are_kept(server: Server) -> None:
    with server.client() as c:
        one = c.post("/models/churn/predict", json={"features": ROW}, headers={"X-Request-ID": "order-17"})
        many = c.post(
            "/models/churn/predict", json={"instances": [ROW, ROW2]}, headers={"X-Request-ID": "batch-9"}
        )
        given = c.post("/models/churn/predict", json={"instances": [ROW, ROW2], "request_ids": ["a", "b"]})
        body_id = c.post(
            "/models/churn/predict", json={"features": ROW, "request_id": "from-body", "key": "cust-1"}
        )
    assert one.json()["predictions"][0]["request_id"] == "order-17"
    assert one.headers["X-Request-ID"] == "order-17"
    assert [p["request_id"] for p in many.json()["predictions"]] == ["batch-9-0", "batch-9-1"]
    assert [p["request_id"] for p in given.json()["predictions"]] == ["a", "b"]
    assert body_id.json()["predictions"][0]["request_id"] == "from-body"


def test_predictions_match_the_registered_model(server: Server, churn_models: dict) -> None:
    import pandas as pd

    with server.client() as c:
        body = c.post("/models/churn/predict", json={"instances": [ROW, ROW2]}).json()
    expected = churn_models["logreg"].predict_proba(pd.DataFrame([ROW, ROW2]))
    got = [[p["probabilities"]["0"], p["probabilities"]["1"]] for p in body["predictions"]]
    np.testing.assert_allclose(got, expected)


def test_models_listing_and_detail_give_versions_aliases_and_schema(server: Server) -> None:
    with server.client() as c:
        listing = c.get("/models").json()
        detail = c.get("/models/churn").json()
        missing = c.get("/models/nope")
    assert [m["name"] for m in listing] == ["churn"]
    # The logistic regression pipeline is served compiled to ONNX, checked against the skops model.
    assert detail["version"] == "1" and detail["ready"] is True and detail["runtime"] == "onnxruntime"
    runtime = detail["deployment"]["arms"][0]["runtime"]
    assert runtime["compiled"] is True and runtime["max_abs_diff"] <= 1e-5
    assert [f["name"] for f in detail["schema"]][:3] == ["age", "tenure", "balance"]
    assert [(v["version"], v["aliases"]) for v in detail["versions"]] == [
        ("1", ["champion"]),
        ("2", ["challenger"]),
    ]
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_docs_show_the_models_field_names_and_types(server: Server) -> None:
    with server.client() as c:
        spec = c.get("/openapi.json").json()
        docs = c.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    features = spec["components"]["schemas"]["ChurnFeatures"]
    assert features["properties"]["age"]["type"] == "integer"
    assert features["properties"]["balance"]["type"] == "number"
    assert features["properties"]["geography"]["type"] == "string"
    body = spec["paths"]["/models/churn/predict"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("ChurnPredictRequest")


def test_health_and_readiness(server: Server) -> None:
    with server.client() as c:
        assert c.get("/health").json() == {"status": "live"}
        ready = c.get("/ready").json()
    assert ready["ready"] is True and ready["models"]["churn"]["version"] == "1"


def test_each_request_writes_one_json_log_line(server: Server) -> None:
    with server.client() as c:
        c.post("/models/churn/predict", json={"features": ROW}, headers={"X-Request-ID": "log-line-check"})
    # the line is written once the response has gone out, so the client may read the log first
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        found = [entry for entry in lines if entry["request_id"] == "log-line-check"]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    [line] = found
    assert line["status"] == 200 and line["model"] == "churn" and line["version"] == "1"
    assert line["latency_ms"] > 0 and line["path"] == "/models/churn/predict" and "time" in line
