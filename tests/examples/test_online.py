"""examples/online: a River model served through an MLflow pyfunc meets a concept drift. The server's
controller sees live accuracy fall, runs the update job (``learn_one`` on each labelled request,
joined by request id), the update passes the gates before it is registered and is rolled out by
canary, and live accuracy recovers. An update trained on corrupted labels fails the gates and is never
registered."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.serving.conftest import Server, server_env, start_server

pytest.importorskip("river")

# The set-up trains, registers and starts a server: minutes on a loaded machine.
pytestmark = pytest.mark.timeout(900)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "online"
BEFORE = 6  # batches before the drift


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _json(env: dict[str, str], *args: str) -> Any:
    return json.loads(_run(env, "-m", "modelward", *args, "--json").stdout)


@pytest.fixture(scope="module")
def online(tmp_path_factory: pytest.TempPathFactory, mlflow_db_template: Path) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("online-home")
    shutil.copyfile(mlflow_db_template, home / "mlflow.db")
    data = home / "data"
    env = server_env(
        home,
        MODELWARD_CONTROLLER="true",
        MODELWARD_CONTROLLER_INTERVAL="0.5",
        MODELWARD_MONITOR_INTERVAL="1",
        MODELWARD_RELOAD_INTERVAL="1",
    )
    fast = ["--window", "10s", "--cooldown", "10m", "--steps", "50", "--step-duration", "1s"]
    trained = _run(env, str(EXAMPLE / "train.py"), "--data-dir", str(data), "--min-labels", "40", *fast)
    assert "registered online:1 as champion" in trained.stdout
    server = start_server(home, "online", env=env, timeout=300)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def batches(online: Server) -> list[dict[str, Any]]:
    args = ["--before", str(BEFORE), "--batch", "40", "--interval", "0.3", "--max-after", "300", "--json"]
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE / "traffic.py"), online.url, *args],
        env=online.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    why = f"{proc.stdout[-1500:]}{proc.stderr[-1500:]}\nupdate runs: {_update_runs(online)}"
    assert proc.returncode == 0, why
    report = json.loads(proc.stdout)
    assert report["recovered"] is True, why
    return list(report["batches"])


def _update_runs(server: Server) -> list[tuple[str, str | None]]:
    """Each retraining run's status and the end of its output (update.py's summary): why an update
    was not registered, when the test fails."""
    from modelward.config import Settings
    from modelward.control.retrain_runs import RetrainRuns
    from modelward.store import Store

    store = Store(Settings(home=server.home).resolved_database_url).open()
    try:
        return [(r.status, (r.output or "")[-800:]) for r in RetrainRuns(store).history("online")]
    finally:
        store.close()


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_live_accuracy_falls_with_the_concept_drift_and_recovers_after_the_update(
    batches: list[dict[str, Any]],
) -> None:
    before, after = batches[:BEFORE], batches[BEFORE:]
    assert all(b["concept"] == 0 for b in before) and all(b["concept"] == 1 for b in after)
    assert all(b["versions"].keys() == {"1"} for b in before)
    assert _mean([b["accuracy"] for b in before]) >= 0.9

    fallen = after[:3]  # the old model on the new rule: about a coin toss
    assert all(b["versions"].keys() == {"1"} for b in fallen)
    assert _mean([b["accuracy"] for b in fallen]) <= 0.7

    recovered = after[-5:]
    assert all(int(v) >= 2 for b in recovered for v in b["versions"])
    assert _mean([b["accuracy"] for b in recovered]) >= 0.9
    canary = [b for b in after if len(b["versions"]) == 2]  # both versions answered: the canary's split
    assert canary and all(b["versions"].keys() == {"1", "2"} for b in canary)


def test_the_update_learned_the_labelled_requests_and_passed_its_gates_before_its_canary(
    online: Server, batches: list[dict[str, Any]]
) -> None:
    runs = _json(online.env, "retrain", "status", "online")["runs"]
    first = runs[-1]
    assert (first["trigger"], first["status"]) == ("performance", "succeeded")
    assert first["figures"]["metric"] == "accuracy" and first["figures"]["value"] < 0.8
    exported = first["detail"]["export_rows"]

    versions = {v["version"]: v for v in _json(online.env, "versions", "online")}
    # update.py ran the gates on the logged model before it registered it (one check, passed)
    audited = _json(online.env, "audit", "log", "--model", "online", "--action", "validate_model")
    checked = [(e["payload"]["model_uri"], e["payload"]["verdict"], e["payload"]["against"]) for e in audited]
    assert checked[0] == (f"runs:/{versions['2']['run_id']}/model", "pass", "1")
    register = _json(online.env, "audit", "log", "--model", "online", "--action", "register")
    assert audited[0]["seq"] < next(e["seq"] for e in register if e["subject"] == "online:2")
    tags = versions["2"]["tags"]
    assert versions["2"]["aliases"] == ["champion"]
    assert tags["online.base_version"] == "1"
    learned_now, held = int(tags["online.learned_now"]), int(tags["online.holdout_rows"])
    assert learned_now + held == exported  # every labelled request after v1: learned, or the holdout
    assert int(tags["online.learned_rows"]) == 1000 + learned_now  # the first 1,000 events, then these

    rollouts = {r["version"]: r for r in _json(online.env, "rollout", "status", "online")["rollouts"]}
    assert rollouts["2"]["status"] == "promoted"
    gates = {g["name"]: g for g in rollouts["2"]["detail"]["validation"]["gates"]}
    assert gates["metric:accuracy"]["verdict"] == gates["regression"]["verdict"] == "pass"
    # on the newest labelled requests, which neither version learned: the update against the champion
    assert gates["regression"]["value"] >= 0.85
    assert gates["regression"]["threshold"] < 0.7  # the champion's accuracy less the margin


def test_the_update_takes_the_rows_after_what_the_champion_learned_oldest_first() -> None:
    spec = importlib.util.spec_from_file_location("online_update", EXAMPLE / "update.py")
    assert spec is not None and spec.loader is not None
    update = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(update)
    ts = pd.to_datetime(["2026-01-01T00:00:03Z", "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z"])
    export = pd.DataFrame(
        {
            "request_id": ["c", "a", "b"],
            "ts": ts,
            "input.x1": [3.0, 1.0, 2.0],
            "input.x2": [0.0, 0.0, 0.0],
            "input.x3": [0.0, 0.0, 0.0],
            "label": [1.0, 0.0, 1.0],
        }
    )
    rows = update.new_rows(export, ("x1", "x2", "x3"), "2026-01-01T00:00:01+00:00")
    assert rows["x1"].tolist() == [2.0, 3.0]
    assert rows["label"].tolist() == [1, 1]
    with pytest.raises(SystemExit, match=r"no column input\.x3"):
        update.new_rows(export.drop(columns=["input.x3"]), ("x1", "x2", "x3"), None)


def test_an_update_that_fails_the_gates_is_reported_and_never_registered(
    online: Server, batches: list[dict[str, Any]], tmp_path: Path
) -> None:
    spec = importlib.util.spec_from_file_location("online_stream", EXAMPLE / "stream.py")
    assert spec is not None and spec.loader is not None
    stream = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stream)
    rows = stream.events(200, concept=1, seed=99)
    truth = rows["label"].to_numpy()
    corrupted = truth.copy()
    corrupted[:160] = 1 - truth[:160]  # learned with every label wrong; the newest 40 (the holdout) right
    start = pd.Timestamp.now(tz="UTC")  # after anything the champion learned
    export = pd.DataFrame(
        {
            "request_id": [f"bad-{i:03d}" for i in range(len(rows))],
            "ts": [start + pd.Timedelta(seconds=i) for i in range(len(rows))],
            **{f"input.{f}": rows[f] for f in ("x1", "x2", "x3")},
            "label": corrupted.astype("float64"),
        }
    )
    export.to_parquet(tmp_path / "labelled.parquet", index=False)
    before = {v["version"] for v in _json(online.env, "versions", "online")}
    proc = _run(
        online.env,
        str(EXAMPLE / "update.py"),
        "--export",
        str(tmp_path / "labelled.parquet"),
        "--holdout",
        str(tmp_path / "holdout.parquet"),
        "--reference",
        str(online.home / "data" / "reference.parquet"),
    )
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (summary["learned"], summary["holdout_rows"]) == (160, 40)
    assert summary["holdout_accuracy_after"] < 0.5
    assert (summary["gates"], summary["registered"]) == ("fail", None)
    assert {"metric:accuracy", "regression"} <= set(summary["failing"])
    assert {v["version"] for v in _json(online.env, "versions", "online")} == before
    audited = _json(online.env, "audit", "log", "--model", "online", "--action", "validate_model")
    assert (audited[-1]["payload"]["model_uri"], audited[-1]["payload"]["verdict"]) == (
        summary["model_uri"],
        "fail",
    )
