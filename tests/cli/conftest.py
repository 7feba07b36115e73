"""Fixtures of the CLI tests."""

from __future__ import annotations

import pandas as pd
import pytest

from modelward.registry import Registry, register_model


@pytest.fixture
def churn(registry: Registry, churn_models: dict, churn_frame: pd.DataFrame) -> Registry:
    """churn:1 champion, churn:2 challenger."""
    register_model(registry, churn_models["logreg"], "churn", train_data=churn_frame, target="churn")
    register_model(registry, churn_models["forest"], "churn", train_data=churn_frame, target="churn")
    registry.promote("churn", 1)
    registry.promote("churn", 2, "challenger")
    return registry
