"""promtool accepts deploy/prometheus's config and rules, and each alert rule's unit tests pass."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.promql import PROMETHEUS, RULE_FILES, all_exprs, recorded_names, recording_names_used, rules

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus)")
ALERT_TESTS = PROMETHEUS / "tests" / "alerts_test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_accepts_the_scrape_config_and_its_rule_files() -> None:
    done = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 rule files found" in done.stdout


def test_promtool_accepts_every_rule_file() -> None:
    done = promtool("check", "rules", *map(str, RULE_FILES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_rule_has_unit_tests_that_pass() -> None:
    alerts = {r["alert"] for r in rules() if "alert" in r}
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    tested = {case["alertname"] for t in tests for case in t.get("alert_rule_test", []) if case["exp_alerts"]}
    assert alerts == tested, f"alerts without a firing test: {alerts - tested}"
    done = promtool("test", "rules", str(ALERT_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_a_wrong_expectation_fails_the_rule_unit_tests(tmp_path: Path) -> None:
    broken = ALERT_TESTS.read_text().replace("962.5ms", "1s").replace("../rules/", f"{PROMETHEUS}/rules/")
    path = tmp_path / "broken_test.yml"
    path.write_text(broken)
    done = promtool("test", "rules", str(path))
    assert done.returncode != 0
    assert "ModelwardLatencySLOBreached" in done.stdout + done.stderr


def test_every_recorded_series_the_alerts_and_dashboards_read_is_recorded() -> None:
    used = set().union(*(recording_names_used(e) for e in all_exprs().values()))
    assert used and used <= recorded_names(), used - recorded_names()
