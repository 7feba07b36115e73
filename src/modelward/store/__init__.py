"""modelward's own database: SQLAlchemy 2 Core tables, Alembic migrations, SQLite or PostgreSQL."""

from __future__ import annotations

from modelward.store.store import VERSION_TABLE, Store
from modelward.store.tables import alias_events, artifact_files, audit_events, metadata

__all__ = ["VERSION_TABLE", "Store", "alias_events", "artifact_files", "audit_events", "metadata"]
