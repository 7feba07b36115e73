"""Requests whose values the store cannot hold as text never cost the log other requests' rows."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.monitoring.test_prediction_log import wait_until
from tests.serving.conftest import server_env, start_server
from tests.serving.test_metrics_endpoint import samples, value
from tests.serving.test_predict_api import ROW


@pytest.mark.parametrize("process", ["true", "false"])
def test_a_lone_surrogate_routing_key_costs_no_other_request_its_log_row(home: Path, process: str) -> None:
    env = server_env(home, MODELWARD_LOG_PROCESS=process)
    server = start_server(home, "churn", "--reload-interval", "0", env=env)
    features = json.dumps(ROW)
    good: list[str] = []
    answered_bad = 0
    try:
        with server.client() as c:
            for i in range(60):
                if i % 4 == 3:
                    # json.dumps escapes the lone surrogate as \ud800, which JSON allows
                    body = f'{{"features": {features}, "key": "\\ud800", "request_id": "bad-{i}"}}'
                else:
                    body = f'{{"features": {features}, "key": "k", "request_id": "good-{i}"}}'
                    good.append(f"good-{i}")
                r = c.post(
                    "/models/churn/predict", content=body, headers={"Content-Type": "application/json"}
                )
                assert r.status_code in (200, 400, 422), r.text
                answered_bad += r.status_code == 200 and i % 4 == 3

        def settled() -> bool:  # every answered row handed to the log, and written or dropped
            found = samples(server.url)
            produced = value(found, "modelward_prediction_log_produced_total")
            done = value(found, "modelward_prediction_log_written_total") + value(
                found, "modelward_prediction_log_dropped_total"
            )
            return produced >= len(good) + answered_bad and produced == done

        wait_until(settled, timeout=30)
        found = samples(server.url)
        with sqlite3.connect(home / "modelward.db") as db:
            logged = {row[0] for row in db.execute("SELECT request_id FROM modelward_predictions")}
        assert set(good) <= logged, f"{len(set(good) - logged)} of {len(good)} good rows missing"
        # the poisoned rows that were answered are logged with their key escaped, and counted
        assert value(found, "modelward_prediction_log_repaired_total") == answered_bad
        assert value(found, "modelward_prediction_log_dropped_total") == 0
    finally:
        server.stop()
