"""promtool accepts deploy/prometheus's config and rules, and each alert rule's unit tests pass."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.promql import (
    DASHBOARDS,
    DEPLOY,
    PROMETHEUS,
    RULE_FILES,
    all_exprs,
    metric_names,
    recorded_names,
    recording_names_used,
    rules,
)

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


def test_metric_names_are_read_from_expressions_without_labels_functions_or_recorded_series() -> None:
    expr = (
        'sum by (model, le) (rate(modelward_a_bucket{model=~"modelward_b", status="5.."}[5m]))'
        " / on (model) group_left max(model:modelward_c:rate5m) or absent(modelward_d)"
    )
    assert metric_names(expr) == {"modelward_a_bucket", "modelward_d"}
    assert recording_names_used(expr) == {"model:modelward_c:rate5m"}


def test_every_dashboard_panel_queries_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = provisioned["datasources"][0]["uid"]
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert board["panels"], path.name
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == uid and panel["targets"], panel["title"]
            assert all(t["datasource"]["uid"] == uid and t["expr"].strip() for t in panel["targets"])
