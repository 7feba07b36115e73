"""MLflow's registry and modelward's store in one PostgreSQL database, each with its own version table."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import create_engine, inspect

from modelward.registry import Registry, register_model
from modelward.runtime import load_version
from modelward.store import Store


@pytest.mark.slow
def test_mlflow_and_modelward_share_one_postgresql_database(
    postgres_url: str, tmp_path, churn_models: dict, churn_frame: pd.DataFrame
) -> None:
    registry = Registry(
        tracking_uri=postgres_url,
        store=Store(postgres_url),
        artifact_location=(tmp_path / "artifacts").as_uri(),
        actor="tester",
    ).open()
    try:
        info = register_model(
            registry, churn_models["logreg"], "churn", train_data=churn_frame, target="churn"
        )
        register_model(registry, churn_models["forest"], "churn", train_data=churn_frame, target="churn")
        registry.promote("churn", 1)
        registry.promote("churn", 2)
        assert registry.rollback("churn").version == "1"
        assert load_version(registry, info).predict(churn_frame).shape == (len(churn_frame),)
        assert registry.audit.verify().ok
        assert len(registry.audit.events()) == 5
    finally:
        registry.close()
    engine = create_engine(postgres_url.replace("postgresql+psycopg://", "postgresql+psycopg://"))
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {
        "alembic_version",
        "modelward_alembic_version",
        "registered_models",
        "modelward_audit_events",
    } <= tables
