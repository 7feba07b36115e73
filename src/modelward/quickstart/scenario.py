"""The quickstart's data: the churn customers of ``examples/churn/generate.py``, before and after a
change in the market, and the two models trained on them.

Before: the generator's customers and labels. After: the population moves (older, more German, less
active customers, as the generator's ``drift`` does, plus richer and longer-tenured ones) and so does
the behaviour: a competitor's offer now takes the young, active customers, so the first model ranks
them wrong. A model retrained on data from after the change learns the new behaviour.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from modelward.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SIZES", "Size", "after_change", "before_change", "fit_model", "generator", "records"]

TARGET = "churn"
NUMERIC = ["age", "tenure", "balance", "num_products", "has_cr_card", "is_active_member", "estimated_salary"]
CATEGORICAL = ["geography", "gender"]
FEATURES = NUMERIC + CATEGORICAL


@dataclass(frozen=True)
class Size:
    """Rows of each part of the scenario."""

    train: int  # customers v1 is trained on (a quarter is kept as its test set)
    clean: int  # requests served before the change
    drifted: int  # requests served after it
    fresh: int  # new labelled customers the retraining gets beside the export
    holdout: int  # the gates' holdout (after the change)
    canary_batch: int  # requests per canary round
    step_seconds: float  # how long each canary step lasts


SIZES = {
    "full": Size(
        train=8000, clean=1000, drifted=2000, fresh=4000, holdout=2000, canary_batch=100, step_seconds=4
    ),
    # CI's smoke run: every step, with just enough rows for each check to tell
    "smoke": Size(
        train=1600, clean=240, drifted=480, fresh=800, holdout=400, canary_batch=50, step_seconds=1
    ),
}


def generator() -> ModuleType:
    """``examples/churn/generate.py``, loaded by path (``examples`` is not a package): from the
    checkout this modelward runs from, else from ``./examples``."""
    here = Path(__file__).resolve()
    candidates = [here.parents[3] / "examples" / "churn" / "generate.py", Path("examples/churn/generate.py")]
    for path in candidates:
        if path.is_file():
            spec = importlib.util.spec_from_file_location("churn_generate", path)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            return module
    raise ConfigError(
        "the quickstart generates its data with examples/churn/generate.py: run it from a clone of "
        "modelward (pip install -e .) or from a folder that holds examples/churn"
    )


def before_change(gen: ModuleType, rows: int, seed: int) -> pd.DataFrame:
    frame: pd.DataFrame = gen.generate(rows, seed=seed).drop(columns=["customer_id"])
    return frame


def after_change(gen: ModuleType, rows: int, seed: int) -> pd.DataFrame:
    """Customers after the change: shifted features, and labels from the new behaviour."""
    import numpy as np

    frame: pd.DataFrame = gen.generate(rows, seed=seed, drift=1.0).drop(columns=["customer_id"])
    rng = np.random.default_rng(seed + 1000)
    frame["tenure"] = np.clip(frame["tenure"].to_numpy() + 3, 0, 10).astype(np.int64)
    frame["estimated_salary"] = np.round(frame["estimated_salary"].to_numpy() * 1.4 + 20_000, 2)
    frame["num_products"] = rng.choice([1, 2, 3], size=rows, p=[0.3, 0.6, 0.1]).astype(np.int64)
    age = frame["age"].to_numpy(dtype=np.float64)
    active = frame["is_active_member"].to_numpy(dtype=np.float64)
    logit = (
        -1.2
        + 2.2 * active
        - 0.06 * (age - 45.0)
        + 0.8 * (frame["geography"] == "Spain").to_numpy(dtype=np.float64)
        - 0.9 * (frame["geography"] == "Germany").to_numpy(dtype=np.float64)
        + rng.normal(0.0, 0.5, size=rows)
    )
    frame[TARGET] = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return frame


def fit_model(frame: pd.DataFrame) -> Any:
    """A logistic regression on the churn features, as ``examples/churn/train.py`` builds its first."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer(
        [("num", StandardScaler(), NUMERIC), ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)]
    )
    model = Pipeline([("pre", pre), ("model", LogisticRegression(max_iter=1000))])
    model.fit(frame[FEATURES], frame[TARGET])
    return model


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Request rows: the features as plain Python values."""
    return [
        {str(k): v for k, v in row.items()}
        for row in frame[FEATURES].astype(object).to_dict(orient="records")
    ]


def from_export(export: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """A labelled export (``input.<feature>`` and ``label`` columns) as training rows typed like ``like``."""
    frame = export[[f"input.{f}" for f in FEATURES] + ["label"]].copy()
    frame.columns = [*FEATURES, TARGET]
    return frame.astype(like[[*FEATURES, TARGET]].dtypes.to_dict())
