"""The explain benchmark harness, once through on a registered tree model: in-process and over HTTP.
It measures nothing worth publishing; docs/benchmarks.md ("Explanations") says how to run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_explain_benchmark_reports_p50_and_p95_in_process_and_over_http(
    explain_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "explain.json"
    argv = ["--home", str(explain_home), "--ref", "gboost", "--quick", "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELWARD_", "MLFLOW_"))}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "explain.py"), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| POST /models/{name}/explain |" in done.stdout
    results = json.loads(out.read_text())
    assert results["in_process"]["method"] == "tree"
    for part in (results["in_process"]["explain"], results["http"]["explain"], results["http"]["predict"]):
        assert part["n"] == 20 and 0 < part["p50_ms"] <= part["p95_ms"]
