"""The labelled-export benchmark at a tiny size: it logs rows, exports the labelled half in a fresh
process and reports its memory. It measures nothing worth publishing; docs/benchmarks.md ("Labelled
export") has the real run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_export_benchmark_exports_the_labelled_half_and_reports_its_peak_memory(tmp_path: Path) -> None:
    out = tmp_path / "export.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "export_labeled.py"), "--rows", "2000", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert (result["logged_rows"], result["exported_rows"]) == (2000, 1000)
    assert result["peak_rss_mb"] > result["cli_floor_rss_mb"] > 0
