"""A new user's first command on a new home prints modelward's answer and nothing of MLflow's set-up
(MLflow creates its database there and, left to itself, logs each step at INFO)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _modelward(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELWARD_", "MLFLOW_"))}
    env["MODELWARD_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "modelward", *argv],
        cwd=home.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_first_command_on_a_new_home_shows_only_its_own_answer(tmp_path: Path) -> None:
    done = _modelward(tmp_path / "home", "versions", "churn")
    assert done.returncode == 1
    assert done.stderr.strip() == "error: model 'churn' is not registered (no model is registered yet)"
    assert (tmp_path / "home").is_dir()  # MLflow's database was made: the set-up ran, quietly


def test_verbose_shows_mlflow_setting_up_its_database(tmp_path: Path) -> None:
    done = _modelward(tmp_path / "home", "--verbose", "versions", "churn")
    assert "Creating initial MLflow database tables" in done.stderr
