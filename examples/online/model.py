"""The MLflow pyfunc that serves the River model: one row of features in, the predicted label out.

Logged as code (MLflow's models-from-code), with the River model itself as the ``river`` artifact and
what it has learned so far as the ``learned`` artifact (rows, and the time of the newest one). River
models are kept the way River keeps them, with :mod:`pickle`: the version is registered with
``--allow-pickle``, and modelward pins every artifact by sha256 and checks the pins before loading.
The update job (``update.py``) loads the champion through modelward, takes its River model from
``.river`` and goes on learning from there.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import mlflow
import pandas as pd

FEATURES = ("x1", "x2", "x3")


class RiverClassifier(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    def load_context(self, context: Any) -> None:
        with open(context.artifacts["river"], "rb") as fh:
            self.river = pickle.load(fh)
        with open(context.artifacts["learned"], encoding="utf-8") as fh:
            self.learned = json.load(fh)

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.Series:
        rows = model_input[list(FEATURES)].astype(float).to_dict(orient="records")
        return pd.Series([int(bool(self.river.predict_one(x))) for x in rows], name="label", dtype="int64")


mlflow.models.set_model(RiverClassifier())
