"""An empty (or blank) MODELWARD_ADMIN_TOKEN / MODELWARD_PREDICT_TOKEN is a mistake, refused at start.

Unrefused, an empty admin token passed the non-loopback bind guard, and an empty predict token
opened the prediction routes. The real CLI runs in a real process; a server that starts anyway is
killed by the timeout and the test fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from modelward.config import Settings

# A guard against a server that starts despite the bad token, not a performance bound.
_HANG_GUARD_S = 120


def _modelward(home: Path, env_update: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELWARD_", "MLFLOW_"))}
    env.update({"MODELWARD_HOME": str(home), **env_update})
    return subprocess.run(
        [sys.executable, "-m", "modelward", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=_HANG_GUARD_S,
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
@pytest.mark.parametrize(
    ("variable", "value"),
    [("MODELWARD_ADMIN_TOKEN", ""), ("MODELWARD_PREDICT_TOKEN", ""), ("MODELWARD_ADMIN_TOKEN", "  \t")],
)
def test_serve_with_an_empty_token_exits_with_a_message(
    tmp_path: Path, host: str, variable: str, value: str
) -> None:
    env = {variable: value}
    if variable == "MODELWARD_PREDICT_TOKEN":
        env["MODELWARD_ADMIN_TOKEN"] = "an-admin-token"  # so only the predict token is at fault
    proc = _modelward(tmp_path / "home", env, "serve", "--host", host, "--port", "0")
    assert proc.returncode == 1, proc.stderr
    assert f"{variable} is set but empty" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_controller_with_an_empty_token_exits_with_a_message(tmp_path: Path) -> None:
    proc = _modelward(tmp_path / "home", {"MODELWARD_PREDICT_TOKEN": ""}, "controller", "--once")
    assert proc.returncode == 1, proc.stderr
    assert "MODELWARD_PREDICT_TOKEN is set but empty" in proc.stderr


@pytest.mark.parametrize("field", ["admin_token", "predict_token"])
def test_settings_refuse_an_empty_token(field: str) -> None:
    with pytest.raises(ValidationError, match="set but empty"):
        Settings(**{field: " "})  # type: ignore[arg-type]


def test_settings_accept_a_real_token_and_no_token() -> None:
    assert Settings(admin_token="s3cret").admin_token is not None  # type: ignore[arg-type]
    assert Settings().predict_token is None
