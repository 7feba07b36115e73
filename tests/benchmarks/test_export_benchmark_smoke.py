"""The labelled-export benchmark at a tiny size: it logs rows, exports the labelled half in a fresh
process and reports its memory. It measures nothing worth publishing; docs/benchmarks.md ("Labelled
export") has the real run."""

from __future__ import annotations

import json
from pathlib import Path

from tests.benchmarks.harness import run_benchmark


def test_export_benchmark_exports_the_labelled_half_and_reports_its_peak_memory(tmp_path: Path) -> None:
    out = tmp_path / "export.json"
    run_benchmark("export_labeled.py", "--rows", "2000", "--out", str(out), timeout=300)
    result = json.loads(out.read_text())
    assert (result["logged_rows"], result["exported_rows"]) == (2000, 1000)
    assert result["peak_rss_mb"] > result["cli_floor_rss_mb"] > 0
