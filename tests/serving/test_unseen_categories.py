"""A categorical value never seen in training (geography "Mars") is still served, and counted per
feature: in /metrics (the feature's name as a label, never the value) and in the live drift view
(GET /models/{name}/drift and `modelward drift NAME`)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.monitoring.test_prediction_log import wait_until
from tests.serving.conftest import Server, server_env, start_server
from tests.serving.test_predict_api import ROW

PREDICT = "/models/churn/predict"


def unseen_metric(server: Server, feature: str) -> float:
    with server.client() as c:
        text = c.get("/metrics").text
    wanted = {"model": "churn", "version": "1", "feature": feature}
    for labels, value in re.findall(r"^modelward_unseen_category_total\{(.*)\} (\S+)$", text, re.MULTILINE):
        if dict(re.findall(r'(\w+)="([^"]*)"', labels)) == wanted:
            return float(value)
    return 0.0


def drift_features(server: Server) -> dict[str, Any]:
    with server.client() as c:
        body = c.get("/models/churn/drift", params={"window": "1h", "arm": "primary"}).json()
    if body["drift"] is None:
        return {}
    return {f["feature"]: f for f in body["drift"]["features"]}


def unseen_in_view(server: Server, feature: str) -> int:
    found = drift_features(server).get(feature)
    return int(found["unseen"] or 0) if found else 0


def test_unseen_categories_are_counted_in_metrics_and_in_the_drift_view(home: Path) -> None:
    env = server_env(home, MODELWARD_PROFILE_BUCKET_SECONDS="1")
    server = start_server(home, "churn", "--reload-interval", "0", env=env)
    try:
        before = unseen_in_view(server, "geography")  # the copied home may hold other servers' rows
        with server.client() as c:
            for geography in ("Mars", "Mars", "Venus", "Germany"):
                r = c.post(PREDICT, json={"features": {**ROW, "geography": geography}})
                assert r.status_code == 200, r.text
            rows = [{**ROW, "geography": g} for g in ("Mars", "Spain", "Mars")]
            assert c.post(PREDICT, json={"instances": rows}).status_code == 200

        wait_until(lambda: unseen_metric(server, "geography") == 5, timeout=30)
        assert unseen_metric(server, "gender") == 0
        with server.client() as c:
            metrics = c.get("/metrics").text
        assert "Mars" not in metrics and "Venus" not in metrics  # values never become labels
        unseen_lines = [
            ln for ln in metrics.splitlines() if ln.startswith("modelward_unseen_category_total{")
        ]
        assert unseen_lines and not [
            ln for ln in unseen_lines if 'feature="age"' in ln
        ]  # numeric: no categories

        wait_until(lambda: unseen_in_view(server, "geography") == before + 5, timeout=30)
        features = drift_features(server)
        assert features["gender"]["unseen"] == 0
        assert features["age"]["unseen"] is None
    finally:
        server.stop()

    drift = ["drift", "churn", "--window", "1h", "--arm", "primary"]
    line = next(x for x in modelward(home, *drift).splitlines() if x.startswith("unseen in training:"))
    assert f"geography {before + 5} of " in line and "gender" not in line
    report = json.loads(modelward(home, *drift, "--json"))
    features = {f["feature"]: f for f in report["drift"]["features"]}
    assert features["geography"]["unseen"] == before + 5


def modelward(home: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "modelward", *args],
        env=server_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
