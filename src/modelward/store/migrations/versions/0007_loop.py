"""The closed loop: retraining runs and the rollout decision taken for each new version.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "modelward_retrain_runs",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("figures", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("running", sa.String(256), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_modelward_retrain_runs"),
        sa.UniqueConstraint("running", name="uq_modelward_retrain_runs_running"),
    )
    op.create_index(
        "ix_modelward_retrain_runs_model_started_at", "modelward_retrain_runs", ["model", "started_at"]
    )
    op.create_table(
        "modelward_rollouts",
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("model", "version", name="pk_modelward_rollouts"),
    )


def downgrade() -> None:
    op.drop_table("modelward_rollouts")
    op.drop_index("ix_modelward_retrain_runs_model_started_at", table_name="modelward_retrain_runs")
    op.drop_table("modelward_retrain_runs")
