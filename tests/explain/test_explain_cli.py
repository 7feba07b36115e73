"""`modelward explain` as a user meets it: rows from a JSON file, --json, --global stored with the version."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from modelward.cli import main
from modelward.config import Settings
from modelward.explain import TOLERANCE
from modelward.governance.reports import VersionReports
from modelward.store import Store


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def row_file(tmp_path: Path, frame: pd.DataFrame, body: object | None = None, name: str = "row") -> Path:
    record = frame.drop(columns=["churn"]).head(1).to_dict(orient="records")[0]
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(body if body is not None else record))
    return path


def test_json_output_adds_up_for_a_record(
    explain_env: Path, tmp_path: Path, churn_frame: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "explain", "hgb:1", "--input", str(row_file(tmp_path, churn_frame)), "--json", "--top-k", "3"
    )
    assert code == 0
    body = json.loads(out)
    assert (body["model"], body["version"], body["output_space"]) == ("hgb", "1", "log_odds")
    row = body["explanations"][0]
    assert len(row["top"]) == 3
    assert row["base_value"] + sum(row["contributions"].values()) == pytest.approx(
        row["output"], abs=TOLERANCE
    )


def test_a_request_body_works_as_input_and_the_table_names_the_output_space(
    explain_env: Path, tmp_path: Path, churn_frame: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = churn_frame.drop(columns=["churn"]).head(2).to_dict(orient="records")
    code, out, _ = run(
        capsys, "explain", "logreg", "--input", str(row_file(tmp_path, churn_frame, {"instances": rows}))
    )
    assert code == 0
    assert "row 0, class 1: output" in out and "(log_odds)" in out and "row 1" in out
    assert "contribution" in out


def test_mistakes_are_one_line_errors(
    explain_env: Path, tmp_path: Path, churn_frame: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = row_file(tmp_path, churn_frame, {"age": "old"}, name="bad")
    for argv in (
        ("explain", "hgb", "--input", str(bad)),
        ("explain", "hgb", "--input", str(tmp_path / "missing.json")),
        ("explain", "hgb"),
        ("explain", "hgb", "--global"),
        ("explain", "nope", "--input", str(row_file(tmp_path, churn_frame))),
    ):
        code, out, err = run(capsys, *argv)
        assert code == 1, argv
        assert err.startswith("error: ") and out == "", argv


def test_global_importance_is_stored_with_the_version(
    explain_env: Path, tmp_path: Path, churn_frame: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "sample.parquet"
    churn_frame.to_parquet(data, index=False)
    code, out, _ = run(
        capsys, "explain", "gboost:1", "--global", "--data", str(data), "--rows", "200", "--json"
    )
    assert code == 0
    body = json.loads(out)
    assert body["method"] == "mean_abs_shap" and body["rows"] == 200
    values = list(body["features"].values())
    assert values == sorted(values, reverse=True) and set(body["features"]) == set(churn_frame.columns) - {
        "churn"
    }

    store = Store(Settings(home=explain_env).resolved_database_url).open()
    try:
        stored = VersionReports(store).latest("gboost", "1", "importance")
    finally:
        store.close()
    assert stored is not None and stored.body["features"] == pytest.approx(body["features"])
    assert stored.body["method"] == "mean_abs_shap" and stored.actor == "tester"
