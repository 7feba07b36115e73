"""The churn model as a BentoML service at its best: adaptive batching, as BentoML documents it.

The same model as bento_service.py, but the API is ``batchable``: each request carries a list of
records, BentoML's dispatcher merges the lists of concurrent requests along the batch dimension (up
to ``max_batch_size`` records, waiting at most ``max_latency_ms``), calls ``predict_proba`` once on one
DataFrame of them and splits the answers back per request; its access log is off. Runs in its own virtualenv
(``benchmarks/run.py --extra-peers bentoml`` makes it); the knobs come from the environment so that
the harness can sweep them:

    BENCH_MODEL_PATH=.../model.joblib BENCH_BENTO_WORKERS=1 BENCH_BENTO_MAX_BATCH_SIZE=100 \
        BENCH_BENTO_MAX_LATENCY_MS=60000 bentoml serve bento_batching:ChurnBatching --port 8004
    POST /predict  {"customers": [{...}]}
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


# BentoML's own defaults unless the harness says otherwise; "cpu_count" is BentoML's word for one
# worker per core, what its docs recommend for CPU-bound models.
_workers = os.environ.get("BENCH_BENTO_WORKERS", "1")
WORKERS: int | str = _workers if _workers == "cpu_count" else int(_workers)
MAX_BATCH_SIZE = int(os.environ.get("BENCH_BENTO_MAX_BATCH_SIZE", "100"))
# A request that waits longer than this is refused with 503 ("process is overloaded"), not delayed.
MAX_LATENCY_MS = int(os.environ.get("BENCH_BENTO_MAX_LATENCY_MS", "60000"))


# The access log off, as every other server in the benchmark runs (modelward with --no-access-log).
@bentoml.service(workers=WORKERS, logging={"access": {"enabled": False}})
class ChurnBatching:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["BENCH_MODEL_PATH"])

    @bentoml.api(  # type: ignore[untyped-decorator]
        batchable=True, batch_dim=0, max_batch_size=MAX_BATCH_SIZE, max_latency_ms=MAX_LATENCY_MS
    )
    def predict(self, customers: list[Customer]) -> list[Prediction]:
        frame = pd.DataFrame([c.model_dump() for c in customers])
        proba = self.model.predict_proba(frame)
        return [Prediction(prediction=int(p.argmax()), probability=float(p[1])) for p in proba]
