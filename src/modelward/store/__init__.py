"""modelward's own database: SQLAlchemy 2 Core tables, Alembic migrations, SQLite or PostgreSQL."""

from __future__ import annotations

from modelward.store.lease import Lease, LeaseInfo
from modelward.store.store import VERSION_TABLE, Store
from modelward.store.tables import (
    alert_events,
    alerts,
    alias_events,
    artifact_files,
    audit_events,
    deployment_history,
    deployments,
    feedback,
    leases,
    live_profiles,
    log_state,
    log_writers,
    metadata,
    model_policies,
    predictions,
    version_notes,
    version_reports,
)

__all__ = [
    "VERSION_TABLE",
    "Lease",
    "LeaseInfo",
    "Store",
    "alert_events",
    "alerts",
    "alias_events",
    "artifact_files",
    "audit_events",
    "deployment_history",
    "deployments",
    "feedback",
    "leases",
    "live_profiles",
    "log_state",
    "log_writers",
    "metadata",
    "model_policies",
    "predictions",
    "version_notes",
    "version_reports",
]
