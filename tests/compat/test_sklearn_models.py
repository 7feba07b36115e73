"""scikit-learn models as tutorials log them: a pipeline with and without a signature, a random forest."""

from __future__ import annotations

from typing import Any

import httpx
import pandas as pd

from tests.compat.conftest import (
    Compat,
    assert_values_match,
    check_against_pyfunc,
    compat_case,
    mixed_frame,
    numeric_frame,
    pyfunc_predict,
    rest_predict,
    run_cli,
)

MIXED = mixed_frame()
NUMERIC = numeric_frame()
SKLEARN = ["scikit-learn"]  # given: MLflow would infer it in a subprocess, seconds per model
ROWS = MIXED.drop(columns=["label"]).tail(5).reset_index(drop=True)
NUMERIC_ROWS = NUMERIC.drop(columns=["label"]).tail(5).reset_index(drop=True)


def _pipeline() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "income", "tenure", "score"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )
    x, y = MIXED.drop(columns=["label"]), MIXED["label"]
    return Pipeline([("pre", pre), ("model", LogisticRegression(max_iter=500))]).fit(x, y)


def _log_pipeline_with_signature() -> Any:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    model = _pipeline()
    x = MIXED.drop(columns=["label"])
    signature = infer_signature(x, model.predict(x))
    return mlflow.sklearn.log_model(
        model, name="model", signature=signature, input_example=x.head(3), pip_requirements=SKLEARN
    )


def _log_pipeline_without_signature() -> Any:
    import mlflow.sklearn

    return mlflow.sklearn.log_model(_pipeline(), name="model", pip_requirements=SKLEARN)


def _log_forest() -> Any:
    import mlflow.sklearn
    from sklearn.ensemble import RandomForestClassifier

    x, y = NUMERIC.drop(columns=["label"]), NUMERIC["label"]
    model = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(x, y)
    return mlflow.sklearn.log_model(
        model, name="model", skops_trusted_types=["sklearn.tree._tree.Tree"], pip_requirements=SKLEARN
    )


compat_case("sk-pipeline", _log_pipeline_with_signature, MIXED, ROWS, target="label")
compat_case("sk-pipeline-nosig", _log_pipeline_without_signature, MIXED, ROWS, target="label")
compat_case("sk-forest", _log_forest, NUMERIC, NUMERIC_ROWS, target="label")


def test_a_pipeline_logged_with_a_signature_serves_what_pyfunc_predicts(compat: Compat) -> None:
    check_against_pyfunc(compat, "sk-pipeline")


def test_a_pipeline_logged_without_a_signature_serves_what_pyfunc_predicts(compat: Compat) -> None:
    check_against_pyfunc(compat, "sk-pipeline-nosig")


def test_a_random_forest_in_skops_with_trusted_types_serves_what_pyfunc_predicts(compat: Compat) -> None:
    check_against_pyfunc(compat, "sk-forest")


def test_classifier_probabilities_come_back_over_rest(compat: Compat) -> None:
    case = compat.case("sk-forest")
    served = rest_predict(compat.served(), "sk-forest", case.rows)
    assert all(set(p["probabilities"]) == {"0", "1"} for p in served)
    assert isinstance(case.rows, pd.DataFrame)


def test_a_model_without_signature_has_a_schema_everywhere_and_no_500(compat: Compat) -> None:
    compat.case("sk-pipeline-nosig")
    url = compat.served().url
    empty = httpx.post(f"{url}/models/sk-pipeline-nosig/predict", json={"features": {}}, timeout=30)
    assert empty.status_code == 422 and "missing field 'age'" in empty.text
    meta = httpx.get(f"{url}/v2/models/sk-pipeline-nosig", timeout=30).json()
    assert [i["name"] for i in meta["inputs"]] == ["age", "income", "tenure", "score", "city"]
    ready = httpx.get(f"{url}/ready", timeout=30).json()
    assert ready["models"]["sk-pipeline-nosig"]["ready"] is True
    shown = run_cli(compat.home, "show", "sk-pipeline-nosig")
    assert shown.returncode == 0, shown.stderr
    assert "schema       inferred from the model feature names at registration" in shown.stdout


def test_batch_scoring_a_model_without_signature_scores_every_row(compat: Compat) -> None:
    case = compat.case("sk-pipeline-nosig")
    rows, out = compat.home / "nosig-rows.csv", compat.home / "nosig-scored.csv"
    case.rows.to_csv(rows, index=False)
    done = run_cli(compat.home, "predict", "sk-pipeline-nosig", "--input", str(rows), "--output", str(out))
    assert done.returncode == 0, done.stderr
    scored = pd.read_csv(out)
    assert len(scored) == len(case.rows)
    assert_values_match(scored["prediction"].to_numpy(), pyfunc_predict(compat.home, case.uri, case.rows))
