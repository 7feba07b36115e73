"""Deployments and their history, leases, feedback, live profiles, alerts; predictions get an error.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("modelward_predictions") as batch:
        batch.add_column(sa.Column("error", sa.Text(), nullable=True))
    op.create_table(
        "modelward_deployments",
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("model", name="pk_modelward_deployments"),
    )
    op.create_table(
        "modelward_deployment_history",
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("revision", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("model", "revision", name="pk_modelward_deployment_history"),
    )
    op.create_table(
        "modelward_leases",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_modelward_leases"),
    )
    op.create_table(
        "modelward_feedback",
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("model", sa.String(256), nullable=True),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("source", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("request_id", name="pk_modelward_feedback"),
    )
    op.create_index("ix_modelward_feedback_model_ts", "modelward_feedback", ["model", "ts"])
    op.create_table(
        "modelward_live_profiles",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("arm", sa.String(64), nullable=True),
        sa.Column("bucket", sa.Float(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("writer", sa.String(200), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_modelward_live_profiles"),
    )
    op.create_index("ix_modelward_live_profiles_model_bucket", "modelward_live_profiles", ["model", "bucket"])
    op.create_table(
        "modelward_alerts",
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("model", sa.String(256), nullable=True),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("first_fired_at", sa.Float(), nullable=False),
        sa.Column("last_fired_at", sa.Float(), nullable=False),
        sa.Column("resolved_at", sa.Float(), nullable=True),
        sa.Column("last_notified_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("fingerprint", name="pk_modelward_alerts"),
    )
    op.create_table(
        "modelward_alert_events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("notifier", sa.String(200), nullable=True),
        sa.Column("delivered", sa.Boolean(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_modelward_alert_events"),
    )
    op.create_index("ix_modelward_alert_events_fingerprint", "modelward_alert_events", ["fingerprint"])


def downgrade() -> None:
    op.drop_index("ix_modelward_alert_events_fingerprint", table_name="modelward_alert_events")
    op.drop_table("modelward_alert_events")
    op.drop_table("modelward_alerts")
    op.drop_index("ix_modelward_live_profiles_model_bucket", table_name="modelward_live_profiles")
    op.drop_table("modelward_live_profiles")
    op.drop_index("ix_modelward_feedback_model_ts", table_name="modelward_feedback")
    op.drop_table("modelward_feedback")
    op.drop_table("modelward_leases")
    op.drop_table("modelward_deployment_history")
    op.drop_table("modelward_deployments")
    with op.batch_alter_table("modelward_predictions") as batch:
        batch.drop_column("error")
