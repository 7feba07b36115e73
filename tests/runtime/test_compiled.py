"""Compiled inference: ONNX conversion or native fast paths, the equivalence check, the cache, fallbacks."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.conftest import make_pipeline

from modelward.drift.profile import build_profile, profile_predictions
from modelward.registry.types import VersionInfo
from modelward.runtime.compiled import CompiledModel, CompileResult, compile_model, sample_frame
from modelward.runtime.model import LoadedModel
from modelward.schema import FeatureSchema, Field

NUMERIC = ["age", "tenure", "balance", "num_products", "has_cr_card", "is_active_member", "estimated_salary"]
HINT = "onnxruntime is not installed: pip install 'modelward[onnx]'"


def _field(name: str, s: pd.Series) -> Field:
    kind = s.dtype.kind
    return Field(name, "long" if kind in "iu" else "double" if kind == "f" else "string")


def _loaded(native: Any, frame: pd.DataFrame, task: str = "classification") -> LoadedModel:
    """A LoadedModel as the loader builds it: signature, reference profile with predictions."""
    profile = build_profile(frame)
    if task == "classification":
        classes = list(native.classes_)
        outputs = profile_predictions(native.predict(frame), native.predict_proba(frame), classes)
    else:
        outputs = profile_predictions(native.predict(frame))
    info = VersionInfo("m", "1", (), None, None, "", "")
    return LoadedModel(
        info=info,
        native=native,
        runtime="sklearn-skops",
        task=task,
        classes=tuple(str(c) for c in getattr(native, "classes_", ())),
        schema=FeatureSchema(tuple(_field(str(c), frame[c]) for c in frame.columns)),
        profile=profile.with_prediction(outputs),
    )


def _xy(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    return frame.drop(columns=["churn"]), frame["churn"]


def _assert_same(compiled: Any, native: Any, rows: pd.DataFrame, tolerance: float = 1e-5) -> None:
    labels = compiled.predict(rows)
    assert labels.tolist() == native.predict(rows).tolist()
    if hasattr(native, "predict_proba"):
        proba = compiled.predict_proba(rows)
        assert proba.shape == native.predict_proba(rows).shape
        assert np.max(np.abs(proba - native.predict_proba(rows))) <= tolerance


def _fresh(frame: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    """Rows the model never saw: resampled and jittered numbers, and an unseen category."""
    rows = frame.sample(300, random_state=seed, replace=True).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    rows["balance"] = rows["balance"] * rng.uniform(0.9, 1.1, len(rows))
    if "geography" in rows:
        rows.loc[:10, "geography"] = "Atlantis"
    return rows


def test_logistic_regression_pipeline_with_categorical_columns_compiles_and_matches(
    churn_frame: pd.DataFrame, churn_models: dict[str, Any]
) -> None:
    pytest.importorskip("onnxruntime")
    x, _ = _xy(churn_frame)
    native = churn_models["logreg"]
    compiled, result = compile_model(_loaded(native, x))
    assert isinstance(compiled, CompiledModel)
    assert (result.runtime, result.compiled, result.reason) == ("onnxruntime", True, None)
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-5
    assert result.sha256 is not None and len(result.sha256) == 64
    assert result.sample_rows == 2000
    rows = _fresh(x)
    _assert_same(compiled, native, rows)
    # Column order and extra columns do not matter; labels keep the model's dtype.
    shuffled = rows[list(reversed(rows.columns))].assign(customer_id="c1")
    assert compiled.predict(shuffled).dtype == native.predict(rows).dtype
    _assert_same(compiled, native, shuffled)
    # The no-pandas hot path answers the same.
    labels, proba = compiled.predict_arrays({c: rows[c].to_numpy() for c in rows.columns})
    assert labels.tolist() == native.predict(rows).tolist()
    assert proba is not None and np.allclose(proba, native.predict_proba(rows), atol=1e-5, rtol=0)


def test_random_forest_compiles_and_matches_scikit_learn(churn_frame: pd.DataFrame) -> None:
    pytest.importorskip("onnxruntime")
    from sklearn.ensemble import RandomForestClassifier

    x, y = _xy(churn_frame)
    x = x[NUMERIC]
    native = RandomForestClassifier(n_estimators=100, min_samples_leaf=5, random_state=0).fit(x, y)
    compiled, result = compile_model(_loaded(native, x))
    assert (result.runtime, result.compiled) == ("onnxruntime", True)
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-5
    _assert_same(compiled, native, _fresh(x))
    # Its speed against scikit-learn per row is measured by benchmarks/latency.py, not asserted here.


def test_hist_gradient_boosting_pipeline_compiles_with_protobuf_below_7(churn_frame: pd.DataFrame) -> None:
    """skl2onnx 1.20 writes a Python bool into an int attribute of HistGradientBoosting's trees, which
    protobuf 7 refuses: the onnx extra pins protobuf<7, with which the model compiles."""
    pytest.importorskip("onnxruntime")
    import google.protobuf
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = _xy(churn_frame)
    estimator = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.05, random_state=0)
    native = make_pipeline(estimator).fit(x, y)
    compiled, result = compile_model(_loaded(native, x))
    if int(google.protobuf.__version__.split(".")[0]) >= 7:
        assert compiled is native and not result.compiled
        assert result.reason is not None and "got a boolean" in result.reason
        return
    assert (result.runtime, result.compiled) == ("onnxruntime", True)
    _assert_same(compiled, native, _fresh(x))


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_boosters_compile_to_onnx_and_match(churn_frame: pd.DataFrame, library: str) -> None:
    pytest.importorskip("onnxruntime")
    native = _booster(library, churn_frame)
    x = churn_frame[NUMERIC]
    compiled, result = compile_model(_loaded(native, x))
    assert (result.runtime, result.compiled) == ("onnxruntime", True)
    _assert_same(compiled, native, _fresh(x))


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_boosters_use_their_native_fast_path_without_onnxruntime(
    churn_frame: pd.DataFrame, library: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    native = _booster(library, churn_frame)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    x = churn_frame[NUMERIC]
    compiled, result = compile_model(_loaded(native, x))
    assert (result.runtime, result.compiled) == (f"{library}-native", True)
    assert result.reason == HINT
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-5
    _assert_same(compiled, native, _fresh(x), tolerance=1e-6)


def _booster(library: str, frame: pd.DataFrame) -> Any:
    x, y = _xy(frame)
    if library == "xgboost":
        xgboost = pytest.importorskip("xgboost")
        return xgboost.XGBClassifier(n_estimators=60, max_depth=4).fit(x[NUMERIC], y)
    lightgbm = pytest.importorskip("lightgbm")
    return lightgbm.LGBMClassifier(n_estimators=60, verbose=-1).fit(x[NUMERIC], y)


def test_without_onnxruntime_a_scikit_learn_model_stays_native_with_the_install_hint(
    churn_frame: pd.DataFrame, churn_models: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    native = churn_models["logreg"]
    used, result = compile_model(_loaded(native, _xy(churn_frame)[0]))
    assert used is native
    assert result == CompileResult("sklearn-skops", False, HINT, None, None, result.seconds, False, 2000)


def test_a_model_that_does_not_convert_falls_back_with_a_logged_reason_and_still_predicts(
    churn_frame: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("onnxruntime")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    x, y = _xy(churn_frame)
    x = x[NUMERIC]
    native = Pipeline([("log", FunctionTransformer(np.log1p)), ("model", LogisticRegression(max_iter=500))])
    native.fit(x, y)
    model = _loaded(native, x)
    with caplog.at_level(logging.WARNING, logger="modelward.runtime.compiled"):
        used, result = compile_model(model)
    assert used is native and not result.compiled and result.runtime == "sklearn-skops"
    assert result.reason is not None and result.reason.startswith("ONNX conversion failed")
    assert "FunctionTransformer" in result.reason
    assert any(
        r.levelno == logging.WARNING and "serving the native model" in r.message for r in caplog.records
    )
    assert model.predict(x.head()).tolist() == native.predict(x.head()).tolist()


def test_strings_that_reach_a_model_without_a_column_transformer_fall_back() -> None:
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    frame = pd.DataFrame({"colour": ["red", "green", "blue", "red"] * 10, "shape": ["o", "x"] * 20})
    native = Pipeline([("enc", OrdinalEncoder()), ("knn", KNeighborsClassifier(3))])
    native.fit(frame, [0, 1, 1, 0] * 10)
    used, result = compile_model(_loaded(native, frame))
    assert used is native and not result.compiled
    assert result.reason is not None
    assert "string column(s) colour, shape reach the model without a ColumnTransformer" in result.reason


def test_a_corrupted_cache_file_is_detected_and_recompiled(
    churn_frame: pd.DataFrame,
    churn_models: dict[str, Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pytest.importorskip("onnxruntime")
    model = _loaded(churn_models["logreg"], _xy(churn_frame)[0])
    _, first = compile_model(model, cache_dir=tmp_path)
    (onnx_file,) = tmp_path.glob("*.onnx")
    sidecar = json.loads(onnx_file.with_suffix(".json").read_text())
    assert sidecar["sha256"] == first.sha256 and not first.cached
    assert sidecar["format"] == "modelward.compiled/1" and "onnxruntime" in sidecar["versions"]

    _, second = compile_model(model, cache_dir=tmp_path)
    assert second.cached and second.sha256 == first.sha256

    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="modelward.runtime.compiled"):
        compiled, third = compile_model(model, cache_dir=tmp_path)
    assert third.compiled and not third.cached
    assert any("the file changed, recompiling" in r.message for r in caplog.records)
    pinned = json.loads(onnx_file.with_suffix(".json").read_text())["sha256"]
    import hashlib

    assert hashlib.sha256(onnx_file.read_bytes()).hexdigest() == pinned == third.sha256
    _assert_same(compiled, churn_models["logreg"], _fresh(_xy(churn_frame)[0]))


def test_outputs_that_do_not_match_fall_back_to_the_native_model(
    churn_frame: pd.DataFrame, churn_models: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    from modelward.runtime import _convert

    native = churn_models["logreg"]
    model = _loaded(native, _xy(churn_frame)[0])
    original = _convert.OnnxRunner.__call__

    def noisy(self: Any, columns: Any) -> Any:
        labels, proba = original(self, columns)
        return labels, proba + 1e-3

    monkeypatch.setattr(_convert.OnnxRunner, "__call__", noisy)
    used, result = compile_model(model)
    assert used is native and not result.compiled
    assert result.reason is not None
    assert result.reason.startswith("the ONNX model does not match the native one: probabilities differ")

    monkeypatch.undo()
    used, result = compile_model(model, tolerance=0.0)  # float noise alone is too much then
    assert result.compiled == (result.max_abs_diff == 0.0)


def test_a_regression_pipeline_compiles_and_matches(churn_frame: pd.DataFrame) -> None:
    pytest.importorskip("onnxruntime")
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import Ridge

    x = churn_frame.drop(columns=["churn", "estimated_salary"])
    y = churn_frame["estimated_salary"]
    for estimator in (Ridge(), RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0)):
        native = make_pipeline(estimator)
        native.steps[0][1].transformers[0][2].remove("estimated_salary")
        native.fit(x, y)
        compiled, result = compile_model(_loaded(native, x, task="regression"))
        assert (result.runtime, result.compiled) == ("onnxruntime", True), result.reason
        rows = _fresh(x)
        got, want = compiled.predict(rows), native.predict(rows)
        assert np.all(np.abs(got - want) <= 1e-5 * np.maximum(1.0, np.abs(want)))


def test_sample_frame_draws_rows_from_the_profile_with_the_schema_types(churn_frame: pd.DataFrame) -> None:
    x = _xy(churn_frame)[0].copy()
    x.loc[x.index[:200], "balance"] = np.nan  # 10% missing
    schema = FeatureSchema(tuple(_field(str(c), x[c]) for c in x.columns))
    profile = build_profile(x)
    sample = sample_frame(profile, schema, rows=4000, seed=3)
    assert list(sample.columns) == list(x.columns) and len(sample) == 4000
    assert sample["age"].dtype == np.int64 and sample["balance"].dtype == np.float64
    assert set(sample["geography"]) == set(x["geography"])
    for name in ("age", "tenure", "balance", "estimated_salary"):
        values = sample[name].dropna()
        assert values.min() >= x[name].min() and values.max() <= x[name].max()
        assert abs(values.median() - x[name].median()) <= 0.1 * x[name].std()
    assert 0.07 < sample["balance"].isna().mean() < 0.13
    shares = sample["gender"].value_counts(normalize=True)
    assert abs(shares["Female"] - (x["gender"] == "Female").mean()) < 0.03
    pd.testing.assert_frame_equal(sample, sample_frame(profile, schema, rows=4000, seed=3))
    without_schema = sample_frame(profile, rows=10)
    assert list(without_schema.columns) == list(x.columns) and without_schema["tenure"].dtype == np.int64


def test_a_registered_and_loaded_model_compiles(
    registry: Any, churn_frame: pd.DataFrame, tmp_path: Path
) -> None:
    """The real path: skops-loaded pipeline, MLflow signature and input example, stored profile."""
    pytest.importorskip("onnxruntime")
    from sklearn.ensemble import RandomForestClassifier

    from modelward.registry import register_model
    from modelward.runtime import load_version

    data = tmp_path / "train.parquet"
    churn_frame.to_parquet(data)
    x, y = _xy(churn_frame)
    native = make_pipeline(RandomForestClassifier(n_estimators=30, random_state=0)).fit(x, y)
    info = register_model(registry, native, "churn", train_data=data, target="churn")
    model = load_version(registry, info)
    compiled, result = compile_model(model, cache_dir=tmp_path / "cache")
    assert (result.runtime, result.compiled) == ("onnxruntime", True), result.reason
    assert result.sample_rows > 2000  # the input example comes first
    _assert_same(compiled, model.native, _fresh(x))
    _, again = compile_model(load_version(registry, info), cache_dir=tmp_path / "cache")
    assert again.cached and again.sha256 == result.sha256


def test_a_classifier_without_probabilities_compiles_without_predict_proba(churn_frame: pd.DataFrame) -> None:
    pytest.importorskip("onnxruntime")
    from sklearn.linear_model import SGDClassifier

    x, y = _xy(churn_frame)
    native = make_pipeline(SGDClassifier(loss="hinge", random_state=0)).fit(x, y)
    compiled, result = compile_model(_loaded_without_proba(native, x))
    assert (result.runtime, result.compiled) == ("onnxruntime", True), result.reason
    assert not hasattr(compiled, "predict_proba")
    assert compiled.predict(_fresh(x)).tolist() == native.predict(_fresh(x)).tolist()
    assert compiled.predict_arrays({c: x[c].to_numpy() for c in x.columns})[1] is None


def _loaded_without_proba(native: Any, frame: pd.DataFrame) -> LoadedModel:
    profile = build_profile(frame).with_prediction(
        profile_predictions(native.predict(frame), classes=list(native.classes_))
    )
    info = VersionInfo("m", "1", (), None, None, "", "")
    schema = FeatureSchema(tuple(_field(str(c), frame[c]) for c in frame.columns))
    classes = tuple(str(c) for c in native.classes_)
    return LoadedModel(info, native, "sklearn-skops", "classification", classes, schema, profile)
