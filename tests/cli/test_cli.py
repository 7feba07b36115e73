"""The command line as a user meets it: tables, --json, one-line errors and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from modelward.cli import main
from modelward.config import Settings
from modelward.registry import Registry, register_model


@pytest.fixture
def two_versions(registry: Registry, churn_models: dict, churn_frame: pd.DataFrame) -> Registry:
    register_model(
        registry, churn_models["logreg"], "churn", train_data=churn_frame, target="churn", description="lr"
    )
    register_model(
        registry, churn_models["forest"], "churn", train_data=churn_frame, target="churn", description="rf"
    )
    return registry


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_versions_shows_both_versions_with_aliases(
    two_versions: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "promote", "churn", "1")[0] == 0
    assert run(capsys, "promote", "churn", "2", "--alias", "challenger")[0] == 0
    code, out, _ = run(capsys, "versions", "churn", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["version"], r["aliases"]) for r in rows] == [("1", ["champion"]), ("2", ["challenger"])]
    code, out, _ = run(capsys, "versions", "churn")
    assert code == 0
    assert "champion" in out
    assert "challenger" in out


def test_promote_and_rollback_appear_in_audit_log_and_chain_verifies(
    two_versions: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "promote", "churn", "1")
    code, out, _ = run(capsys, "promote", "churn", "2", "--reason", "better auc")
    assert code == 0
    assert "version 2" in out
    code, out, _ = run(capsys, "rollback", "churn", "--json")
    assert code == 0
    assert json.loads(out)["version"] == "1"
    code, out, _ = run(capsys, "audit", "log", "--json")
    actions = [(e["action"], e["subject"]) for e in json.loads(out)]
    assert actions == [
        ("register", "churn:1"),
        ("register", "churn:2"),
        ("promote", "churn:1"),
        ("promote", "churn:2"),
        ("rollback", "churn:1"),
    ]
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0
    assert "OK: 5 events" in out


def test_audit_verify_fails_naming_the_seq_edited_directly_in_sqlite(
    two_versions: Registry, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    run(capsys, "promote", "churn", "1")
    code, out, _ = run(capsys, "audit", "head")
    anchor = out.strip()
    assert code == 0
    assert anchor.startswith("3:")
    with sqlite3.connect(settings.home / "modelward.db") as conn:
        conn.execute("UPDATE modelward_audit_events SET payload = replace(payload, 'lr', 'xx') WHERE seq = 2")
        conn.execute("UPDATE modelward_audit_events SET actor = 'mallory' WHERE seq = 2")
    code, out, err = run(capsys, "audit", "verify")
    assert code == 1
    assert "BROKEN at seq 2" in err
    code, out, _ = run(capsys, "audit", "verify", "--json", "--anchor", anchor)
    assert code == 1
    assert json.loads(out)["bad_seq"] == 2


def test_show_verify_reports_runtime_and_refuses_a_tampered_model(
    two_versions: Registry, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "show", "churn:1", "--verify", "--json")
    shown = json.loads(out)
    assert code == 0
    assert shown["native_runtime"] == "sklearn-skops"
    assert shown["runtime"] == "onnxruntime" and shown["serving"]["compiled"] is True
    assert shown["verified"] is True
    assert [f["name"] for f in shown["signature"]][:2] == ["age", "tenure"]
    assert shown["profile"]["rows"] == 2000
    assert shown["pinned_files"] >= 5
    code, out, _ = run(capsys, "show", "churn:2")
    assert code == 0
    assert "reference profile" in out
    assert "geography" in out
    # a 20-tree forest: exact vote ties (10 of 20) still go to the first class, as in scikit-learn
    assert "runtime      onnxruntime (compiled" in out
    code, out, _ = run(capsys, "show", "churn:2", "--quick", "--json")
    assert code == 0 and json.loads(out)["runtime"] is None

    model_file = sorted(Path(settings.home, "artifacts").rglob("model.skops"))[0]
    raw = bytearray(model_file.read_bytes())
    raw[100] ^= 0xFF
    model_file.write_bytes(bytes(raw))
    results = [run(capsys, "show", f"churn:{v}", "--verify") for v in ("1", "2")]
    failed = [r for r in results if r[0] == 1]
    assert len(failed) == 1
    assert "model/model.skops" in failed[0][2]
    assert "Traceback" not in failed[0][2]
    # without --verify the registry facts are still shown, with the reason it does not load
    shown = [run(capsys, "show", f"churn:{v}") for v in ("1", "2")]
    assert all(code == 0 for code, _, _ in shown)
    assert sum("it does not load" in out for _, out, _ in shown) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "nope"], "model 'nope' is not registered"),
        (["show", "churn:9"], "has no version 9"),
        (["show", "churn@gold"], "has no alias 'gold'"),
        (["show", "churn:x"], "invalid model reference"),
        (["promote", "churn", "7"], "has no version 7"),
        (["rollback", "churn"], "never promoted"),
        (
            ["register", "--from-mlflow", "runs:/0123/model", "--name", "x", "--reference", "/nope.csv"],
            "does not exist",
        ),
        (
            [
                "register",
                "--from-mlflow",
                "runs:/0123/model",
                "--name",
                "x",
                "--reference",
                "{ref}",
                "--tag",
                "oops",
            ],
            "KEY=VALUE",
        ),
        (["audit", "verify", "--anchor", "zz"], "--anchor expects"),
    ],
)
def test_user_mistakes_print_one_line_and_exit_1(
    two_versions: Registry, capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    ref = tmp_path / "ref.csv"
    ref.write_text("a\n1\n")
    code, _out, err = run(capsys, *[a.replace("{ref}", str(ref)) for a in argv])
    assert code == 1
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 3


def test_register_from_mlflow_via_cli(
    two_versions: Registry,
    churn_models: dict,
    churn_frame: pd.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import mlflow
    import mlflow.sklearn

    ref = tmp_path / "ref.parquet"
    churn_frame.to_parquet(ref)
    with two_versions.mlflow_context(), mlflow.start_run() as r:
        mlflow.sklearn.log_model(
            churn_models["forest"],
            name="model",
            serialization_format="skops",
            skops_trusted_types=["sklearn.tree._tree.Tree"],
        )
    code, out, err = run(
        capsys,
        "register",
        "--from-mlflow",
        f"runs:/{r.info.run_id}/model",
        "--name",
        "imported",
        "--reference",
        str(ref),
        "--target",
        "churn",
        "--tag",
        "team=risk",
        "--json",
    )
    assert code == 0, err
    info = json.loads(out)
    assert info["version"] == "1"
    assert info["tags"]["team"] == "risk"
    code, out, _ = run(capsys, "models", "--json")
    assert sorted(m["name"] for m in json.loads(out)) == ["churn", "imported"]


def test_models_on_an_empty_home_says_so(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models")
    assert code == 0
    assert "no models registered" in out
    code, out, _ = run(capsys, "models", "--json")
    assert json.loads(out) == []


def test_console_script_runs_as_a_real_process(settings: Settings) -> None:
    proc = subprocess.run(
        ["modelward", "audit", "verify", "--json"], capture_output=True, text=True, env=dict(os.environ)
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True
