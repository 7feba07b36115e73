"""Canary test fixtures: a real registry with churn:1 (champion) and churn:2, and prediction rows."""

from __future__ import annotations

import json
import random
from typing import Any

import pandas as pd
import pytest

from modelward.registry import Registry, register_model
from modelward.store.tables import predictions


@pytest.fixture
def churn_registry(registry: Registry, churn_models: dict, churn_frame: pd.DataFrame) -> Registry:
    register_model(registry, churn_models["logreg"], "churn", train_data=churn_frame, target="churn")
    register_model(registry, churn_models["forest"], "churn", train_data=churn_frame, target="churn")
    registry.promote("churn", 1, reason="first champion")
    return registry


def log_rows(
    registry: Registry,
    arm: str,
    version: str,
    n: int,
    start: float,
    end: float,
    *,
    fail: float = 0.0,
    seed: int = 0,
    prefix: str = "",
) -> None:
    """``n`` logged predictions of ``arm`` spread over ``[start, end)``; a share ``fail`` raised."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        failed = rng.random() < fail
        p1 = rng.random() * 0.6
        outputs = {} if failed else {"prediction": int(p1 > 0.5), "probabilities": {"0": 1 - p1, "1": p1}}
        rows.append(
            {
                "request_id": f"{prefix}{arm}-{seed}-{i}",
                "ts": start + (end - start) * i / n,
                "model": "churn",
                "version": version,
                "arm": arm,
                "routing_key": None,
                "inputs": "{}",
                "outputs": json.dumps(outputs),
                "latency_ms": rng.uniform(1.0, 3.0),
                "error": "RuntimeError: injected failure" if failed else None,
            }
        )
    with registry.store.write() as conn:
        conn.execute(predictions.insert(), rows)
