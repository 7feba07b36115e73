"""Over a real server with an A/B deployment of two versions: after labels arrive for both arms,
/metrics shows live performance for each arm and version, and the ``version="all", arm="all"``
series is the model as a whole, computed over every labelled row of both arms."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import accuracy_score, roc_auc_score

from modelward.config import Settings
from modelward.registry import Registry
from modelward.routing import DeploymentSpec
from tests.serving.conftest import server_env, start_server

REQUESTS = 160
T = TypeVar("T")


def wait_for(probe: Callable[[], T], done: Callable[[T], bool], timeout: float = 60.0) -> T:
    """``probe()`` once ``done`` holds for it; the last value is in the failure message."""
    deadline = time.monotonic() + timeout
    while not done(value := probe()):
        assert time.monotonic() < deadline, f"condition not reached in time; last seen: {value}"
        time.sleep(0.1)
    return value


def performance_samples(url: str) -> dict[tuple[str, str, str, str], float]:
    """``modelward_performance`` and ``modelward_performance_rows`` samples by (name, version, arm,
    metric or kind)."""
    text = httpx.get(url + "/metrics", timeout=10).text
    out: dict[tuple[str, str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in ("modelward_performance", "modelward_performance_rows"):
                last = s.labels.get("metric") or s.labels["kind"]
                out[(s.name, s.labels["version"], s.labels["arm"], last)] = s.value
    return out


def _record(row: pd.Series) -> dict[str, Any]:
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


def test_every_arm_has_its_series_and_all_is_the_whole_model(home: Path, churn_frame: pd.DataFrame) -> None:
    settings = Settings(home=home, actor="tester", tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    with Registry.from_settings(settings).open() as registry:
        registry.deployments.put(
            DeploymentSpec.ab("churn", {"champion": 50, "challenger": 50}, key="customer_id"), reason="test"
        )
    (home / "alerts.yaml").write_text(
        "notifiers: []\nrules:\n  - {kind: performance, when: roc_auc < 0.1, min_labels: 10}\n"
    )
    env = server_env(
        home,
        MODELWARD_ALERTS_FILE=str(home / "alerts.yaml"),
        MODELWARD_CONTROLLER_INTERVAL="0.2",
        MODELWARD_MONITOR_INTERVAL="0.2",
    )
    server = start_server(home, "churn", "--reload-interval", "0", env=env)
    try:
        frame = churn_frame.sample(REQUESTS, random_state=3).reset_index(drop=True)
        answers: list[dict[str, Any]] = []
        with server.client() as client:
            for i, row in frame.drop(columns=["churn"]).iterrows():
                body = {"features": _record(row), "request_id": f"ab-{i}"}
                r = client.post("/models/churn/predict", json=body, headers={"X-Routing-Key": f"c-{i}"})
                assert r.status_code == 200, r.text
                answers.append(r.json())
            labels = [int(y) for y in frame["churn"]]
            items = [{"request_id": f"ab-{i}", "label": y} for i, y in enumerate(labels)]
            # Labels of predictions not yet logged are kept as orphans and join once they are.
            assert client.post("/feedback", json={"items": items}).status_code == 200

        arms = {a["arm"]: a["version"] for a in answers}
        assert arms == {"champion": "1", "challenger": "2"}
        labelled = ("modelward_performance_rows", "all", "all", "labelled")
        found = wait_for(lambda: performance_samples(server.url), lambda s: s.get(labelled) == REQUESTS)

        def expected(rows: list[int]) -> dict[str, float]:
            truth = np.array([labels[i] for i in rows])
            predicted = np.array([answers[i]["predictions"][0]["prediction"] for i in rows])
            score = np.array([answers[i]["predictions"][0]["probabilities"]["1"] for i in rows])
            return {
                "accuracy": float(accuracy_score(truth, predicted)),
                "roc_auc": float(roc_auc_score(truth, score)),
            }

        for arm, version in [*arms.items(), ("all", "all")]:
            rows = [i for i, a in enumerate(answers) if arm in ("all", a["arm"])]
            assert found[("modelward_performance_rows", version, arm, "labelled")] == len(rows)
            for metric, value in expected(rows).items():
                got = found[("modelward_performance", version, arm, metric)]
                assert abs(got - value) < 1e-9, (arm, metric, got, value)
    finally:
        server.stop()
