"""XGBoost and LightGBM as tutorials log them: the scikit-learn API and the native Booster."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.compat.conftest import (
    Compat,
    check_against_pyfunc,
    compat_case,
    numeric_frame,
    rest_predict,
)

FRAME = numeric_frame(seed=3)
X, Y = FRAME.drop(columns=["label"]), FRAME["label"]
ROWS = X.tail(5).reset_index(drop=True)


def _xgb_classifier() -> Any:
    import mlflow.xgboost
    import xgboost as xgb

    model = xgb.XGBClassifier(n_estimators=10, max_depth=3).fit(X, Y)
    return mlflow.xgboost.log_model(model, name="model", pip_requirements=["xgboost"])


def _xgb_booster() -> Any:
    import mlflow.xgboost
    import xgboost as xgb

    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3}, xgb.DMatrix(X, label=Y), 10)
    return mlflow.xgboost.log_model(booster, name="model", pip_requirements=["xgboost"])


def _lgb_classifier() -> Any:
    import lightgbm as lgb
    import mlflow.lightgbm

    model = lgb.LGBMClassifier(n_estimators=10, num_leaves=7, verbose=-1).fit(X, Y)
    return mlflow.lightgbm.log_model(model, name="model", pip_requirements=["lightgbm"])


def _lgb_booster() -> Any:
    import lightgbm as lgb
    import mlflow.lightgbm

    params = {"objective": "binary", "num_leaves": 7, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(X, label=Y), num_boost_round=10)
    return mlflow.lightgbm.log_model(booster, name="model", pip_requirements=["lightgbm"])


compat_case("xgb-sklearn", _xgb_classifier, FRAME, ROWS, target="label")
compat_case("xgb-booster", _xgb_booster, FRAME, ROWS, target="label")
compat_case("lgb-sklearn", _lgb_classifier, FRAME, ROWS, target="label")
compat_case("lgb-booster", _lgb_booster, FRAME, ROWS, target="label")

CASES = ["xgb-sklearn", "xgb-booster", "lgb-sklearn", "lgb-booster"]


@pytest.mark.parametrize("name", CASES)
def test_a_booster_model_serves_what_pyfunc_predicts_over_rest_and_oip(compat: Compat, name: str) -> None:
    check_against_pyfunc(compat, name)


def test_the_scikit_learn_api_boosters_give_probabilities(compat: Compat) -> None:
    for name in ("xgb-sklearn", "lgb-sklearn"):
        case = compat.case(name)
        served = rest_predict(compat.served(), name, case.rows)
        assert all(set(p["probabilities"]) == {"0", "1"} for p in served), name


def test_boosters_run_on_the_compiled_runtime_where_it_applies(compat: Compat) -> None:
    runtimes = {}
    for name in CASES:
        compat.case(name)
        detail = httpx.get(f"{compat.served().url}/models/{name}", timeout=30).json()
        runtimes[name] = detail["runtime"]
    assert runtimes == {
        "xgb-sklearn": "onnxruntime",
        "xgb-booster": "xgboost-booster",  # MLflow's pyfunc wrapper builds its DMatrix
        "lgb-sklearn": "onnxruntime",
        "lgb-booster": "lightgbm-native",
    }
