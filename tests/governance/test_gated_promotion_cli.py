"""`modelward promote` runs the gates: a biased version fails fairness, is refused, and is promoted
only with --force --reason, the override kept in the audit chain with the gate results."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference
from tests.governance.candidates import biased_model

from modelward.cli import main
from modelward.registry import Registry, register_model
from modelward.runtime import load_version

POLICY = """\
regression: null
fairness:
  sensitive: [gender]
  max_demographic_parity_difference: 0.1
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def biased(champion: Registry, churn_frame: pd.DataFrame, tmp_path: Path) -> Path:
    """churn:2 learnt that women churn; the policy stored for churn bounds demographic parity."""
    register_model(champion, biased_model(churn_frame), "churn", train_data=churn_frame, target="churn")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    assert main(["policy", "set", "churn", str(policy)]) == 0
    return policy


def test_validate_fails_the_fairness_gate_naming_the_group_and_the_gap(
    biased: Path,
    champion: Registry,
    churn_frame: pd.DataFrame,
    holdout: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "validate", "churn:2", "--data", str(holdout), "--json")
    assert code == 1
    gate = {g["name"]: g for g in json.loads(out)["gates"]}["fairness:demographic_parity_difference"]
    assert gate["verdict"] == "fail"
    predictions = load_version(champion, champion.version("churn", "2")).predict(churn_frame)
    expected = demographic_parity_difference(
        churn_frame["churn"], predictions, sensitive_features=churn_frame["gender"]
    )
    assert gate["value"] == pytest.approx(expected, abs=1e-9)
    worst = gate["detail"]["worst_gap"]
    assert (worst["feature"], worst["group"], worst["reference"]) == ("gender", "Male", "Female")
    assert "gender=Male" in gate["reason"]
    assert f"{expected:.4f}" in gate["reason"]
    code, out, _ = run(capsys, "validate", "churn:2", "--data", str(holdout))
    assert code == 1
    assert "gender=Male" in out


def test_promote_refuses_a_failing_version_and_force_with_a_reason_overrides_on_the_record(
    biased: Path, champion: Registry, holdout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "promote", "churn", "2", "--data", str(holdout))
    assert code == 1
    assert "fairness:demographic_parity_difference" in err
    assert champion.model("churn").aliases["champion"] == "1"
    code, _, err = run(capsys, "promote", "churn", "2", "--data", str(holdout), "--force")
    assert code == 1
    assert "--reason" in err
    assert champion.model("churn").aliases["champion"] == "1"
    code, out, _ = run(
        capsys, "promote", "churn", "2", "--data", str(holdout), "--force", "--reason", "legal signed off"
    )
    assert code == 0
    assert "forced past failing gates" in out
    assert champion.model("churn").aliases["champion"] == "2"
    code, out, _ = run(capsys, "audit", "log", "--model", "churn:2", "--json")
    events = json.loads(out)
    assert [e["action"] for e in events if e["action"].startswith("promote")] == [
        "promote_refused",
        "promote",
    ]
    promoted = events[-1]
    assert promoted["actor"] == "tester"
    assert promoted["payload"]["override"] is True
    assert promoted["payload"]["reason"] == "legal signed off"
    verdicts = {g["name"]: g["verdict"] for g in promoted["payload"]["validation"]["gates"]}
    assert verdicts["fairness:demographic_parity_difference"] == "fail"
    assert verdicts["integrity"] == "pass"
    code, out, _ = run(capsys, "audit", "verify", "--json")
    assert code == 0


def test_without_a_holdout_promote_runs_the_gates_that_need_none_and_says_which_were_skipped(
    biased: Path, champion: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "promote", "churn", "2")
    assert code == 0
    assert "gates skipped: fairness:demographic_parity_difference" in out
    assert champion.model("churn").aliases["champion"] == "2"
