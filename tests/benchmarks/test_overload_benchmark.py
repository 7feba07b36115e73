"""The overload scenario's pieces: wrk's per-status summary read right, 503s kept apart from errors,
the report's table and goodput targets, and (with wrk installed) a tiny run end to end."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.benchmarks.test_serving_benchmark_smoke import _run

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"

LINE = (
    'BENCH_JSON {"requests": 1500, "duration_us": 2000000, "bytes": 1, "connect_errors": 0, '
    '"read_errors": 1, "write_errors": 0, "non_2xx": 1001, "timeouts": 2, "p50_us": 900.0, '
    '"p90_us": 1.0, "p99_us": 1.0, "max_us": 1.0, "mean_us": 1.0, "ok": 499, "shed": 1000, "other": 1, '
    '"shed_without_retry_after": 0, "unmatched": 0, "ok_p50_us": 20000.0, "ok_p99_us": 800000.0, '
    '"ok_max_us": 950000.0, "shed_p50_us": 300.0, "shed_p99_us": 2500.0}'
)


@pytest.fixture
def bench_modules() -> Iterator[None]:
    sys.path.insert(0, str(BENCH))
    yield
    sys.path.remove(str(BENCH))


def test_the_summary_line_gives_goodput_and_keeps_503s_apart_from_errors(bench_modules: None) -> None:
    import overload

    got = overload.parse("wrk noise\n" + LINE + "\n", 1000)
    assert (got.accepted, got.shed, got.other) == (499, 1000, 1)
    assert got.rps == 249.5 and got.shed_rps == 500.0
    assert got.shed_share == pytest.approx(1000 / 1500, abs=1e-4)
    assert (got.p50_ms, got.p99_ms, got.max_ms) == (20.0, 800.0, 950.0)
    assert got.shed_p99_ms == 2.5
    assert got.errors == 1 + 2 + 1  # a read error, two timeouts, one other status; no 503
    record = got.to_dict()
    assert record["errors"] == 4 and record["ok"] is False and record["non_2xx"] == 1001


def test_the_report_shows_an_overload_table_and_a_goodput_target_per_system(bench_modules: None) -> None:
    import report

    def run(system: str, conns: int, rps: float, share: float) -> dict[str, object]:
        return {
            "scenario": "overload",
            "system": system,
            "connections": conns,
            "rps": rps,
            "p50_ms": 5.0,
            "p99_ms": 50.0,
            "errors": 0,
            "requests": 100,
            "shed_share": share,
            "shed_rps": 10.0,
            "shed_p99_ms": 1.0,
            "max_ms": 60.0,
        }

    runs = [run("a", 32, 100.0, 0.0), run("a", 1000, 90.0, 0.9), run("b", 32, 100.0, 0.0)]
    runs.append(run("b", 1000, 50.0, 0.95))
    summary = report.summarize(runs)
    targets = {row["key"]: row for row in report.evaluate(summary, {}, ["overload"])}
    assert targets["overload_goodput_a"]["value"] == 0.9 and targets["overload_goodput_a"]["met"] is True
    assert targets["overload_goodput_b"]["value"] == 0.5 and targets["overload_goodput_b"]["met"] is False
    results = {
        "started": "now",
        "command": "run.py --only overload",
        "machine": {
            "cpu": "x",
            "cores": 2,
            "usable_cores": 2,
            "memory_gib": 1,
            "os": "linux",
            "python": "3",
            "load_before": [0, 0, 0],
            "packages": {},
            "git": {},
        },
        "client": "wrk",
        "settings": {"rounds": 1, "duration": 1, "warmup": 1},
        "summary": summary,
        "targets": list(targets.values()),
    }
    table = report.markdown(results)
    assert "### Overload" in table and "### Throughput and latency" not in table
    assert "| a | 1000 | 90 | 0.90x | 90.0% |" in table


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="the overload scenario needs wrk")
def test_the_overload_scenario_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    tiny = (
        "--only overload --systems modelward-compiled --overload-connections 2,64 --rounds 1 "
        "--duration 1 --warmup 0.5 --pause 0 --rows 2000 --minimal-models"
    )
    done = _run([*tiny.split(), "--work", str(tmp_path / "work"), "--out", str(out)], timeout=170)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(out.read_text())
    entries = results["summary"]["overload"]["modelward-compiled"]
    for conns in ("2", "64"):
        assert entries[conns]["rps"] > 0 and entries[conns]["errors"] == 0
        assert 0 <= entries[conns]["shed_share"] <= 1
    assert any(row["key"] == "overload_goodput_modelward-compiled" for row in results["targets"])
    assert "### Overload" in out.with_suffix(".md").read_text()
