"""`modelward quickstart` end to end at its smoke size: a real server in the background, drift and an
AUC drop detected by the server's own monitor, v2 retrained, gated, canaried and promoted by the
server's controller; the audit chain verifies afterwards and holds every step."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelward.cli import main
from modelward.quickstart import STEPS


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, mlflow_db_template: Path) -> Iterator[Path]:
    """A fresh home, in the environment of this module's commands (and of the server they start)."""
    home = tmp_path_factory.mktemp("quickstart") / "home"
    home.mkdir()
    shutil.copyfile(mlflow_db_template, home / "mlflow.db")
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(("MODELWARD_", "MLFLOW_")):
                mp.delenv(key)
        mp.setenv("MODELWARD_HOME", str(home))
        mp.setenv("MODELWARD_ACTOR", "tester")
        mp.setenv("MODELWARD_QUICKSTART_SIZE", "smoke")
        mp.setenv(
            "MODELWARD_COMPILE", "false"
        )  # ONNX compilation is tested elsewhere; here it is start-up time
        yield home


@pytest.fixture(scope="module")
def summary(home: Path) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["quickstart", "--port", "0", "--json"])
    assert code == 0, out.getvalue()[-4000:]
    parsed: dict[str, Any] = json.loads(out.getvalue())
    return parsed


def test_the_smoke_run_shows_every_step_of_the_loop(summary: dict[str, Any]) -> None:
    assert summary["size"] == "smoke"
    assert summary["checks"] == {
        "drift_detected": True,
        "performance_drop_detected": True,
        "v2_registered": True,
        "gates_passed": True,
        "canary_steps": True,
        "v2_promoted": True,
        "audit_verified": True,
    }
    assert summary["versions"] == {"v1": "1", "v2": "2"}
    steps = summary["steps"]
    assert set(steps) == set(STEPS)
    assert steps["drift_detected"]["rule"] == "quickstart-drift"
    assert steps["performance_drop"]["value"] < 0.65 < steps["labels"]["live_auc"]
    assert steps["gates"]["gates"]["regression"] == "pass"
    assert steps["canary"]["steps"][0] == 25.0
    assert steps["promoted"]["served"] == {"2": 20}
    assert "canary passed every step" in steps["promoted"]["reason"]


def test_the_reports_are_written_under_the_home_and_the_server_is_stopped(
    summary: dict[str, Any], home: Path
) -> None:
    for key in ("drift_report", "model_card"):
        path = Path(summary["paths"][key])
        assert path.resolve().is_relative_to(home.resolve())
        assert path.read_text().lstrip().lower().startswith("<!doctype html")
    port = int(summary["urls"]["api"].rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    with pytest.raises(ProcessLookupError):
        os.kill(summary["steps"]["serve"]["pid"], 0)


def test_audit_verify_passes_and_the_log_holds_every_step(
    summary: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "verify"]) == 0
    capsys.readouterr()
    assert main(["audit", "log", "--json", "--limit", "500"]) == 0
    events = json.loads(capsys.readouterr().out)
    steps = [e["payload"]["step"] for e in events if e["action"] == "quickstart"]
    assert steps == list(summary["steps"])
    actions = {e["action"] for e in events}
    assert {
        "register",
        "promote",
        "policy_set",
        "retrain_trigger",
        "retrain_finish",
        "rollout_claimed",
        "rollout_canary",
        "canary_promote",
    } <= actions


def test_a_second_run_in_the_same_home_says_to_pick_another_name(
    summary: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["quickstart", "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "already has a model 'churn'" in err
    assert "--name" in err


def test_a_busy_port_is_refused_before_anything_is_trained(
    summary: dict[str, Any], home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["quickstart", "--name", "other", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is busy" in err
    assert "--port" in err
    assert not (home / "quickstart" / "other").exists()
