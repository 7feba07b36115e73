"""Served predictions land in the prediction log; a store that stops taking writes never fails a request."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

from tests.serving.conftest import start_server
from tests.serving.test_metrics_endpoint import samples, value
from tests.serving.test_predict_api import ROW, ROW2


def _settled(url: str, *, timeout: float = 20) -> dict:
    """Metrics once every produced record is written or dropped."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = samples(url)
        produced = value(found, "modelward_prediction_log_produced_total")
        done = value(found, "modelward_prediction_log_written_total") + value(
            found, "modelward_prediction_log_dropped_total"
        )
        if produced == done:
            return found
        time.sleep(0.1)
    raise AssertionError("prediction log counters never settled")


def test_served_predictions_are_logged_with_inputs_outputs_and_ids(home: Path) -> None:
    server = start_server(home, "churn", "--reload-interval", "0")
    try:
        with server.client() as c:
            c.post(
                "/models/churn/predict",
                json={"instances": [ROW, ROW2], "key": "cust-7"},
                headers={"X-Request-ID": "logged"},
            )
        _settled(server.url)
        tail = subprocess.run(
            ["modelward", "predictions", "tail", "churn", "--json"],
            env=server.env,
            capture_output=True,
            text=True,
        )
        assert tail.returncode == 0, tail.stderr
        # the copied home may hold predictions other tests served; ours are the newest
        rows = [json.loads(line) for line in tail.stdout.splitlines()][-2:]
        assert [r["request_id"] for r in rows] == ["logged-0", "logged-1"]
        assert rows[0]["version"] == "1" and rows[0]["routing_key"] == "cust-7"
        assert rows[0]["inputs"]["age"] == ROW["age"] and rows[1]["inputs"]["geography"] == "France"
        assert set(rows[0]["outputs"]["probabilities"]) == {"0", "1"}
        assert rows[0]["latency_ms"] > 0
    finally:
        server.stop()


def test_predictions_keep_succeeding_while_the_store_is_unwritable(home: Path) -> None:
    server = start_server(home, "churn", "--reload-interval", "0")
    try:
        with server.client() as c:
            assert c.post("/models/churn/predict", json={"features": ROW}).status_code == 200
            before = _settled(server.url)
            # Another process takes the database's write lock and keeps it: every write now fails.
            blocker = sqlite3.connect(home / "modelward.db", timeout=1, isolation_level=None)
            blocker.execute("BEGIN EXCLUSIVE")
            try:
                started = time.monotonic()
                statuses = [
                    c.post("/models/churn/predict", json={"features": ROW}).status_code for _ in range(20)
                ]
                elapsed = time.monotonic() - started
                during = _settled(server.url, timeout=30)
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            assert statuses == [200] * 20
            assert elapsed < 10  # a locked store never holds a response for its busy timeout
            dropped = value(during, "modelward_prediction_log_dropped_total") - value(
                before, "modelward_prediction_log_dropped_total"
            )
            assert dropped >= 1
            # once the lock is gone, writing resumes
            assert c.post("/models/churn/predict", json={"features": ROW}).status_code == 200
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                after = _settled(server.url)
                if value(after, "modelward_prediction_log_written_total") > value(
                    during, "modelward_prediction_log_written_total"
                ):
                    break
                time.sleep(0.2)
            else:
                raise AssertionError("writing did not resume")
            produced = value(after, "modelward_prediction_log_produced_total")
            written = value(after, "modelward_prediction_log_written_total")
            assert produced == written + value(after, "modelward_prediction_log_dropped_total")
    finally:
        server.stop()
