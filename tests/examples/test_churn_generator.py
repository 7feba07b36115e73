from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "churn" / "generate.py"


def _load() -> ModuleType:
    # examples/ is not a package, so load the script by path like a user copying it would.
    spec = importlib.util.spec_from_file_location("churn_generate", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load()


@pytest.fixture(scope="module")
def churn() -> pd.DataFrame:
    frame: pd.DataFrame = gen.generate(20_000, seed=0)
    return frame


def test_generate_is_deterministic_for_a_seed() -> None:
    pd.testing.assert_frame_equal(gen.generate(500, seed=7), gen.generate(500, seed=7))
    assert not gen.generate(500, seed=7).equals(gen.generate(500, seed=8))


def test_generate_has_the_documented_columns_and_dtypes(churn: pd.DataFrame) -> None:
    assert list(churn.columns) == ["customer_id", *gen.FEATURES, gen.TARGET]
    for column in ["age", "tenure", "num_products", "has_cr_card", "is_active_member", "churn"]:
        assert churn[column].dtype == np.int64, column
    for column in ["balance", "estimated_salary"]:
        assert churn[column].dtype == np.float64, column
    for column in ["customer_id", "geography", "gender"]:
        assert pd.api.types.is_string_dtype(churn[column]), column
        assert churn[column].map(type).eq(str).all(), column


def test_generate_values_stay_in_their_ranges(churn: pd.DataFrame) -> None:
    assert churn["customer_id"].str.fullmatch(r"C\d{8}").all()
    assert churn["customer_id"].is_unique
    assert churn["age"].between(18, 92).all()
    assert 34 <= churn["age"].median() <= 42
    assert churn["age"].mean() > churn["age"].median()  # right-skewed
    assert churn["tenure"].between(0, 10).all()
    assert set(churn["num_products"]) <= {1, 2, 3, 4}
    assert churn["num_products"].isin([1, 2]).mean() > 0.9
    assert set(churn["has_cr_card"]) == {0, 1}
    assert 0.65 <= churn["has_cr_card"].mean() <= 0.75
    assert 0.45 <= churn["is_active_member"].mean() <= 0.55
    assert 0.25 <= (churn["balance"] == 0.0).mean() <= 0.35
    assert (churn["balance"] >= 0.0).all()
    assert 60_000 <= churn.loc[churn["balance"] > 0, "balance"].median() <= 95_000
    assert churn["estimated_salary"].between(10_000, 200_000).all()
    assert set(churn["gender"]) == {"Male", "Female"}
    shares = churn["geography"].value_counts(normalize=True)
    assert set(shares.index) == {"France", "Germany", "Spain"}
    assert 0.45 <= shares["France"] <= 0.55
    assert 0.2 <= shares["Germany"] <= 0.3
    assert set(churn["churn"]) == {0, 1}


def test_generate_churn_rate_is_about_twenty_percent(churn: pd.DataFrame) -> None:
    assert 0.15 <= churn["churn"].mean() <= 0.25


def test_generate_churn_depends_on_the_features_as_documented(churn: pd.DataFrame) -> None:
    rate = churn.groupby("is_active_member")["churn"].mean()
    assert rate[0] > rate[1]
    rate = churn.groupby("geography")["churn"].mean()
    assert rate["Germany"] > rate["France"]
    assert rate["Germany"] > rate["Spain"]
    many = churn.loc[churn["num_products"] >= 3, "churn"].mean()
    one = churn.loc[churn["num_products"] == 1, "churn"].mean()
    two = churn.loc[churn["num_products"] == 2, "churn"].mean()
    assert many > one > two
    middle_aged = churn.loc[churn["age"].between(40, 60), "churn"].mean()
    young = churn.loc[churn["age"] < 35, "churn"].mean()
    assert middle_aged > young
    rate = churn.groupby("gender")["churn"].mean()
    assert rate["Female"] > rate["Male"]


def test_generate_churn_is_learnable_by_a_logistic_regression(churn: pd.DataFrame) -> None:
    features = pd.get_dummies(
        churn[gen.FEATURES], columns=["geography", "gender", "num_products"], dtype=float
    )
    train, test = slice(0, 15_000), slice(15_000, None)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1_000))
    model.fit(features.iloc[train], churn[gen.TARGET].iloc[train])

    scores = model.predict_proba(features.iloc[test])[:, 1]

    assert roc_auc_score(churn[gen.TARGET].iloc[test], scores) > 0.75


def test_generate_drift_makes_customers_older(churn: pd.DataFrame) -> None:
    drifted = gen.generate(20_000, seed=0, drift=0.5)

    assert drifted["age"].mean() > churn["age"].mean() + 2
    assert (drifted["geography"] == "Germany").mean() > (churn["geography"] == "Germany").mean()
    assert drifted["is_active_member"].mean() < churn["is_active_member"].mean()


@pytest.mark.parametrize("drift", [-0.1, 1.5, float("nan")])
def test_generate_rejects_drift_outside_zero_one(drift: float) -> None:
    with pytest.raises(ValueError, match="drift"):
        gen.generate(10, drift=drift)


def test_generate_rejects_an_empty_data_set() -> None:
    with pytest.raises(ValueError, match="n_rows"):
        gen.generate(0)


@pytest.mark.parametrize("name", ["churn.csv", "churn.parquet"])
def test_script_writes_the_data_set_and_reports_it(tmp_path: Path, name: str) -> None:
    out = tmp_path / "nested" / name

    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--rows", "300", "--seed", "3", "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    written = pd.read_csv(out) if name.endswith(".csv") else pd.read_parquet(out)
    expected = gen.generate(300, seed=3)
    assert str(out) in proc.stdout
    assert "churn rate" in proc.stdout
    assert len(written) == 300
    assert written["customer_id"].tolist() == expected["customer_id"].tolist()
    assert written["churn"].tolist() == expected["churn"].tolist()


def test_script_rejects_an_unknown_extension(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "churn.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert proc.returncode == 2
    assert ".csv or .parquet" in proc.stderr
    assert not (tmp_path / "churn.json").exists()
