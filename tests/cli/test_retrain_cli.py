"""`modelward retrain NAME --reason TEXT` runs the policy's action here (or queues it for the
controller with --no-wait) under the same guard and audit as the controller; `modelward retrain
status NAME` shows the history."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from modelward.cli import main
from modelward.config import Settings
from modelward.governance.reports import VersionReports
from modelward.registry import Registry


@pytest.fixture
def churn_named(settings: Settings, tmp_path: Path) -> Registry:
    """A registered model `churn` (no version needed) with a retraining policy running a script that
    fails when the file `fail` exists beside it."""
    registry = Registry.from_settings(settings).open()
    registry.client.create_registered_model("churn")
    train = tmp_path / "train.py"
    train.write_text(
        "import os, pathlib, sys\n"
        "if pathlib.Path(sys.argv[1]).exists():\n    print('no data to train on'); sys.exit(4)\n"
        "print('trained', os.environ['MODELWARD_RETRAIN_MODEL'], os.environ['MODELWARD_RETRAIN_REASON'])\n"
    )
    command = [sys.executable, str(train), str(tmp_path / "fail")]
    VersionReports(registry.store).set_policy(
        "churn", json.dumps({"retrain": {"command": command}}), actor="tester"
    )
    return registry


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, object]:
    code = main(argv)
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def test_retrain_runs_the_action_and_status_shows_the_history(
    churn_named: Registry, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, run = _json(capsys, ["retrain", "churn", "--reason", "labels from March", "--json"])
    assert code == 0 and isinstance(run, dict)
    assert run["status"] == "succeeded" and run["trigger"] == "manual" and run["exit_code"] == 0
    assert "trained churn labels from March" in run["output"]
    (tmp_path / "fail").touch()
    assert main(["retrain", "churn", "--reason", "again"]) == 1
    shown = capsys.readouterr().out
    assert "failed" in shown and "exit code 4" in shown and "no data to train on" in shown
    code, status = _json(capsys, ["retrain", "status", "churn", "--json"])
    assert code == 0 and isinstance(status, dict)
    assert [(r["reason"], r["status"], r["exit_code"]) for r in status["runs"]] == [
        ("again", "failed", 4),
        ("labels from March", "succeeded", 0),
    ]
    assert main(["retrain", "status", "churn"]) == 0
    table = capsys.readouterr().out
    assert "labels from March" in table and "manual" in table and "failed" in table
    actions = [e.action for e in churn_named.audit.events(subject="churn")]
    assert actions.count("retrain_trigger") == 2 and actions.count("retrain_finish") == 2


def test_a_queued_run_blocks_a_second_until_the_controller_takes_it(
    churn_named: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    code, queued = _json(capsys, ["retrain", "churn", "--reason", "first", "--no-wait", "--json"])
    assert code == 0 and isinstance(queued, dict) and queued["status"] == "queued"
    assert main(["retrain", "churn", "--reason", "second"]) == 1
    err = capsys.readouterr().err
    assert f"already in progress (run {queued['id']})" in err


def test_retrain_refuses_a_model_without_policy_and_an_unknown_name(
    churn_named: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    VersionReports(churn_named.store).delete_policy("churn")
    assert main(["retrain", "churn", "--reason", "x"]) == 1
    assert "no retraining action" in capsys.readouterr().err
    assert main(["retrain", "churnn", "--reason", "x"]) == 1
    assert "not registered" in capsys.readouterr().err
    assert main(["retrain", "churn"]) == 1
    assert "--reason" in capsys.readouterr().err
