"""Consent: each logged prediction says whether its request consented to keeping its inputs.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows logged before consent was asked were logged as consented (modelward's default then).
    # A column added in place (no table copy): the log may hold millions of rows.
    op.add_column(
        "modelward_predictions", sa.Column("consent", sa.Boolean(), nullable=False, server_default=sa.true())
    )


def downgrade() -> None:
    with op.batch_alter_table("modelward_predictions") as batch:
        batch.drop_column("consent")
