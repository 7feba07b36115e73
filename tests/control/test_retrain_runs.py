"""Retraining runs: the command gets the run's facts and a fresh labelled export, its output and exit
status are recorded, audited, notified and counted; a failing command is retried only after the
cool-down; a run in progress is never started twice; a command past its timeout is stopped; a run
whose holder went silent is closed."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from modelward.config import Settings
from modelward.errors import LifecycleError
from modelward.registry import Registry
from tests.control.retrain_fixtures import (
    hook,
    light,
    retrainer_for,
    script,
    serve_labelled,
    set_policy,
    task_for,
)
from tests.control.webhook_receiver import Receiver

__all__ = ["hook", "light"]  # fixtures: imported so that pytest finds them

T0 = 1_900_000_000.0

FACTS = """
import json, os, sys
facts = {k: v for k, v in os.environ.items() if k.startswith(("MODELWARD_", "MLFLOW_"))}
facts["export_exists"] = os.path.isfile(os.environ["MODELWARD_RETRAIN_EXPORT"])
facts["argv"] = sys.argv[2:]
json.dump(facts, open(sys.argv[1], "w"))
print("trained on", os.environ["MODELWARD_RETRAIN_EXPORT_ROWS"], "rows")
"""

FAIL = """
import sys
print("loading data", flush=True)
print("boom: no data", file=sys.stderr)
sys.exit(3)
"""


def test_the_command_gets_the_facts_and_a_fresh_labelled_export(
    light: tuple[Registry, Settings], hook: Receiver, tmp_path: Path
) -> None:
    registry, settings = light
    serve_labelled(registry, T0, 40)
    out = tmp_path / "facts.json"
    command = script(tmp_path / "train.py", FACTS)
    argv = f'{command} {out} --data "$MODELWARD_RETRAIN_EXPORT" --run ${{MODELWARD_RETRAIN_RUN_ID}} $HOME'
    set_policy(registry, json.dumps({"retrain": {"command": argv, "cwd": str(tmp_path)}}))
    retrainer = retrainer_for(registry, settings, hook)
    run = retrainer.execute(retrainer.request("churn", "new labels arrived", now=T0 + 100))
    assert run.status == "succeeded" and run.exit_code == 0
    assert run.output is not None and "trained on 40 rows" in run.output
    facts = json.loads(out.read_text())
    assert facts["MODELWARD_RETRAIN_MODEL"] == "churn"
    assert facts["MODELWARD_RETRAIN_REASON"] == "new labels arrived"
    assert facts["MODELWARD_RETRAIN_TRIGGER"] == "manual"
    assert facts["MODELWARD_RETRAIN_RUN_ID"] == str(run.id)
    assert json.loads(facts["MODELWARD_RETRAIN_FIGURES"]) == {"actor": "controller:test"}
    assert facts["MODELWARD_DATABASE_URL"] == settings.resolved_database_url
    assert facts["MLFLOW_TRACKING_URI"] == settings.resolved_tracking_uri
    assert facts["MODELWARD_HOME"] == str(settings.home) and facts["export_exists"] is True
    assert facts["argv"] == ["--data", facts["MODELWARD_RETRAIN_EXPORT"], "--run", str(run.id), "$HOME"]
    export = pq.read_table(facts["MODELWARD_RETRAIN_EXPORT"])
    assert export.num_rows == 40 and {"label", "input.age", "input.geography"} <= set(export.column_names)
    assert run.detail["export_rows"] == 40 and run.duration is not None and run.duration > 0
    actions = [(e.action, e.payload.get("status")) for e in registry.audit.events(subject="churn")]
    assert actions == [("retrain_trigger", "running"), ("retrain_finish", "succeeded")]
    assert [p["modelward"]["rule"] for p in hook.posts] == ["retrain_triggered", "retrain_finished"]
    metrics = retrainer.metrics.registry
    labels = {"model": "churn", "trigger": "manual", "outcome": "succeeded"}
    assert metrics.get_sample_value("modelward_retrain_runs_total", labels) == 1
    assert metrics.get_sample_value("modelward_retrain_in_progress", {"model": "churn"}) == 0


def test_a_failing_command_is_reported_audited_and_retried_only_after_the_cooldown(
    light: tuple[Registry, Settings], hook: Receiver, tmp_path: Path
) -> None:
    registry, settings = light
    command = script(tmp_path / "train.py", FAIL)
    set_at = set_policy(
        registry, json.dumps({"retrain": {"schedule": "*/5 * * * *", "cooldown": "1h", "command": command}})
    )
    task = task_for(retrainer_for(registry, settings, hook))
    start = (int(set_at) // 300 + 1) * 300.0 + 10  # just past a due time
    (first,) = task.run(start)["started"]
    assert task.join(30)
    (run,) = task.retrainer.runs.history("churn")
    assert (run.status, run.exit_code) == ("failed", 3)
    assert run.output is not None and "loading data" in run.output and "boom: no data" in run.output
    assert run.detail["error"] == "exited with status 3"
    finish = registry.audit.events(subject="churn", action="retrain_finish")[-1]
    assert finish.payload["status"] == "failed" and finish.payload["exit_code"] == 3
    notified = hook.posts[-1]["modelward"]
    assert notified["rule"] == "retrain_finished" and notified["severity"] == "critical"
    assert "failed" in notified["message"] and "exited with status 3" in notified["message"]
    for later in (start + 300, start + 1800, start + 3590):  # due again, but within the cool-down
        assert task.run(later)["started"] == []
    (retry,) = task.run(start + 3600 + 300)["started"]
    assert retry["trigger"] == "schedule" and retry["run_id"] != first["run_id"]
    assert task.join(30)
    assert [r.status for r in task.retrainer.runs.history("churn")] == ["failed", "failed"]


def test_a_run_in_progress_is_never_started_twice(light: tuple[Registry, Settings]) -> None:
    registry, settings = light
    set_policy(registry, "retrain: {schedule: '* * * * *', cooldown: 1s, command: python -c pass}")
    retrainer = retrainer_for(registry, settings)
    first = retrainer.request("churn", "by hand", now=T0)
    with pytest.raises(LifecycleError, match=rf"already in progress \(run {first.id}\)"):
        retrainer.request("churn", "again", now=T0 + 1)
    task = task_for(retrainer, background=False)
    assert task.run(T0 + 120)["held"] == {"churn": "schedule"}
    retrainer.execute(first)
    (started,) = task.run(T0 + 240)["started"]
    assert started["trigger"] == "schedule"


def test_a_command_past_its_timeout_is_stopped(light: tuple[Registry, Settings], tmp_path: Path) -> None:
    registry, settings = light
    command = script(tmp_path / "slow.py", "import time\nprint('started', flush=True)\ntime.sleep(120)\n")
    set_policy(registry, json.dumps({"retrain": {"timeout": "1s", "command": command}}))
    retrainer = retrainer_for(registry, settings)
    run = retrainer.execute(retrainer.request("churn", "slow", now=T0))
    assert run.status == "timed_out" and run.exit_code is None
    assert run.output is not None and "started" in run.output
    assert "timeout of 1 s" in run.detail["error"]


def test_a_run_whose_holder_went_silent_is_closed_after_its_timeout(light: tuple[Registry, Settings]) -> None:
    registry, settings = light
    set_policy(registry, "retrain: {timeout: 10m, command: python -c pass}")
    other = retrainer_for(registry, settings, actor="controller:gone")
    stale = other.request("churn", "started elsewhere", now=T0)
    task = task_for(retrainer_for(registry, settings))
    assert task.run(T0 + 600)["closed"] == []  # within its timeout: still its holder's
    assert task.run(T0 + 600 + 301)["closed"] == [stale.id]
    (run,) = task.retrainer.runs.history("churn")
    assert run.status == "timed_out" and "went silent" in run.detail["error"]
    assert task.retrainer.runs.in_progress("churn") == []
