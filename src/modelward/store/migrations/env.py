"""Alembic environment: runs inside the connection handed over by Store.migrate()."""

from __future__ import annotations

from alembic import context

from modelward.store.store import VERSION_TABLE
from modelward.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("modelward migrations run through Store.migrate(), which passes a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
