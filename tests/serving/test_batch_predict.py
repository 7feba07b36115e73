"""`modelward predict`: a file scored in chunks through the server's validation, with progress."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.serving.conftest import server_env


def _predict(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["modelward", "predict", *args], env=server_env(home), capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_scores_a_file_in_chunks_like_the_model(
    churn_home: Path, churn_frame: pd.DataFrame, churn_models: dict, tmp_path: Path, suffix: str
) -> None:
    data = churn_frame.drop(columns=["churn"]).assign(customer_id=[f"C{i}" for i in range(len(churn_frame))])
    source = tmp_path / f"in.{suffix}"
    data.to_parquet(source) if suffix == "parquet" else data.to_csv(source, index=False)
    out = tmp_path / f"out.{suffix}"
    proc = _predict(
        churn_home,
        "churn@challenger",
        "--input",
        str(source),
        "--output",
        str(out),
        "--chunk-size",
        "300",
        "--keep",
        "customer_id",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["rows"] == len(data) and summary["version"] == "2"
    scored = pd.read_parquet(out) if suffix == "parquet" else pd.read_csv(out)
    assert list(scored.columns) == ["customer_id", "prediction", "probability_0", "probability_1"]
    assert scored["customer_id"].tolist() == data["customer_id"].tolist()
    features = data.drop(columns=["customer_id"])
    np.testing.assert_allclose(
        scored[["probability_0", "probability_1"]].to_numpy(), churn_models["forest"].predict_proba(features)
    )
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), churn_models["forest"].predict(features))


def test_bad_rows_are_named_by_file_row_and_nothing_is_written(
    churn_home: Path, churn_frame: pd.DataFrame, tmp_path: Path
) -> None:
    data = churn_frame.drop(columns=["churn"]).astype({"geography": object})
    data.loc[1234, "geography"] = 7  # a number where the schema wants a string
    source = tmp_path / "in.csv"
    data.drop(columns=["tenure"]).to_csv(source, index=False)
    out = tmp_path / "out.parquet"
    proc = _predict(churn_home, "churn", "--input", str(source), "--output", str(out))
    assert proc.returncode == 1
    assert "missing field 'tenure'" in proc.stderr
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def test_type_errors_name_the_row_of_the_file(
    churn_home: Path, churn_frame: pd.DataFrame, tmp_path: Path
) -> None:
    data = churn_frame.drop(columns=["churn"]).astype({"age": float})
    data.loc[1500, "age"] = 41.5
    source = tmp_path / "in.parquet"
    data.to_parquet(source)
    proc = _predict(
        churn_home,
        "churn",
        "--input",
        str(source),
        "--output",
        str(tmp_path / "out.parquet"),
        "--chunk-size",
        "1000",
    )
    assert proc.returncode == 1
    assert "row 1501" in proc.stderr and "age" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_input_and_bad_suffix_are_one_line_errors(churn_home: Path, tmp_path: Path) -> None:
    missing = _predict(
        churn_home, "churn", "--input", str(tmp_path / "nope.csv"), "--output", str(tmp_path / "o.csv")
    )
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    (tmp_path / "in.csv").write_text("age\n1\n")
    bad = _predict(
        churn_home, "churn", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "o.json")
    )
    assert bad.returncode == 1 and ".csv or .parquet" in bad.stderr


def test_one_bad_csv_cell_is_named_not_every_row(
    churn_home: Path, churn_frame: pd.DataFrame, tmp_path: Path
) -> None:
    data = churn_frame.drop(columns=["churn"]).astype({"age": object})
    data.loc[3, "age"] = "abc"
    source = tmp_path / "in.csv"
    data.to_csv(source, index=False)
    proc = _predict(churn_home, "churn", "--input", str(source), "--output", str(tmp_path / "out.csv"))
    assert proc.returncode == 1
    assert "row 4, field 'age': 'abc' is not a number" in proc.stderr
    assert "row 5" not in proc.stderr


def test_the_output_may_not_overwrite_the_input(
    churn_home: Path, churn_frame: pd.DataFrame, tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    churn_frame.to_csv(source, index=False)
    proc = _predict(churn_home, "churn", "--input", str(source), "--output", str(source))
    assert proc.returncode == 1 and "is the input file" in proc.stderr
    assert pd.read_csv(source).shape == churn_frame.shape
