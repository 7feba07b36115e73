"""The replicas benchmark harness, once through with 2 s runs on the local PostgreSQL: both load runs
answer requests, the second replica's rate is added, and the lease moves to the survivor after
SIGKILL. It measures nothing worth publishing (docs/scaling.md says how the figures were made)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.benchmarks.harness import run_benchmark


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_the_replicas_harness_loads_one_then_two_replicas_and_times_the_lease_take_over(
    postgres_base_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "replicas.json"
    argv = ["--quick", "--postgres", postgres_base_url, "--connections", "4", "--lease-ttl", "2"]
    done = run_benchmark("replicas.py", *argv, "--out", str(out), timeout=900)
    results = json.loads(out.read_text())
    assert results["rps_one"] > 0
    assert results["one"]["ok"] and len(results["two"]) == 2
    assert all(run["ok"] and run["rps"] > 0 for run in results["two"])
    assert results["rps_two"] == pytest.approx(sum(run["rps"] for run in results["two"]), abs=0.2)
    assert results["take_over"]["killed"] in {"a", "b"}
    assert 0 < results["take_over"]["seconds"] < results["lease_ttl"] * 4 + 30
    assert "| two replicas |" in done.stdout and "lease taken over" in done.stdout
