"""The dashboard benchmark harness, once through at a tiny size: it fills a home, every page answers
200 after the start-up warm-up, and the table and the results file name every page. It measures
nothing worth publishing; docs/dashboard.md ("Measured") says how to run it at a day of traffic."""

from __future__ import annotations

import json
from pathlib import Path

from tests.benchmarks.harness import run_benchmark

PAGES = (
    "overview",
    "model, 1 h",
    "model, 1 day",
    "model, 1 day, feature",
    "audit",
    "audit, filtered",
)


def test_dashboard_benchmark_answers_every_page(tmp_path: Path) -> None:
    out = tmp_path / "dashboard.json"
    argv = ["--rows", "20000", "--rounds", "2", "--home", str(tmp_path / "home"), "--out", str(out)]
    done = run_benchmark("dashboard.py", *argv)
    assert "20,000 logged rows" in done.stdout
    assert "start-up: the overview asked for at once answered after" in done.stdout
    table = {line[:24].strip() for line in done.stdout.splitlines()}
    assert set(PAGES) <= table, done.stdout
    results = json.loads(out.read_text())
    assert results["rows"] == 20_000
    assert [p["page"] for p in results["pages"]] == list(PAGES)
    for page in results["pages"]:
        assert page["status"] == 200, page
        assert 0 < page["median_ms"] <= page["max_ms"], page
        assert page["first_ms"] > 0, page
    assert 0 < results["start"]["overview_at_start_s"] <= results["start"]["warm_up_s"]
