"""The drift benchmark harness at tiny sizes (2,000 rows x 5 columns): it generates its files, runs
``modelward drift --reference --current`` in a fresh process and reports sensible figures, and puts the
same files through Evidently and NannyML when their virtual environments are there
(``benchmarks/setup_evidently.sh``, ``benchmarks/setup_nannyml.sh``). It measures nothing worth
publishing; docs/benchmarks.md ("Drift") has the real run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "drift_vs_evidently.py"
PEER_VENVS = {
    "evidently": ROOT / "benchmarks" / ".venv-evidently" / "bin" / "python",
    "nannyml": ROOT / "benchmarks" / ".venv-nannyml" / "bin" / "python",
}


def _run(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path / "drift.json"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--work", str(tmp_path), "--out", str(out), *extra]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done, json.loads(out.read_text())


def test_drift_benchmark_runs_end_to_end_at_tiny_sizes(tmp_path: Path) -> None:
    done, results = _run(tmp_path, "--skip-evidently", "--skip-nannyml")
    assert "| modelward |" in done.stdout
    [entry] = results["sizes"]
    assert (entry["rows"], entry["columns"]) == (2_000, 5)
    m = entry["tools"]["modelward"]
    assert m["ok"] == m["runs"] == 1
    assert 0 < m["median_seconds"] < 120
    assert 50 < m["median_peak_rss_mb"] < 1_000
    assert 1 <= m["drifted"] <= 5  # every other column of the current file is shifted
    assert set(entry["tools"]) == {"modelward"}
    assert (tmp_path / "reference-2000x5.parquet").is_file() and (tmp_path / "current-2000x5.csv").is_file()


def test_drift_benchmark_compares_modelward_with_another_checkout(tmp_path: Path) -> None:
    done, results = _run(tmp_path, "--skip-evidently", "--skip-nannyml", "--compare", str(ROOT / "src"))
    assert "| modelward-before |" in done.stdout
    [entry] = results["sizes"]
    assert set(entry["tools"]) == {"modelward", "modelward-before"}
    assert entry["tools"]["modelward-before"]["ok"] == 1
    assert entry["tools"]["modelward-before"]["drifted"] == entry["tools"]["modelward"]["drifted"]


@pytest.mark.parametrize("peer", sorted(PEER_VENVS))
def test_drift_benchmark_measures_each_peer_beside_modelward(tmp_path: Path, peer: str) -> None:
    if not PEER_VENVS[peer].exists():
        pytest.skip(
            f"{PEER_VENVS[peer].parent.parent} is not there (bash benchmarks/setup_{peer}.sh makes it)"
        )
    other = {"evidently": "--skip-nannyml", "nannyml": "--skip-evidently"}[peer]
    done, results = _run(tmp_path, other)
    [entry] = results["sizes"]
    assert set(entry["tools"]) == {"modelward", peer}
    s = entry["tools"][peer]
    assert s["ok"] == s["runs"] == 1, s
    assert s["median_seconds"] > 0 and s["median_peak_rss_mb"] > 50
    assert 0 <= s["drifted"] <= 5
    assert set(entry["ratio"][peer]) == {"time", "peak_rss"}
    assert f"{peer} / modelward:" in done.stdout


def test_a_peer_past_the_time_limit_is_not_run_at_larger_sizes(tmp_path: Path) -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import drift_vs_evidently as bench
    finally:
        sys.path.remove(str(SCRIPT.parent))
    exceeded = {"rows": 100, "tools": {"evidently": {"runs": 1, "ok": 0, "exceeded": "stopped"}}}
    assert bench.skip_reason("evidently", 1_000, [exceeded], 60) == "skipped: past the 60 s limit at 100 rows"
    quick = {"rows": 100, "tools": {"nannyml": {"ok": 3, "median_seconds": 10.0}}}
    assert bench.skip_reason("nannyml", 500, [quick], 60) is None  # 50 s projected
    assert bench.skip_reason("nannyml", 1_000, [quick], 60) == (
        "skipped: projected 100 s from 100 rows, past the 60 s limit"
    )
