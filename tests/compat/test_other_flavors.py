"""A classifier without predict_proba (Fairlearn), an ONNX model, CatBoost when installed."""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import pytest

from tests.compat.conftest import (
    Compat,
    check_against_pyfunc,
    compat_case,
    numeric_frame,
    pyfunc_predict,
    run_cli,
)

FRAME = numeric_frame(seed=5)
X, Y = FRAME.drop(columns=["label"]), FRAME["label"]
ROWS = X.tail(5).reset_index(drop=True)


def _fairlearn() -> Any:
    import mlflow.sklearn
    from fairlearn.reductions import DemographicParity, ExponentiatedGradient
    from sklearn.linear_model import LogisticRegression

    sensitive = (X["age"] > 45).astype(int)
    model = ExponentiatedGradient(LogisticRegression(max_iter=500), DemographicParity(), max_iter=10)
    with warnings.catch_warnings():  # Fairlearn 0.15 sets Series values the way pandas 3 deprecates
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        model.fit(X, Y, sensitive_features=sensitive)
    # Its predict draws each row's label from a mixture of classifiers: the answers compared are
    # those of rows every classifier of the mixture labels alike, where the draw is certain.
    weighted = [est for est, weight in zip(model.predictors_, model.weights_, strict=True) if weight > 0]
    votes = np.array([est.predict(X) for est in weighted])
    FAIR.rows = X[(votes == votes[0]).all(axis=0)].tail(5).reset_index(drop=True)
    assert len(FAIR.rows) == 5
    # skops cannot save it (Fairlearn keeps Cython objects): tutorials log it with cloudpickle.
    return mlflow.sklearn.log_model(
        model, name="model", serialization_format="cloudpickle", pip_requirements=["fairlearn"]
    )


def _onnx() -> Any:
    import mlflow.onnx
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=500).fit(X, Y)
    onx = to_onnx(model, X[:1].to_numpy(np.float32))
    return mlflow.onnx.log_model(onx, name="model", pip_requirements=["onnx"])


def _catboost() -> Any:
    import catboost
    import mlflow.catboost

    model = catboost.CatBoostClassifier(iterations=20, depth=3, verbose=False, allow_writing_files=False)
    model.fit(X, Y)
    return mlflow.catboost.log_model(model, name="model", pip_requirements=["catboost"])


FAIR = compat_case("fair-eg", _fairlearn, FRAME, ROWS, target="label", args=("--allow-pickle",))
compat_case("onnx-logreg", _onnx, FRAME, ROWS, target="label")
try:
    import catboost  # noqa: F401
except ImportError:  # the test below skips
    pass
else:
    compat_case("catboost", _catboost, FRAME, ROWS, target="label")


def test_a_classifier_without_predict_proba_is_served_as_a_classifier(compat: Compat) -> None:
    check_against_pyfunc(compat, "fair-eg")
    shown = run_cli(compat.home, "show", "fair-eg", "--quick", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["task"] == "classification"


def test_an_onnx_model_logged_with_mlflow_onnx_serves_what_pyfunc_predicts(compat: Compat) -> None:
    case = compat.case("onnx-logreg")
    raw = pyfunc_predict(compat.home, case.uri, case.rows.astype(np.float32))
    # MLflow's ONNX pyfunc answers a frame of the graph's outputs: the label is the first.
    check_against_pyfunc(compat, "onnx-logreg", np.asarray(raw[:, 0] if raw.ndim == 2 else raw))


def test_a_catboost_model_serves_what_pyfunc_predicts(compat: Compat) -> None:
    pytest.importorskip("catboost")
    check_against_pyfunc(compat, "catboost")
