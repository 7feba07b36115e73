"""Fixtures of the promotion-gate tests: the churn champion, the holdout and the champion."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from modelward.registry import Registry, register_model


@pytest.fixture
def holdout(churn_frame: pd.DataFrame, tmp_path: Path) -> Path:
    path = tmp_path / "holdout.parquet"
    churn_frame.to_parquet(path)
    return path


@pytest.fixture
def champion(registry: Registry, churn_models: dict, churn_frame: pd.DataFrame) -> Registry:
    """churn:1 (the random forest) holds champion."""
    register_model(registry, churn_models["forest"], "churn", train_data=churn_frame, target="churn")
    registry.promote("churn", 1)
    return registry
