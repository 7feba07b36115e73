"""`modelward validate` end to end: a real registry, real models, the gates' verdicts and exit codes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from tests.governance.candidates import narrower_model, shuffled_label_model

from modelward.cli import main
from modelward.governance import VersionReports
from modelward.registry import Registry, register_model


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def gates(out: str) -> dict[str, dict]:
    return {g["name"]: g for g in json.loads(out)["gates"]}


def test_a_worse_version_fails_the_regression_gate_and_the_junit_report_has_a_case_per_gate(
    champion: Registry,
    churn_frame: pd.DataFrame,
    holdout: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    register_model(
        champion, shuffled_label_model(churn_frame), "churn", train_data=churn_frame, target="churn"
    )
    junit = tmp_path / "gates.xml"
    code, out, _ = run(capsys, "validate", "churn:2", "--data", str(holdout), "--junit", str(junit), "--json")
    assert code == 1
    found = gates(out)
    regression = found["regression"]
    assert regression["verdict"] == "fail"
    assert regression["detail"]["champion"] - regression["detail"]["candidate"] > 0.01
    assert found["integrity"]["verdict"] == "pass"
    assert found["schema"]["verdict"] == "pass"
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == set(found)
    assert cases["regression"].find("failure") is not None
    assert cases["integrity"].find("failure") is None
    stored = VersionReports(champion.store).latest("churn", "2", "validation")
    assert stored is not None
    assert stored.body["verdict"] == "fail"


def test_the_champion_scored_against_itself_passes_and_the_table_names_each_gate(
    champion: Registry, holdout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    register_model(champion, champion_model(champion), "churn", train_data=holdout, target="churn")
    code, out, _ = run(capsys, "validate", "churn:2", "--data", str(holdout))
    assert code == 0, out
    for name in ("integrity", "schema", "regression", "pass"):
        assert name in out


def champion_model(registry: Registry) -> object:
    from modelward.runtime import load_version

    return load_version(registry, registry.resolve("churn@champion")).native


def test_a_removed_feature_fails_schema_compatibility_unless_the_policy_allows_it(
    champion: Registry, churn_frame: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, data = narrower_model(churn_frame)
    register_model(champion, model, "churn", train_data=data, target="churn")
    code, out, _ = run(capsys, "validate", "churn:2", "--json")
    assert code == 1
    schema = gates(out)["schema"]
    assert schema["verdict"] == "fail"
    assert "estimated_salary" in schema["reason"]
    assert gates(out)["regression"]["verdict"] == "skipped"
    code, out, _ = run(capsys, "validate", "churn:2")  # the table, at the tests' 80 columns
    assert code == 1
    (row,) = [line for line in out.splitlines() if line.startswith("│ schema")]
    assert "fail" in row
    assert "schema fail: against churn:1: removed estimated_salary" in out
    policy = tmp_path / "policy.yaml"
    policy.write_text("schema:\n  allow_removed: [estimated_salary]\n")
    code, out, _ = run(capsys, "validate", "churn:2", "--policy", str(policy), "--json")
    assert code == 0
    assert gates(out)["schema"]["verdict"] == "pass"


def test_a_latency_budget_the_runtime_cannot_meet_fails_the_latency_gate(
    champion: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("latency:\n  p95_ms: 0.0001\n  sample: 20\n")
    code, out, _ = run(capsys, "validate", "churn@champion", "--policy", str(policy), "--json")
    assert code == 1
    latency = gates(out)["latency"]
    assert latency["verdict"] == "fail"
    assert latency["value"] > latency["threshold"] == 0.0001
    assert latency["detail"]["rows"] == 20
    policy.write_text("latency:\n  p95_ms: 60000\n  sample: 20\n")
    code, out, _ = run(capsys, "validate", "churn@champion", "--policy", str(policy), "--json")
    assert code == 0
    assert gates(out)["latency"]["verdict"] == "pass"


def test_validate_exits_2_when_it_cannot_evaluate(
    champion: Registry, churn_frame: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "validate", "churnn:1")
    assert code == 2
    assert "churnn" in err
    code, _, err = run(capsys, "validate", "churn:1", "--data", str(tmp_path / "missing.parquet"))
    assert code == 2
    assert "missing.parquet" in err
    unlabelled = tmp_path / "unlabelled.csv"
    churn_frame.drop(columns=["churn"]).to_csv(unlabelled, index=False)
    code, _, err = run(capsys, "validate", "churn:1", "--data", str(unlabelled))
    assert code == 2
    assert "'churn'" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("metrics:\n  auc: {min: 0.8}\nlatncy: {p95_ms: 5}\n")
    code, _, err = run(capsys, "validate", "churn:1", "--policy", str(bad))
    assert code == 2
    assert "latncy (line 3): unknown key" in err


def test_a_stored_policy_applies_until_deleted(
    champion: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("calibration:\n  max_ece: 0.000001\n")
    assert run(capsys, "policy", "set", "churn", str(policy))[0] == 0
    code, out, _ = run(capsys, "policy", "show", "churn", "--json")
    assert json.loads(out)["policy"]["calibration"] == {"max_ece": 0.000001}
    code, out, _ = run(capsys, "validate", "churn:1", "--json")
    assert code == 1
    assert json.loads(out)["policy_source"] == "stored"
    assert gates(out)["calibration"]["verdict"] == "fail"
    assert run(capsys, "policy", "delete", "churn")[0] == 0
    code, out, _ = run(capsys, "validate", "churn:1", "--json")
    assert code == 0
    assert "calibration" not in gates(out)
    code, out, _ = run(capsys, "audit", "log", "--action", "policy_set", "--json")
    assert [e["subject"] for e in json.loads(out)] == ["churn"]
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("latency:\n  p95_ms: fast\n")
    code, _, err = run(capsys, "policy", "set", "churn", str(wrong))
    assert code == 1
    assert "latency.p95_ms (line 2)" in err
