"""The start-up benchmark harness, once through on a registered churn: every command and the serve
probe run and the results file holds a median and a ratio for each. It measures nothing worth
publishing; docs/benchmarks.md ("Start-up") says how to run it properly."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from tests.benchmarks.harness import run_benchmark

from modelward.config import Settings
from modelward.registry import Registry, register_model


def test_startup_benchmark_runs_every_command_and_serve_once(
    settings: Settings, registry: Registry, churn_models: dict, churn_frame: pd.DataFrame, tmp_path: Path
) -> None:
    register_model(registry, churn_models["logreg"], "churn", train_data=churn_frame, target="churn")
    registry.promote("churn", 1)
    out = tmp_path / "startup.json"
    argv = ["--home", str(settings.home), "--rounds", "1", "--warmup", "0", "--serve-rounds", "1"]
    done = run_benchmark("startup.py", *argv, "--out", str(out))
    assert "| `modelward versions churn` |" in done.stdout
    results = json.loads(out.read_text())
    rows = {row["command"]: row for row in results["commands"]}
    assert rows["modelward versions churn"]["floor"] == "mlflow search_model_versions"
    assert rows["modelward versions churn"]["ratio"] > 0
    assert rows["modelward audit verify"]["target"] == "< 0.5 s"
    assert {row["runs"] for row in rows.values()} == {1}
    assert 0 < results["serve"]["port_open_s"] <= results["serve"]["ready_s"]
