"""``MODELWARD_LOG_RETENTION`` in a running server: its controller deletes what is too old, counts it
in metrics and in ``predictions stats``, and serving, exports and feedback go on with what remains."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from sqlalchemy import delete

from modelward.monitoring.log_insert import write_items
from modelward.monitoring.prediction_log import PredictionRecord
from modelward.store import Store
from modelward.store.tables import predictions
from tests.monitoring.test_prediction_log import wait_until
from tests.serving.conftest import server_env, start_server
from tests.serving.test_metrics_endpoint import samples, value
from tests.serving.test_predict_api import ROW

OLD = 300


def test_the_controller_deletes_rows_past_the_age_limit_and_counts_them(home: Path, tmp_path: Path) -> None:
    store = Store(f"sqlite:///{home / 'modelward.db'}").open()
    store.migrate()
    # The copied home holds other tests' rows, newer and with lower ids. Retention walks the log by id
    # from the oldest and stops at the first window that ends on a row within the age limit (a log
    # is written in time order), so old rows written after newer ones would wait: start empty.
    with store.write() as conn:
        conn.execute(delete(predictions))
    two_days_ago = time.time() - 2 * 86_400
    old = [
        PredictionRecord(f"old-{i}", two_days_ago + i, "churn", "1", dict(ROW), {"prediction": 0}, 1.0)
        for i in range(OLD)
    ]
    assert write_items(store, old)[3] is None
    store.close()

    env = server_env(home, MODELWARD_LOG_RETENTION="1d,10GB", MODELWARD_CONTROLLER_INTERVAL="0.3")
    server = start_server(home, "churn", "--reload-interval", "0", env=env)
    try:
        with server.client() as c:
            for i in range(5):
                body = {"features": ROW, "request_id": f"new-{i}"}
                assert c.post("/models/churn/predict", json=body).status_code == 200

            def deleted() -> float:
                found = samples(server.url)
                return value(found, "modelward_prediction_log_retention_deleted_total", reason="age")

            wait_until(lambda: deleted() == OLD, timeout=60)
            # the size the next pass measures once the new rows are written (the pass that deleted the
            # old ones may have run before the log's writer flushed them, and measured an empty log)
            wait_until(
                lambda: value(samples(server.url), "modelward_prediction_log_size_bytes") > 0, timeout=30
            )
            # a label for a purged prediction is an orphan, not an error
            r = c.post("/feedback", json={"request_id": "old-0", "label": 1})
            assert r.status_code == 200, r.text
            assert r.json()["orphans"] == 1

        def stats() -> dict:
            done = subprocess.run(
                ["modelward", "predictions", "stats", "--json"], env=env, capture_output=True, text=True
            )
            assert done.returncode == 0, done.stderr
            return dict(json.loads(done.stdout))

        wait_until(lambda: stats()["log"]["rows"] >= 5, timeout=30)  # the new rows are written
        summary = stats()
        assert summary["retention"]["deleted"] == {"age": OLD, "size": 0}
        assert summary["retention"]["policy"] == "1d,10GB"
        assert summary["log"]["size"]["bytes"] > 0 and summary["log"]["size"]["auto_vacuum"] == "incremental"
        out = tmp_path / "left.csv"
        done = subprocess.run(
            ["modelward", "predictions", "export", "churn", "-o", str(out), "--json"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        exported = json.loads(done.stdout)["rows"]
        assert exported >= 5 and "old-" not in out.read_text()
    finally:
        server.stop()
