"""Governance: reports kept with a version, promotion policies, and a version's intended use.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "modelward_version_reports",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_modelward_version_reports"),
    )
    op.create_index(
        "ix_modelward_version_reports_model_version_kind",
        "modelward_version_reports",
        ["model", "version", "kind"],
    )
    op.create_table(
        "modelward_model_policies",
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("model", name="pk_modelward_model_policies"),
    )
    op.create_table(
        "modelward_version_notes",
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("intended_use", sa.Text(), nullable=True),
        sa.Column("limitations", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("model", "version", name="pk_modelward_version_notes"),
    )


def downgrade() -> None:
    op.drop_table("modelward_version_notes")
    op.drop_table("modelward_model_policies")
    op.drop_index("ix_modelward_version_reports_model_version_kind", table_name="modelward_version_reports")
    op.drop_table("modelward_version_reports")
