"""modelward's own tables (SQLAlchemy Core). MLflow keeps models, versions, aliases and runs;
these tables keep what MLflow does not: the audit chain, artifact pins, alias history and the
prediction log.

Every change here needs a migration in ``store/migrations/versions`` (a test compares the two).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, String, Table, Text

__all__ = ["alias_events", "artifact_files", "audit_events", "metadata", "predictions"]

# Constraint names are fixed so migrations are portable between SQLite and PostgreSQL.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    }
)

# The hash covers seq, ts, actor, action, subject and payload exactly as stored, so ts and payload are
# text: their bytes must round-trip unchanged through every backend.
audit_events = Table(
    "modelward_audit_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
    Column("ts", String(32), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("subject", String(500), nullable=False),
    Column("payload", Text(), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_modelward_audit_events_subject", audit_events.c.subject)

artifact_files = Table(
    "modelward_artifact_files",
    metadata,
    Column("model", String(256), primary_key=True),
    Column("version", String(32), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger(), nullable=False),
)

# One row per alias move made through modelward; replaying them gives the stack that rollback pops.
alias_events = Table(
    "modelward_alias_events",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("model", String(256), nullable=False),
    Column("alias", String(256), nullable=False),
    Column("kind", String(16), nullable=False),  # promote | rollback
    Column("version", String(32), nullable=True),  # the holder after this event (None: alias removed)
    Column("previous_version", String(32), nullable=True),  # the holder before it
    Column("ts", String(32), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text(), nullable=True),
)
Index("ix_modelward_alias_events_model_alias", alias_events.c.model, alias_events.c.alias)

# One row per logged prediction (modelward.monitoring.prediction_log). ts is UNIX epoch seconds (UTC);
# inputs and outputs are JSON objects with sorted keys. Rows are append-only; id orders them.
predictions = Table(
    "modelward_predictions",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("request_id", String(128), nullable=False),
    Column("ts", Float(), nullable=False),
    Column("model", String(256), nullable=False),
    Column("version", String(32), nullable=False),
    Column("arm", String(64), nullable=True),
    Column("routing_key", String(256), nullable=True),
    Column("inputs", Text(), nullable=False),
    Column("outputs", Text(), nullable=False),
    Column("latency_ms", Float(), nullable=False),
)
Index("ix_modelward_predictions_model_ts", predictions.c.model, predictions.c.ts)
Index("ix_modelward_predictions_request_id", predictions.c.request_id)
