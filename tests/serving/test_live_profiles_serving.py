"""Every served row is counted in the live profiles the server writes, per version and arm, and a
window of them is the drift report `modelward drift NAME --window` gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from modelward.store import Store, live_profiles
from tests.serving.conftest import server_env, start_server
from tests.serving.test_predict_api import ROW


def test_served_rows_land_in_live_profiles_and_in_the_drift_report(home: Path) -> None:
    server = start_server(home, "churn", "--reload-interval", "0")
    try:
        with server.client() as c:
            for i in range(30):
                assert (
                    c.post("/models/churn/predict", json={"features": {**ROW, "age": 20 + i}}).status_code
                    == 200
                )
            rows = [{**ROW, "age": 60 + i} for i in range(20)]
            assert c.post("/models/churn/predict", json={"instances": rows}).status_code == 200
    finally:
        server.stop()  # the last bucket is written at shutdown
    with Store(f"sqlite:///{home / 'modelward.db'}") as store, store.read() as conn:
        counted = conn.execute(
            select(func.sum(live_profiles.c.rows)).where(
                live_profiles.c.model == "churn",
                live_profiles.c.version == "1",
                live_profiles.c.arm == "primary",
            )
        ).scalar()
    # The copied home may hold earlier servers' rows, from as long ago as the session's start: the
    # report's window (7 days) takes them all in, however slow the run.
    assert counted is not None and counted >= 50
    done = subprocess.run(
        [sys.executable, "-m", "modelward", "drift", "churn", "--window", "7d", "--arm", "primary", "--json"],
        env=server_env(home),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rows"] == counted and report["version"] == "1"
    age = next(f for f in report["drift"]["features"] if f["feature"] == "age")
    assert age["n_current"] == counted
