"""Registering models MLflow logged: schemas without signatures, the task, refusals that say why."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelward.config import Settings
from modelward.errors import LifecycleError, RegistrationError
from modelward.registry import Registry, register_mlflow_model
from modelward.runtime import load_version


def _frame(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.random(n), "b": rng.random(n), "c": rng.integers(0, 5, n)})
    frame["y"] = (frame["a"] + frame["b"] > 1).astype(np.int64)
    return frame


def _log_sklearn(registry: Registry, model: object, **kw: object) -> str:
    import mlflow
    import mlflow.sklearn

    with registry.mlflow_context(), mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"], **kw)
    return f"runs:/{run.info.run_id}/model"


def test_a_model_without_signature_gets_its_fitted_feature_names_as_schema(registry: Registry) -> None:
    from sklearn.linear_model import LogisticRegression

    frame = _frame()
    model = LogisticRegression().fit(frame[["b", "a"]], frame["y"])
    uri = _log_sklearn(registry, model)
    info = register_mlflow_model(registry, uri, "nosig", reference_data=frame, target="y")
    loaded = load_version(registry, info)
    assert loaded.schema.names == ("b", "a")  # the model's order, not the data's; "c" left out
    assert [f.type for f in loaded.schema.fields] == ["double", "double"]
    assert loaded.record["schema_source"] == "model feature names"
    assert registry.signature(info).names == ("b", "a")
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame[["b", "a"]]))


@pytest.mark.filterwarnings("ignore:X has feature names:UserWarning")  # scikit-learn's, fitted on an array
def test_a_model_without_signature_or_feature_names_takes_the_reference_columns(registry: Registry) -> None:
    from sklearn.linear_model import Ridge

    frame = _frame()
    model = Ridge().fit(frame[["a", "b", "c"]].to_numpy(), frame["y"])
    uri = _log_sklearn(registry, model)
    info = register_mlflow_model(registry, uri, "bare", reference_data=frame, target="y", task="regression")
    loaded = load_version(registry, info)
    assert loaded.schema.names == ("a", "b", "c")
    assert loaded.record["schema_source"] == "reference data"
    assert loaded.task == "regression"


def test_reference_data_without_the_models_features_is_refused_with_their_names(registry: Registry) -> None:
    from sklearn.linear_model import LogisticRegression

    frame = _frame()
    model = LogisticRegression().fit(frame[["a", "b"]], frame["y"])
    uri = _log_sklearn(registry, model)
    with pytest.raises(RegistrationError, match=r"lacks feature\(s\) it was fitted on: b"):
        register_mlflow_model(registry, uri, "nob", reference_data=frame.drop(columns=["b"]), target="y")
    with pytest.raises(RegistrationError, match="no input schema"):
        register_mlflow_model(
            registry,
            _log_sklearn(registry, LogisticRegression().fit(frame[["a"]].to_numpy(), frame["y"])),
            "nocols",
            reference_data=frame[["y"]],
            target="y",
        )


def test_a_declared_task_wins_and_a_wrong_one_is_refused(registry: Registry) -> None:
    from sklearn.linear_model import LinearRegression

    frame = _frame()
    model = LinearRegression().fit(frame[["a", "b"]], frame["y"])
    uri = _log_sklearn(registry, model)
    with pytest.raises(RegistrationError, match="task must be one of"):
        register_mlflow_model(registry, uri, "t", reference_data=frame, target="y", task="ranking")
    info = register_mlflow_model(registry, uri, "t", reference_data=frame, target="y")
    assert info.task == "regression"  # float outputs are not labels of the 0/1 target


def test_a_run_the_tracking_store_lacks_names_the_store_it_searched(registry: Registry) -> None:
    with pytest.raises(
        RegistrationError, match=re.escape(f"from the tracking store {registry.tracking_uri}")
    ):
        register_mlflow_model(registry, "runs:/0123456789abcdef/model", "x", reference_data=_frame())


def test_promoting_a_version_registered_through_another_home_is_refused_with_that_reason(
    registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    frame = _frame()
    uri = _log_sklearn(registry, LogisticRegression().fit(frame[["a", "b"]], frame["y"]))
    register_mlflow_model(registry, uri, "elsewhere", reference_data=frame, target="y")
    other_home = tmp_path / "other-home"
    other = Settings(home=other_home, actor="tester", tracking_uri=registry.tracking_uri)
    with (
        Registry.from_settings(other).open() as second,
        pytest.raises(LifecycleError, match="registered through another modelward home"),
    ):
        second.promote("elsewhere", 1)
    assert json.dumps(registry.promote("elsewhere", 1).to_dict())  # the home that registered it can
