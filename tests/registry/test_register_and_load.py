"""Registering real models into the real MLflow registry, and loading them back verified."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelward
from modelward.config import Settings
from modelward.drift.profile import DatasetProfile
from modelward.errors import IntegrityError, RegistrationError, UnsafeModelFormat, UntrustedTypes
from modelward.registry import Registry, register_mlflow_model, register_model
from modelward.runtime import load_version


def _xy(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    return frame.drop(columns=["churn"]), frame["churn"]


def test_register_records_signature_metrics_params_dataset_lineage_and_profile(
    registry: Registry, churn_models: dict, churn_frame: pd.DataFrame, tmp_path: Path
) -> None:
    data = tmp_path / "train.parquet"
    churn_frame.to_parquet(data)
    info = register_model(
        registry,
        churn_models["logreg"],
        "churn",
        train_data=data,
        target="churn",
        metrics={"auc": 0.81},
        params={"C": 1.0},
        description="v1",
        tags={"team": "risk"},
    )
    assert (info.version, info.flavor, info.task) == ("1", "sklearn", "classification")
    assert info.description == "v1"
    assert info.tags["team"] == "risk"
    assert len(info.tags["modelward.dataset.sha256"]) == 64
    assert info.tags["modelward.dataset.path"] == str(data.resolve())

    run = registry.client.get_run(info.run_id)
    assert run.data.metrics["auc"] == 0.81
    assert run.data.params["C"] == "1.0"
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["train.parquet"]

    from mlflow.models import Model

    with registry.mlflow_context():
        mlmodel = Model.load(f"models:/churn/{info.version}")
    assert mlmodel.signature.inputs.input_names() == [c for c in churn_frame.columns if c != "churn"]
    assert mlmodel.saved_input_example_info is not None
    assert mlmodel.flavors["sklearn"]["serialization_format"] == "skops"

    loaded = load_version(registry, info)
    profile = loaded.profile
    assert profile.n_rows == len(churn_frame)
    assert set(profile.features) == set(mlmodel.signature.inputs.input_names())
    assert profile.features["geography"].kind == "categorical"
    age = profile.features["age"]
    assert age.count == len(churn_frame)
    assert sum(age.counts) == len(churn_frame)
    assert profile.prediction is not None
    assert profile.prediction.classes == ("0", "1")
    # compact: a few KB per feature
    assert len(profile.to_json()) / len(profile.features) < 3000


def test_loaded_model_predicts_like_the_original(
    registry: Registry, churn_models: dict, churn_frame: pd.DataFrame
) -> None:
    x, _ = _xy(churn_frame)
    info = register_model(registry, churn_models["forest"], "forest", train_data=churn_frame, target="churn")
    loaded = load_version(registry, info)
    np.testing.assert_array_equal(loaded.predict(x), churn_models["forest"].predict(x))
    np.testing.assert_allclose(loaded.predict_proba(x), churn_models["forest"].predict_proba(x))
    assert loaded.runtime == "sklearn-skops"
    assert loaded.classes == ("0", "1")
    # extra columns (ids, the label) are ignored; the schema's columns are used in order
    np.testing.assert_array_equal(loaded.predict(churn_frame.assign(customer_id="x")), loaded.predict(x))


def test_flipping_one_byte_of_a_model_file_refuses_the_load_naming_it(
    registry: Registry, churn_models: dict, churn_frame: pd.DataFrame, settings: Settings
) -> None:
    info = register_model(registry, churn_models["logreg"], "flip", train_data=churn_frame, target="churn")
    load_version(registry, info)  # intact: loads
    skops_files = list(Path(settings.home, "artifacts").rglob("model.skops"))
    assert len(skops_files) == 1
    raw = bytearray(skops_files[0].read_bytes())
    raw[len(raw) // 2] ^= 0x01
    skops_files[0].write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match=r"model/model\.skops sha256 .* \(the file was modified\)"):
        load_version(registry, info)


def test_an_edited_reference_profile_or_added_file_refuses_the_load(
    registry: Registry, churn_models: dict, churn_frame: pd.DataFrame, settings: Settings
) -> None:
    info = register_model(registry, churn_models["logreg"], "edited", train_data=churn_frame, target="churn")
    profile = next(Path(settings.home, "artifacts").rglob("reference_profile.json"))
    profile.write_text(profile.read_text().replace('"n_rows":2000', '"n_rows":2001'))
    model_dir = next(Path(settings.home, "artifacts").rglob("model.skops")).parent
    (model_dir / "extra.py").write_text("print('hi')\n")
    with pytest.raises(IntegrityError) as err:
        load_version(registry, info)
    assert any("reference_profile.json" in p for p in err.value.problems)
    assert "model/extra.py was added" in err.value.problems


def test_untrusted_skops_type_is_refused_unless_explicitly_trusted(
    registry: Registry, churn_frame: pd.DataFrame
) -> None:
    import operator

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    x, y = _xy(churn_frame[["age", "tenure", "churn"]])
    model = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression()).fit(x, y)
    with pytest.raises(UntrustedTypes, match=r"_operator\.neg"):
        register_model(registry, model, "neg", train_data=x)
    assert [m.name for m in registry.models()] == []  # nothing half-registered

    info = register_model(registry, model, "neg", train_data=x, trusted_types=["_operator.neg"])
    loaded = load_version(registry, info)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert registry.audit.events(action="register")[-1].payload["trusted_types"] == ["_operator.neg"]


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm"])
def test_xgboost_and_lightgbm_models_register_and_load_without_pickle(
    registry: Registry, churn_frame: pd.DataFrame, kind: str
) -> None:
    x, y = _xy(churn_frame.drop(columns=["geography", "gender"]))
    if kind == "xgboost":
        import xgboost

        model = xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(x, y)
    else:
        import lightgbm

        model = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(x, y)
    info = register_model(registry, model, kind, train_data=x)
    assert info.flavor == kind
    loaded = load_version(registry, info)
    assert "pyfunc" not in loaded.runtime
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x), rtol=1e-6)


def test_regressor_has_no_predict_proba_and_a_numeric_prediction_profile(
    registry: Registry, churn_frame: pd.DataFrame
) -> None:
    from sklearn.linear_model import Ridge

    x = churn_frame[["age", "tenure", "balance"]]
    model = Ridge().fit(x, churn_frame["estimated_salary"])
    info = register_model(registry, model, "salary", train_data=x)
    loaded = load_version(registry, info)
    assert loaded.task == "regression"
    assert loaded.profile.prediction is not None
    assert loaded.profile.prediction.scores is not None
    with pytest.raises(modelward.errors.ModelwardError, match="no predict_proba"):
        loaded.predict_proba(x)


def test_register_mlflow_model_from_a_run_uri_with_reference_file(
    registry: Registry, churn_models: dict, churn_frame: pd.DataFrame, tmp_path: Path
) -> None:
    import mlflow
    import mlflow.sklearn

    ref = tmp_path / "ref.csv"
    churn_frame.to_csv(ref, index=False)
    with registry.mlflow_context(), mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            churn_models["logreg"],
            name="model",
            serialization_format="skops",
            input_example=churn_frame.drop(columns=["churn"]).head(3),
        )
    info = register_mlflow_model(
        registry, f"runs:/{run.info.run_id}/model", "external", reference_data=ref, target="churn"
    )
    loaded = load_version(registry, info)
    x, _ = _xy(churn_frame)
    np.testing.assert_array_equal(loaded.predict(x), churn_models["logreg"].predict(x))
    assert loaded.profile.n_rows == len(churn_frame)
    assert loaded.profile.prediction is not None
    assert loaded.profile.prediction.classes == ("0", "1")


def test_pickled_model_needs_explicit_opt_in(
    registry: Registry, churn_models: dict, churn_frame: pd.DataFrame
) -> None:
    import mlflow
    import mlflow.sklearn

    with registry.mlflow_context(), mlflow.start_run() as run:
        mlflow.sklearn.log_model(churn_models["logreg"], name="model", serialization_format="cloudpickle")
    uri = f"runs:/{run.info.run_id}/model"
    with pytest.raises(UnsafeModelFormat, match="allow_pickle"):
        register_mlflow_model(registry, uri, "pickled", reference_data=churn_frame, target="churn")
    info = register_mlflow_model(
        registry, uri, "pickled", reference_data=churn_frame, target="churn", allow_pickle=True
    )
    loaded = load_version(registry, info)
    assert loaded.runtime.startswith("mlflow-pyfunc")
    assert registry.audit.events(action="register")[-1].payload["allow_pickle"] is True


def test_version_registered_outside_modelward_is_not_loaded_unverified(
    registry: Registry, churn_models: dict
) -> None:
    import mlflow
    import mlflow.sklearn

    with registry.mlflow_context():
        mlflow.sklearn.log_model(
            churn_models["logreg"], name="model", serialization_format="skops", registered_model_name="raw"
        )
    with pytest.raises(IntegrityError, match="no sha256 pins"):
        load_version(registry, registry.resolve("raw"))


def test_dvc_pointer_and_git_commit_are_recorded(
    registry: Registry, churn_models: dict, churn_frame: pd.DataFrame, tmp_path: Path
) -> None:
    import subprocess

    repo = tmp_path / "repo"
    (repo / ".dvc").mkdir(parents=True)
    data = repo / "train.parquet"
    churn_frame.to_parquet(data)
    (repo / "train.parquet.dvc").write_text(
        "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  size: 10\n  path: train.parquet\n"
    )
    git = ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "train.parquet.dvc"], check=True)
    subprocess.run([*git, "commit", "-qm", "data"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    info = register_model(registry, churn_models["logreg"], "lineage", train_data=data, target="churn")
    assert info.tags["modelward.dvc.md5"] == "0123456789abcdef0123456789abcdef"
    assert info.tags["modelward.git.commit"] == head
    payload = registry.audit.events(action="register")[-1].payload
    assert payload["git_commit"] == head


def test_bad_registrations_fail_clearly_and_leave_nothing(
    registry: Registry, churn_models: dict, churn_frame: pd.DataFrame
) -> None:
    with pytest.raises(RegistrationError, match="target column 'label'"):
        register_model(registry, churn_models["logreg"], "bad", train_data=churn_frame, target="label")
    with pytest.raises(RegistrationError, match="lacks the model's feature"):
        register_model(
            registry, churn_models["logreg"], "bad", train_data=churn_frame[["age", "churn"]], target="churn"
        )
    with pytest.raises(RegistrationError, match="no predict"):
        register_model(registry, object(), "bad", train_data=churn_frame)
    with pytest.raises(modelward.errors.InvalidReference):
        register_model(registry, churn_models["logreg"], "bad:name", train_data=churn_frame, target="churn")
    with pytest.raises(RegistrationError, match="does not exist"):
        register_model(
            registry, churn_models["logreg"], "bad", train_data="/nonexistent.parquet", target="churn"
        )
    assert registry.models() == []
    assert registry.audit.events() == []


def test_top_level_register_and_load_use_the_settings(
    settings: Settings, churn_models: dict, churn_frame: pd.DataFrame
) -> None:
    info = modelward.register(
        churn_models["logreg"], "top", train_data=churn_frame, target="churn", settings=settings
    )
    model = modelward.load("top", settings=settings)
    assert model.version == info.version
    assert isinstance(model.profile, DatasetProfile)
    assert Path(settings.home, "mlflow.db").is_file()
    assert Path(settings.home, "modelward.db").is_file()
    assert json.loads(model.profile.to_json())["format"] == "modelward.profile/1"


def test_registering_a_registered_version_again_keeps_both_loadable(
    registry: Registry, churn_models: dict, churn_frame: pd.DataFrame
) -> None:
    info = register_model(registry, churn_models["logreg"], "source", train_data=churn_frame, target="churn")
    copy = register_mlflow_model(
        registry, "models:/source/1", "copy", reference_data=churn_frame, target="churn"
    )
    # MLflow rewrites its registered_model_meta file in the shared folder; it is not pinned
    assert load_version(registry, info).version == "1"
    assert load_version(registry, copy).name == "copy"
