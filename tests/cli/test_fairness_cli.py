"""`modelward fairness REF --data FILE` on registered churn versions, one of them trained to be biased."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference
from sklearn.linear_model import LogisticRegression
from tests.conftest import make_pipeline

from modelward.cli import main
from modelward.governance.reports import VersionReports
from modelward.registry import Registry, register_model
from modelward.runtime import load_version


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def gender_biased(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The churn data with a label that depends on gender far more than the example's does."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    female = (out["gender"] == "Female").to_numpy()
    out["churn"] = np.where(female, rng.random(len(out)) < 0.7, rng.random(len(out)) < 0.08).astype(int)
    return out


def gender_blind(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The churn data with the gender column shuffled: the label no longer depends on it."""
    out = frame.copy()
    out["gender"] = np.random.default_rng(seed).permutation(out["gender"].to_numpy())
    return out


@pytest.fixture
def versions(churn: Registry, churn_frame: pd.DataFrame) -> Registry:
    """churn:3 trained on gender-biased labels (gender a feature), churn:4 on gender-blind data."""
    biased = gender_biased(churn_frame, seed=5)
    blind = gender_blind(churn_frame, seed=6)
    for data in (biased, blind):
        x, y = data.drop(columns=["churn"]), data["churn"]
        model = make_pipeline(LogisticRegression(max_iter=500)).fit(x, y)  # type: ignore[attr-defined]
        register_model(churn, model, "churn", train_data=data, target="churn")
    return churn


@pytest.fixture
def eval_file(tmp_path: Path, churn_frame: pd.DataFrame) -> Path:
    import sys

    frame = sys.modules["churn_generate"].generate(1_500, seed=42).drop(columns=["customer_id"])
    path = tmp_path / "eval.parquet"
    frame.to_parquet(path)
    return path


def test_a_biased_version_reports_fairlearns_parity_difference_and_fails_four_fifths(
    versions: Registry, eval_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "fairness", "churn:3", "--data", str(eval_file), "--sensitive", "gender,age", "--label", "churn",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    frame = pd.read_parquet(eval_file)
    predicted = load_version(versions, versions.version("churn", "3")).predict(frame.drop(columns=["churn"]))
    expected = demographic_parity_difference(frame["churn"], predicted, sensitive_features=frame["gender"])
    gender = next(f for f in report["features"] if f["feature"] == "gender")
    assert abs(gender["demographic_parity_difference"] - expected) < 1e-9
    assert expected > 0.3
    assert gender["four_fifths"]["passed"] is False
    assert gender["four_fifths"]["worst_group"] == "Male"
    assert gender["equalized_odds_difference"] is not None
    assert all(g["auc"] is not None for g in gender["groups"])
    assert report["worst_gap"]["feature"] == "gender"
    assert report["model"] == "churn" and report["version"] == "3"
    assert report["data"]["rows"] == 1_500 and len(report["data"]["fingerprint"]) == 64
    age = next(f for f in report["features"] if f["feature"] == "age")
    assert age["banded"] and 2 <= len(age["groups"]) <= 4

    stored = VersionReports(versions.store).latest("churn", "3", "fairness")
    assert stored is not None and stored.actor == "tester"
    assert (
        stored.body["features"][0]["demographic_parity_difference"] == gender["demographic_parity_difference"]
    )


def test_a_gender_blind_version_has_a_smaller_parity_difference(
    versions: Registry, eval_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = {}
    for version in ("3", "4"):
        code, out, err = run(
            capsys,
            "fairness",
            f"churn:{version}",
            "--data",
            str(eval_file),
            "--sensitive",
            "gender",
            "--json",
        )
        assert code == 0, err
        found[version] = json.loads(out)["features"][0]["demographic_parity_difference"]
    assert found["4"] < found["3"] / 3


def test_the_table_and_show_print_the_verdicts(
    versions: Registry, eval_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "show", "churn:3", "--quick")
    assert code == 0, err
    assert "not audited" in out
    code, out, err = run(
        capsys, "fairness", "churn:3", "--data", str(eval_file), "--sensitive", "gender", "--label", "churn"
    )
    assert code == 0, err
    assert "four-fifths rule FAIL" in " ".join(out.split())
    assert "Female" in out and "Male" in out
    code, out, err = run(capsys, "show", "churn:3", "--quick")
    assert code == 0, err
    text = " ".join(out.split())
    assert "fairness file data, 1,500 rows" in text
    assert "gender: DP difference" in text and "four-fifths FAIL" in text
    code, out, err = run(capsys, "show", "churn:3", "--quick", "--json")
    shown = json.loads(out)["fairness"]
    assert shown["source"] == "file" and shown["features"][0]["four_fifths"] is False
    code, out, err = run(capsys, "show", "churn:1", "--quick", "--json")
    assert json.loads(out)["fairness"] is None


def test_small_groups_are_flagged_in_the_report(
    versions: Registry, eval_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.read_parquet(eval_file)
    spain = frame.index[frame["geography"] == "Spain"]
    trimmed = frame.drop(index=spain[10:])
    path = tmp_path / "few-spain.csv"
    trimmed.to_csv(path, index=False)
    code, out, err = run(
        capsys, "fairness", "churn:1", "--data", str(path), "--sensitive", "geography", "--min-group", "25",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    geography = json.loads(out)["features"][0]
    spain_row = next(g for g in geography["groups"] if g["group"] == "Spain")
    assert spain_row["small"] and spain_row["count"] == 10
    assert geography["small_groups"] == ["Spain"]
    assert "Spain" not in (geography["four_fifths"]["worst_group"], geography["four_fifths"]["best_group"])
    code, out, err = run(
        capsys, "fairness", "churn:1", "--data", str(path), "--sensitive", "geography", "--min-group", "25"
    )
    assert "small: not judged" in out


def test_numeric_columns_are_banded_by_bins(
    versions: Registry, eval_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "fairness", "churn:1", "--data", str(eval_file), "--sensitive", "age,balance", "--bins", "3",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    features = {f["feature"]: f for f in json.loads(out)["features"]}
    age = features["age"]
    assert age["banded"] and len(age["groups"]) == 3
    assert all("-" in g["group"] for g in age["groups"])
    assert sum(g["count"] for g in age["groups"]) == 1_500
    assert len(features["balance"]["groups"]) <= 3  # 30 % zero balances collapse the lowest bands


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sensitive", "religion"], "has no column 'religion'"),
        (["--sensitive", "gender", "--label", "outcome"], "has no column 'outcome'"),
        (["--sensitive", ","], "name at least one sensitive column"),
    ],
)
def test_unknown_columns_exit_1_with_one_line(
    versions: Registry, eval_file: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = run(capsys, "fairness", "churn:1", "--data", str(eval_file), *args)
    assert code == 1
    assert message in _one_error_line(err)


def test_bad_or_missing_data_exits_1_with_one_line(
    versions: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header_only = tmp_path / "header.csv"
    header_only.write_text("gender,age\n")
    text = tmp_path / "data.txt"
    text.write_text("gender\nMale\n")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    cases: list[tuple[list[str], str]] = [
        (["--data", str(tmp_path / "absent.csv")], "does not exist"),
        (["--data", str(empty)], "cannot read"),
        (["--data", str(header_only)], "has no rows"),
        (["--data", str(text)], "use a .csv or .parquet file"),
        (["--data", str(broken)], "cannot read"),
        ([], "give either --data FILE"),
    ]
    for args, message in cases:
        code, _, err = run(capsys, "fairness", "churn:1", *args, "--sensitive", "gender")
        assert code == 1, args
        assert message in _one_error_line(err), args
    code, _, err = run(capsys, "fairness", "nosuch:1", "--data", str(header_only), "--sensitive", "gender")
    assert code == 1 and len(err.strip().splitlines()) == 1


def test_a_regressor_is_refused(
    registry: Registry, churn_frame: pd.DataFrame, eval_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.linear_model import LinearRegression

    data: Any = churn_frame
    x = data.drop(columns=["churn", "balance"])
    model = make_pipeline_regressor(LinearRegression()).fit(x, data["balance"])
    register_model(registry, model, "balance", train_data=data.drop(columns=["churn"]), target="balance")
    capsys.readouterr()  # MLflow's own output while registering
    code, _, err = run(capsys, "fairness", "balance:1", "--data", str(eval_file), "--sensitive", "gender")
    assert code == 1
    assert "need a classifier" in _one_error_line(err)


def make_pipeline_regressor(estimator: Any) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    pre = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), ["geography", "gender"])], remainder="passthrough"
    )
    return Pipeline([("pre", pre), ("model", estimator)])


def test_the_registered_positive_class_is_the_one_selected(
    churn: Registry,
    churn_models: dict[str, Any],
    churn_frame: pd.DataFrame,
    eval_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from modelward.registry.response import response_tags

    tags = response_tags({"probability_name": "stay_probability", "positive_class": 0})
    register_model(churn, churn_models["logreg"], "churn", train_data=churn_frame, target="churn", tags=tags)
    found = {}
    for version in ("1", "3"):  # the same model; version 3 counts "stays" (class 0) as selected
        code, out, err = run(
            capsys,
            "fairness",
            f"churn:{version}",
            "--data",
            str(eval_file),
            "--sensitive",
            "gender",
            "--json",
        )
        assert code == 0, err
        found[version] = json.loads(out)
    assert (found["1"]["positive_label"], found["3"]["positive_label"]) == ("1", "0")
    for one, three in zip(
        found["1"]["features"][0]["groups"], found["3"]["features"][0]["groups"], strict=True
    ):
        assert three["selection_rate"] == pytest.approx(1 - one["selection_rate"])
