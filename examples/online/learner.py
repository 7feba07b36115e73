"""The River model, how it learns from labelled rows, and how a learned state is logged to MLflow.

Shared by ``train.py`` (the first version) and ``update.py`` (every update after it).
"""

from __future__ import annotations

import json
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, Schema
from river import linear_model, optim

from modelward.config import Settings

HERE = Path(__file__).resolve().parent
FEATURES = ("x1", "x2", "x3")
EXPERIMENT = "online"
LEARNING_RATE = 1.0


def new_model() -> Any:
    """A logistic regression trained by plain SGD: a constant learning rate keeps it able to adapt."""
    return linear_model.LogisticRegression(optimizer=optim.SGD(LEARNING_RATE))


def learn(model: Any, rows: pd.DataFrame) -> int:
    """``learn_one`` on each row, in order (columns: the features and ``label``); the rows learned."""
    for x, y in zip(rows[list(FEATURES)].astype(float).to_dict(orient="records"), rows["label"], strict=True):
        model.learn_one(x, bool(int(y)))
    return len(rows)


def accuracy(model: Any, rows: pd.DataFrame) -> float:
    xs = rows[list(FEATURES)].astype(float).to_dict(orient="records")
    right = sum(int(bool(model.predict_one(x))) == int(y) for x, y in zip(xs, rows["label"], strict=True))
    return right / max(len(rows), 1)


def _experiment(settings: Settings) -> str:
    """The example's experiment, its artifacts kept beside modelward's own."""
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return str(found.experiment_id)
    location = f"{settings.resolved_artifact_location}/{EXPERIMENT}"
    return str(client.create_experiment(EXPERIMENT, artifact_location=location))


def log_model(model: Any, learned: dict[str, Any], metrics: dict[str, float]) -> str:
    """Log ``model`` as the pyfunc of ``model.py`` with what it has learned; its ``runs:/`` URI."""
    settings = Settings()
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    signature = ModelSignature(
        inputs=Schema([ColSpec("double", f) for f in FEATURES]),
        outputs=Schema([ColSpec("long", "label")]),
    )
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # MLflow asks for type hints on predict()
        river_file, learned_file = Path(tmp) / "river.pkl", Path(tmp) / "learned.json"
        river_file.write_bytes(pickle.dumps(model))
        learned_file.write_text(json.dumps(learned))
        with mlflow.start_run(experiment_id=_experiment(settings)) as run:
            mlflow.log_params({"model": "river.linear_model.LogisticRegression", "sgd_lr": LEARNING_RATE})
            mlflow.log_metrics({**metrics, "learned_rows": float(learned["rows"])})
            mlflow.pyfunc.log_model(
                name="model",
                python_model=str(HERE / "model.py"),
                artifacts={"river": str(river_file), "learned": str(learned_file)},
                signature=signature,
                pip_requirements=["mlflow", "pandas", "river"],
            )
    return f"runs:/{run.info.run_id}/model"
