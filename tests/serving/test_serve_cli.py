"""`modelward serve` refuses unsafe or impossible set-ups with one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.serving.conftest import server_env


def _serve(home: Path, *args: str, drop_admin: bool = False) -> subprocess.CompletedProcess[str]:
    env = server_env(home)
    if drop_admin:
        del env["MODELWARD_ADMIN_TOKEN"]
    return subprocess.run(
        [sys.executable, "-m", "modelward", "serve", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_non_loopback_bind_without_admin_token_is_refused(churn_home: Path) -> None:
    proc = _serve(churn_home, "churn", "--host", "0.0.0.0", "--port", "0", drop_admin=True)
    assert proc.returncode == 1
    assert "refusing to bind 0.0.0.0 without an admin token" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_model_is_refused_before_binding(churn_home: Path) -> None:
    proc = _serve(churn_home, "nope", "--port", "0")
    assert proc.returncode == 1
    assert "model 'nope' is not registered" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_log_level_is_refused(churn_home: Path) -> None:
    proc = _serve(churn_home, "churn", "--log-level", "loud")
    assert proc.returncode == 1 and "--log-level" in proc.stderr
