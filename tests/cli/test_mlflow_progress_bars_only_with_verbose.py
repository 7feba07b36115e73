"""MLflow's "Downloading artifacts" progress bars print only with -v (or when the user asks MLflow)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import sys
from modelward.cli.app import _quiet_third_parties
_quiet_third_parties(sys.argv[1] == "verbose")
from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR as bar
print(bar.get())
"""


def _bars(mode: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env={**base, **env}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.mark.parametrize(
    ("mode", "env", "shown"),
    [
        ("quiet", {}, "False"),
        ("verbose", {}, "True"),
        ("quiet", {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "true"}, "True"),
    ],
    ids=["default", "verbose", "asked-for"],
)
def test_progress_bars_show_only_when_asked(mode: str, env: dict[str, str], shown: str) -> None:
    assert _bars(mode, **env) == shown
