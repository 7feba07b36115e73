"""The prediction log's writers (what a crash loses) and its upkeep state (retention).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "modelward_log_writers",
        sa.Column("writer", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("announced", sa.BigInteger(), nullable=False),
        sa.Column("produced", sa.BigInteger(), nullable=False),
        sa.Column("written", sa.BigInteger(), nullable=False),
        sa.Column("dropped", sa.BigInteger(), nullable=False),
        sa.Column("sampled_out", sa.BigInteger(), nullable=False),
        sa.Column("repaired", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.BigInteger(), nullable=False),
        sa.Column("lost", sa.BigInteger(), nullable=True),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("writer", name="pk_modelward_log_writers"),
    )
    op.create_index("ix_modelward_log_writers_state", "modelward_log_writers", ["state"])
    op.create_table(
        "modelward_log_state",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_modelward_log_state"),
    )


def downgrade() -> None:
    op.drop_table("modelward_log_state")
    op.drop_index("ix_modelward_log_writers_state", table_name="modelward_log_writers")
    op.drop_table("modelward_log_writers")
