"""A plain FastAPI + pydantic churn server, written the way tutorials and seed projects write one.

What a typical "serve your scikit-learn model with FastAPI" post does: a pydantic model of the
features, the model loaded once at import (here through MLflow's sklearn flavor, from the same
registry modelward serves), a synchronous endpoint that builds a one-row pandas DataFrame and calls
``predict_proba`` on it, and a JSON answer. Nothing here is tuned: that is the point of the peer.

    MODEL_URI=models:/churn/1 MLFLOW_TRACKING_URI=sqlite:///.../mlflow.db \
        uvicorn plain_fastapi:app --app-dir benchmarks/peers --port 8001 --no-access-log

Request: ``POST /predict`` with the features as a flat JSON object.
"""

from __future__ import annotations

import os

import mlflow.sklearn
import pandas as pd
from fastapi import FastAPI
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


model = mlflow.sklearn.load_model(os.environ.get("MODEL_URI", "models:/churn/1"))
app = FastAPI(title="churn")


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/predict", response_model=Prediction)
def predict(customer: Customer) -> Prediction:
    frame = pd.DataFrame([customer.model_dump()])
    proba = model.predict_proba(frame)[0]
    return Prediction(prediction=int(proba.argmax()), probability=float(proba[1]))
