"""Registered models of every kind the explainers handle, in one home shared by the package's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from modelward.config import Settings
from modelward.registry import Registry
from modelward.runtime import LoadedModel, load_version
from tests.conftest import make_pipeline

NUMERIC = ["age", "tenure", "balance", "num_products", "has_cr_card", "is_active_member", "estimated_salary"]


def _models(frame: pd.DataFrame) -> dict[str, tuple[object, pd.DataFrame]]:
    """name -> (fitted model, its training frame with the target)."""
    import lightgbm
    import xgboost
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    x, y = frame.drop(columns=["churn"]), frame["churn"]
    numeric = frame[[*NUMERIC, "churn"]]
    # A regression target: the balance from the rest (tree regressors explain a value, not a class).
    reg_x = frame.drop(columns=["churn", "balance"])
    fitted: dict[str, tuple[object, pd.DataFrame]] = {
        "hgb": (make_pipeline(HistGradientBoostingClassifier(max_iter=40, random_state=0)).fit(x, y), frame),  # type: ignore[attr-defined]
        "gboost": (
            make_pipeline(GradientBoostingClassifier(n_estimators=30, random_state=0)).fit(x, y),
            frame,
        ),  # type: ignore[attr-defined]
        "forest": (make_pipeline(RandomForestClassifier(n_estimators=15, random_state=0)).fit(x, y), frame),  # type: ignore[attr-defined]
        "logreg": (make_pipeline(LogisticRegression(max_iter=500)).fit(x, y), frame),  # type: ignore[attr-defined]
        "knn": (make_pipeline(KNeighborsClassifier(n_neighbors=15)).fit(x, y), frame),  # type: ignore[attr-defined]
        "xgb": (
            xgboost.XGBClassifier(n_estimators=20, max_depth=3, random_state=0).fit(numeric[NUMERIC], y),
            numeric,
        ),
        "lgbm": (
            lightgbm.LGBMClassifier(n_estimators=20, num_leaves=8, random_state=0, verbose=-1).fit(
                numeric[NUMERIC], y
            ),
            numeric,
        ),
    }
    # Columns that mix every input (PCA): no single source each, so the permutation explainer.
    from sklearn.decomposition import PCA

    mixed = make_pipeline(LogisticRegression(max_iter=500))
    mixed.steps.insert(1, ("pca", PCA(n_components=5, random_state=0)))  # type: ignore[attr-defined]
    fitted["mixed"] = (mixed.fit(x, y), frame)  # type: ignore[attr-defined]
    # Multi-class: which of three countries, from the rest.
    multi_x = frame.drop(columns=["churn", "geography"])
    multi = make_pipeline_without(HistGradientBoostingClassifier(max_iter=20, random_state=0), "geography")
    fitted["multi"] = (multi.fit(multi_x, frame["geography"]), frame.drop(columns=["churn"]))  # type: ignore[attr-defined]
    regressor = GradientBoostingRegressor(n_estimators=20, random_state=0)
    reg_pipe = make_pipeline_without(regressor, "balance").fit(reg_x, frame["balance"])
    fitted["gbreg"] = (reg_pipe, frame.drop(columns=["churn"]))
    return fitted


def make_pipeline_without(estimator: object, left_out: str) -> object:
    """The churn pipeline of tests/conftest.py without one input (the one to predict)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in NUMERIC if c != left_out]
    categorical = [c for c in ("geography", "gender") if c != left_out]
    pre = ColumnTransformer(
        [("num", StandardScaler(), numeric), ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)]
    )
    return Pipeline([("pre", pre), ("model", estimator)])


TARGETS = {"gbreg": "balance", "multi": "geography"}


@pytest.fixture(scope="session")
def explain_home(tmp_path_factory: pytest.TempPathFactory, churn_frame: pd.DataFrame) -> Path:
    """A home where each model kind is registered under its own name, version 1."""
    import modelward

    home = tmp_path_factory.mktemp("explain-home")
    settings = Settings(home=home, actor="tester", tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    for name, (model, train) in _models(churn_frame).items():
        modelward.register(
            model, name, train_data=train, target=TARGETS.get(name, "churn"), settings=settings
        )
    return home


@pytest.fixture(scope="session")
def explain_registry(explain_home: Path) -> Iterator[Registry]:
    registry = Registry.from_settings(Settings(home=explain_home, actor="tester")).open()
    yield registry
    registry.close()


@pytest.fixture(scope="session")
def loaded(explain_registry: Registry) -> dict[str, LoadedModel]:
    """Every registered model, loaded as the server loads it."""
    return {
        m.name: load_version(explain_registry, explain_registry.resolve(f"{m.name}:1"))
        for m in explain_registry.models()
    }


@pytest.fixture
def explain_env(explain_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's environment pointed at the shared home."""
    import os

    for key in list(os.environ):
        if key.startswith(("MODELWARD_", "MLFLOW_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MODELWARD_HOME", str(explain_home))
    monkeypatch.setenv("MODELWARD_ACTOR", "tester")
    return explain_home
