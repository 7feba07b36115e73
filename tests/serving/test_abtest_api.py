"""`GET /models/{name}/abtest` over HTTP against a real server reading its own store."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelward.feedback import ArmData, analyze
from modelward.registry.deployments import Deployments
from modelward.routing import DeploymentSpec
from modelward.store import Store
from modelward.store.tables import feedback, predictions
from tests.serving.conftest import Server, start_server


def _rows(arm: str, n: int, start: int, *, value: float, correct_every: int) -> tuple[list[Any], list[Any]]:
    """``n`` requests of ``arm`` predicting 1, all labelled: label 1 (correct) unless i % correct_every
    == 0; feedback value ``value + i % 3``."""
    now = time.time()
    preds, labels = [], []
    for i in range(start, start + n):
        rid = f"{arm}-{i}"
        preds.append(
            {
                "request_id": rid,
                "ts": now,
                "model": "churn",
                "version": "1",
                "arm": arm,
                "routing_key": None,
                "inputs": "{}",
                "outputs": json.dumps({"prediction": 1, "probabilities": {"0": 0.2, "1": 0.8}}),
                "latency_ms": 1.0,
            }
        )
        label = 0 if i % correct_every == 0 else 1
        labels.append(
            {
                "request_id": rid,
                "label": json.dumps(label),
                "value": value + i % 3,
                "model": "churn",
                "ts": now,
                "updated_at": now,
            }
        )
    return preds, labels


def insert(home: Path, arm: str, n: int, start: int, **kw: Any) -> None:
    store = Store(f"sqlite:///{home / 'modelward.db'}").open()
    try:
        preds, labels = _rows(arm, n, start, **kw)
        with store.write() as conn:
            conn.execute(predictions.insert(), preds)
            conn.execute(feedback.insert(), labels)
    finally:
        store.close()


@pytest.fixture(scope="module")
def served(churn_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server on a copy of the churn home with churn split 50/50 and logged, labelled traffic:
    champion 300 requests (every 4th wrong), challenger 300 (every 5th wrong)."""
    home = tmp_path_factory.mktemp("abtest") / "home"
    shutil.copytree(churn_home, home, ignore=shutil.ignore_patterns("server-*.log"))
    store = Store(f"sqlite:///{home / 'modelward.db'}").open()
    store.migrate()
    Deployments(store, actor="tester").put(DeploymentSpec.ab("churn", {"champion": 50, "challenger": 50}))
    store.close()
    insert(home, "champion", 300, 0, value=10.0, correct_every=4)
    insert(home, "challenger", 300, 0, value=11.0, correct_every=5)
    server = start_server(home, "churn", "--reload-interval", "0")
    yield server
    server.stop()


def test_the_report_over_http_equals_analyze_on_the_same_counts(served: Server) -> None:
    with served.client() as client:
        response = client.get("/models/churn/abtest", params={"metric": "correct", "since": "7d"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    arms = {a["name"]: a for a in body["arms"]}
    assert (arms["champion"]["served"], arms["champion"]["n"]) == (300, 300)
    assert arms["champion"]["mean"] == pytest.approx(225 / 300)
    assert arms["challenger"]["mean"] == pytest.approx(240 / 300)
    want = analyze(
        [ArmData("champion", 300, successes=225), ArmData("challenger", 300, successes=240)],
        metric="accuracy",
    )
    c = body["comparisons"][0]
    assert c["p_value"] == pytest.approx(want.comparisons[0].p_value)
    assert c["sequential_p_value"] == pytest.approx(want.comparisons[0].sequential_p_value)
    assert body["verdict"] == want.verdict
    assert body["srm"]["observed"] == {"champion": 300, "challenger": 300}
    assert body["deployment"]["weights"] == {"champion": 0.5, "challenger": 0.5}


def test_value_metric_and_rows_logged_after_start_are_reported(served: Server) -> None:
    insert(served.home, "challenger", 30, 300, value=11.0, correct_every=5)
    with served.client() as client:
        body = client.get("/models/churn/abtest", params={"metric": "value", "control": "challenger"}).json()
    assert body["kind"] == "continuous" and body["control"] == "challenger"
    arms = {a["name"]: a for a in body["arms"]}
    assert arms["challenger"]["n"] == 330
    assert arms["challenger"]["mean"] == pytest.approx(sum(11.0 + i % 3 for i in range(330)) / 330)
    assert body["comparisons"][0]["treatment"] == "champion"


@pytest.mark.parametrize(
    ("query", "status", "kind", "detail"),
    [
        ({"metric": "auc"}, 422, "invalid-query", "metric must be one of correct, label, value"),
        ({"since": "yesterday"}, 422, "invalid-query", "since: cannot read 'yesterday'"),
        ({"alpha": "2"}, 422, "invalid-query", "alpha must lie strictly between 0 and 1"),
        ({"alpha": "x"}, 422, "invalid-query", "alpha must be a number"),
        ({"window": "7d"}, 422, "invalid-query", "unknown query parameter(s) window"),
        ({"control": "nope"}, 422, "invalid-query", "no arm named 'nope' (arms: champion, challenger)"),
        ({"until": "2000-01-01"}, 409, "no-feedback", "no feedback yet for the 0 requests"),
    ],
)
def test_bad_parameters_and_missing_feedback_are_problems(
    served: Server, query: dict[str, str], status: int, kind: str, detail: str
) -> None:
    with served.client() as client:
        response = client.get("/models/churn/abtest", params=query)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/" + kind) and detail in problem["detail"]


def test_an_unknown_model_is_a_404(served: Server) -> None:
    with served.client() as client:
        response = client.get("/models/nope/abtest")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/model-not-found") and "nope" in response.json()["detail"]
