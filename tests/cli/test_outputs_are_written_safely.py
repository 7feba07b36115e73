"""The files the CLI writes (drift HTML reports, prediction exports) never go through a symbolic link,
and ``~`` in a quoted path means the home folder. The real CLI, in a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelward.config import Settings
from modelward.store import Store
from modelward.store.tables import predictions


def _modelward(cwd: Path, *argv: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "modelward", *argv], capture_output=True, text=True, env=env, cwd=cwd
    )


@pytest.fixture
def two_files(tmp_path: Path, settings: Settings) -> tuple[Path, Path]:
    rng = np.random.default_rng(4)
    reference, current = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    pd.DataFrame({"a": rng.normal(0, 1, 2_000)}).to_parquet(reference)
    pd.DataFrame({"a": rng.normal(0.5, 1, 1_000)}).to_parquet(current)
    return reference, current


def test_drift_html_refuses_an_existing_symlink_and_leaves_its_target_alone(
    tmp_path: Path, two_files: tuple[Path, Path]
) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    link = tmp_path / "report.html"
    link.symlink_to(precious)
    reference, current = two_files
    proc = _modelward(
        tmp_path, "drift", "--reference", str(reference), "--current", str(current), "--html", str(link)
    )
    assert proc.returncode == 1
    assert "symbolic link" in proc.stderr and str(link) in proc.stderr
    assert precious.read_text() == "keep me"
    assert link.is_symlink()
    assert not list(tmp_path.glob(".*.partial"))


def test_drift_html_expands_a_quoted_tilde(tmp_path: Path, two_files: tuple[Path, Path]) -> None:
    user_home = tmp_path / "user"
    user_home.mkdir()
    reference, current = two_files
    argv = ("drift", "--reference", str(reference), "--current", str(current), "--html", "~/drift.html")
    proc = _modelward(tmp_path, *argv, home=user_home)
    assert proc.returncode == 0, proc.stderr
    assert "Drift between two files" in (user_home / "drift.html").read_text()
    assert not (tmp_path / "~").exists()


@pytest.fixture
def logged(settings: Settings) -> None:
    settings.ensure_home()
    store = Store(settings.resolved_database_url).open()
    store.migrate()
    now = time.time()
    rows = [
        {
            "request_id": f"req-{i}",
            "ts": now - 60 + i,
            "model": "churn",
            "version": "1",
            "arm": None,
            "routing_key": None,
            "inputs": json.dumps({"age": 40 + i}),
            "outputs": json.dumps({"prediction": i % 2}),
            "latency_ms": 1.5,
        }
        for i in range(5)
    ]
    with store.write() as conn:
        conn.execute(predictions.insert(), rows)
    store.close()


@pytest.mark.usefixtures("logged")
def test_predictions_export_refuses_an_existing_symlink(tmp_path: Path) -> None:
    precious = tmp_path / "precious.parquet"
    precious.write_bytes(b"keep me")
    link = tmp_path / "export.parquet"
    link.symlink_to(precious)
    proc = _modelward(tmp_path, "predictions", "export", "churn", "--output", str(link))
    assert proc.returncode == 1
    assert "symbolic link" in proc.stderr
    assert precious.read_bytes() == b"keep me"
    assert not list(tmp_path.glob(".*.partial"))


@pytest.mark.usefixtures("logged")
def test_predictions_export_expands_a_quoted_tilde(tmp_path: Path) -> None:
    user_home = tmp_path / "user"
    user_home.mkdir()
    proc = _modelward(tmp_path, "predictions", "export", "churn", "--output", "~/p.csv", home=user_home)
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(user_home / "p.csv")) == 5
    assert sorted(p.name for p in user_home.iterdir()) == ["p.csv"]
