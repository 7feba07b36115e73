"""Alembic migrations for modelward's own tables, with their own version table.

Run programmatically by :meth:`modelward.store.Store.migrate`; developers add a revision with
``alembic -c src/modelward/store/migrations/alembic.ini revision -m "..."`` and bump HEAD_REVISION.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection

__all__ = ["HEAD_REVISION", "MIGRATIONS_DIR", "upgrade"]

# Checked against Alembic's own idea of the head by a test; lets migrate() skip importing Alembic
# when the schema is already current (every CLI call opens the store).
HEAD_REVISION = "0007"

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(conn: Connection | None = None) -> object:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def upgrade(conn: Connection, revision: str = "head") -> None:
    """Upgrade the schema inside the caller's transaction."""
    from alembic import command

    command.upgrade(alembic_config(conn), revision)  # type: ignore[arg-type]
