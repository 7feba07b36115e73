"""The README's first command: the example trains, registers two versions and lists them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelward.config import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_training_script_registers_two_versions_as_champion_and_challenger(
    settings: Settings, tmp_path: Path
) -> None:
    env = dict(os.environ)
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "churn" / "train.py"),
            "--rows",
            "3000",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "registered churn:1" in proc.stdout
    assert "registered churn:2" in proc.stdout
    assert "Warning" not in proc.stderr  # MLflow's advice stays out of the user's way
    listed = subprocess.run(
        ["modelward", "versions", "churn", "--json"], capture_output=True, text=True, env=env, check=True
    )
    rows = json.loads(listed.stdout)
    assert [(r["version"], r["aliases"]) for r in rows] == [("1", ["champion"]), ("2", ["challenger"])]
    assert rows[0]["model_class"] == "sklearn.pipeline.Pipeline"
    assert rows[0]["tags"]["modelward.dataset.path"].endswith("churn_train.parquet")
