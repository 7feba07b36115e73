"""The churn model as a BentoML service, written as BentoML's quickstart writes one.

A pydantic model of the features, the model loaded once per worker, ``predict_proba`` on a one-row
DataFrame, one worker. Runs in its own virtualenv (``benchmarks/run.py --extra-peers bentoml``
makes it), loading the churn pipeline the harness exported with joblib to ``$BENCH_MODEL_PATH``:

    BENCH_MODEL_PATH=.../model.joblib bentoml serve bento_service:Churn --port 8003
    POST /predict  {"features": {...}}
"""

from __future__ import annotations

import os

import bentoml  # type: ignore[import-not-found]  # installed in its own virtualenv only
import joblib  # type: ignore[import-untyped]  # its own virtualenv; no stubs
import pandas as pd
from pydantic import BaseModel


class Customer(BaseModel):
    age: int
    tenure: int
    balance: float
    num_products: int
    has_cr_card: int
    is_active_member: int
    estimated_salary: float
    geography: str
    gender: str


class Prediction(BaseModel):
    prediction: int
    probability: float


@bentoml.service(workers=1)
class Churn:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["BENCH_MODEL_PATH"])

    @bentoml.api  # type: ignore[untyped-decorator]
    def predict(self, features: Customer) -> Prediction:
        frame = pd.DataFrame([features.model_dump()])
        proba = self.model.predict_proba(frame)[0]
        return Prediction(prediction=int(proba.argmax()), probability=float(proba[1]))
