"""Initial tables: audit chain, artifact pins, alias history.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "modelward_audit_events",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_modelward_audit_events"),
    )
    op.create_index("ix_modelward_audit_events_subject", "modelward_audit_events", ["subject"])
    op.create_table(
        "modelward_artifact_files",
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model", "version", "path", name="pk_modelward_artifact_files"),
    )
    op.create_table(
        "modelward_alias_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("alias", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("version", sa.String(32), nullable=True),
        sa.Column("previous_version", sa.String(32), nullable=True),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_modelward_alias_events"),
    )
    op.create_index("ix_modelward_alias_events_model_alias", "modelward_alias_events", ["model", "alias"])


def downgrade() -> None:
    op.drop_index("ix_modelward_alias_events_model_alias", table_name="modelward_alias_events")
    op.drop_table("modelward_alias_events")
    op.drop_table("modelward_artifact_files")
    op.drop_index("ix_modelward_audit_events_subject", table_name="modelward_audit_events")
    op.drop_table("modelward_audit_events")
