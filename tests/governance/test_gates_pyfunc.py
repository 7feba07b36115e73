"""The gates score a pyfunc classifier: a model without ``classes_`` that answers integer labels,
whose classes were decided at registration from the target (as text, "0" and "1")."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import modelward
from modelward.api import open_registry
from modelward.config import Settings
from modelward.governance.holdout import score_holdout

mlflow = pytest.importorskip("mlflow")


class Threshold(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """1 when ``x`` is above ``cut``: integer answers, no predict_proba, no classes_."""

    def __init__(self, cut: float) -> None:
        self.cut = cut

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.Series:
        return (model_input["x"] > self.cut).astype("int64")


@pytest.fixture
def threshold_models(settings: Settings) -> pd.DataFrame:
    from mlflow.models import infer_signature

    rng = np.random.default_rng(0)
    data = pd.DataFrame({"x": rng.uniform(-1, 1, 400)})
    data["label"] = (data["x"] > 0).astype("int64")
    for cut in (0.0, 0.5):  # version 1 right, version 2 wrong on a quarter of the rows
        # mlflow_context points MLflow at this home for the block only (no global left behind).
        with open_registry(settings) as registry, registry.mlflow_context(), mlflow.start_run() as run:
            model = Threshold(cut)
            signature = infer_signature(data[["x"]], model.predict(None, data[["x"]]))
            mlflow.pyfunc.log_model(
                name="model", python_model=model, signature=signature, pip_requirements=["mlflow"]
            )
        modelward.register_mlflow_model(
            f"runs:/{run.info.run_id}/model",
            "threshold",
            reference_data=data,
            target="label",
            task="classification",
            allow_pickle=True,
            settings=settings,
        )
    modelward.promote("threshold", 1, settings=settings)
    return data


def test_a_pyfunc_classifier_answering_integers_is_scored_against_its_text_classes(
    threshold_models: pd.DataFrame, settings: Settings
) -> None:
    loaded = modelward.load("threshold:1", settings=settings)
    assert loaded.class_values == ["0", "1"]
    scored = score_holdout(loaded, threshold_models, "label")
    assert scored.metric("accuracy") == 1.0
    assert scored.metric("f1") == 1.0


def test_the_gates_hold_a_worse_pyfunc_update_back_on_accuracy(
    threshold_models: pd.DataFrame, settings: Settings, tmp_path: Any
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("metrics: {accuracy: {min: 0.9}}\nregression: {metric: accuracy, margin: 0.02}\n")
    result = modelward.validate("threshold:2", data=threshold_models, policy=policy, settings=settings)
    gates = {g.name: g for g in result.gates}
    expected = float(np.mean((threshold_models["x"] > 0.5) == (threshold_models["x"] > 0)))
    assert gates["metric:accuracy"].verdict == "fail"
    assert gates["metric:accuracy"].value == pytest.approx(expected)
    assert gates["regression"].verdict == "fail"
    assert gates["regression"].detail["champion"] == 1.0
