"""``GET /models/{name}/drift`` on a real server: live profiles in the store become a drift report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from modelward.config import Settings
from modelward.monitoring.live_profiles import LiveProfiler
from modelward.registry import Registry
from tests.serving.conftest import start_server


def write_live_rows(home: Path, frame: pd.DataFrame, version: str) -> None:
    settings = Settings(home=home, tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    with Registry.from_settings(settings).open() as registry:
        from modelward.monitoring.live_drift import load_reference

        reference = load_reference(registry, "churn", version)
        profiler = LiveProfiler(registry.store, writer="test:1")
        columns = {
            name: frame[name].to_numpy(dtype=object if name in ("geography", "gender") else np.float64)
            for name in frame.columns
        }
        labels = np.zeros(len(frame), dtype=object)
        probabilities = np.tile([0.8, 0.2], (len(frame), 1))
        profiler.observe(
            "churn", version, "stable", reference, columns, labels=labels, probabilities=probabilities
        )
        assert profiler.close() == 1


def test_drift_route_answers_reports_no_traffic_and_problems(home: Path, churn_frame: pd.DataFrame) -> None:
    server = start_server(home, "churn", "--reload-interval", "0")
    try:
        with server.client() as client:
            # (the copied home may hold live profiles of other tests' servers: ask for an idle arm)
            empty = client.get("/models/churn/drift", params={"window": "1h", "arm": "idle"})
            assert empty.status_code == 200
            body = empty.json()
            assert (body["status"], body["version"], body["rows"], body["drift"]) == (
                "no_traffic",
                "1",
                0,
                None,
            )

            write_live_rows(home, churn_frame.drop(columns=["churn"]).iloc[:1_500], "1")
            ok = client.get("/models/churn/drift", params={"window": "2h", "arm": "stable"})
            assert ok.status_code == 200
            body = ok.json()
            assert (body["status"], body["version"], body["arm"], body["rows"]) == (
                "ok",
                "1",
                "stable",
                1_500,
            )
            assert body["window"]["seconds"] == 7_200
            features = {f["feature"] for f in body["drift"]["features"]}
            assert {"age", "balance", "geography", "gender"} <= features
            assert not any(f["drifted"] for f in body["drift"]["features"])  # the training rows themselves
            assert body["drift"]["prediction_drift"]  # every prediction 0 at 0.2: not the reference's

            version2 = client.get("/models/churn/drift", params={"version": "2", "arm": "idle"}).json()
            assert (version2["version"], version2["status"]) == ("2", "no_traffic")

            for path, params, status in (
                ("/models/nosuch/drift", {}, 404),
                ("/models/churn/drift", {"version": "99"}, 404),
                ("/models/churn/drift", {"window": "soon"}, 422),
                ("/models/churn/drift", {"window": "-5m"}, 422),
                ("/models/churn/drift", {"windw": "1h"}, 422),
            ):
                r = client.get(path, params=params)
                assert r.status_code == status, (path, params, r.text)
                assert r.headers["content-type"].startswith("application/problem+json")
                assert r.json()["status"] == status
    finally:
        server.stop()
