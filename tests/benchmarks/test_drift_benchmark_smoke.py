"""The drift benchmark harness at tiny sizes (2,000 rows x 5 columns, modelward only): it generates its
files, runs ``modelward drift --reference --current`` in a fresh process and reports sensible figures.
It measures nothing worth publishing; docs/benchmarks.md ("Drift") has the real run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "drift_vs_evidently.py"


def test_drift_benchmark_runs_end_to_end_at_tiny_sizes(tmp_path: Path) -> None:
    out = tmp_path / "drift.json"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--skip-evidently",
            "--work",
            str(tmp_path),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| modelward |" in done.stdout
    results = json.loads(out.read_text())
    assert (results["rows"], results["columns"]) == (2_000, 5)
    m = results["tools"]["modelward"]
    assert m["ok"] == m["runs"] == 1
    assert 0 < m["median_seconds"] < 120
    assert 50 < m["median_peak_rss_mb"] < 1_000
    assert 1 <= m["drifted"] <= 5  # every other column of the current file is shifted
    assert "evidently" not in results["tools"]
    assert (tmp_path / "reference-2000x5.parquet").is_file() and (tmp_path / "current-2000x5.csv").is_file()
