"""Prediction log: one row per logged prediction.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "modelward_predictions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("arm", sa.String(64), nullable=True),
        sa.Column("routing_key", sa.String(256), nullable=True),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("outputs", sa.Text(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_modelward_predictions"),
    )
    op.create_index("ix_modelward_predictions_model_ts", "modelward_predictions", ["model", "ts"])
    op.create_index("ix_modelward_predictions_request_id", "modelward_predictions", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_modelward_predictions_request_id", table_name="modelward_predictions")
    op.drop_index("ix_modelward_predictions_model_ts", table_name="modelward_predictions")
    op.drop_table("modelward_predictions")
