"""The store contract, run over SQLite and the real PostgreSQL server."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select, text

from modelward.errors import ConfigError, StoreError
from modelward.store import VERSION_TABLE, Store, alias_events, metadata
from modelward.store.migrations import HEAD_REVISION


def test_migrate_creates_every_table_and_records_head_in_own_version_table(store: Store) -> None:
    with store.read() as conn:
        tables = set(inspect(conn).get_table_names())
    assert set(metadata.tables) <= tables
    assert VERSION_TABLE in tables
    assert "alembic_version" not in tables  # MLflow's name stays free for MLflow
    assert store.current_revision() == HEAD_REVISION


def test_migrate_twice_is_a_no_op(store: Store) -> None:
    store.migrate()
    assert store.current_revision() == HEAD_REVISION


def test_write_commits_and_read_sees_it(store: Store) -> None:
    with store.write() as conn:
        conn.execute(
            alias_events.insert().values(model="m", alias="a", kind="promote", version="1", ts="t", actor="x")
        )
    with store.read() as conn:
        rows = conn.execute(select(alias_events.c.version)).all()
    assert [r.version for r in rows] == ["1"]


def test_write_that_raises_rolls_back(store: Store) -> None:
    with pytest.raises(RuntimeError), store.write() as conn:
        conn.execute(
            alias_events.insert().values(model="m", alias="a", kind="promote", version="1", ts="t", actor="x")
        )
        raise RuntimeError("boom")
    with store.read() as conn:
        assert conn.execute(select(alias_events)).all() == []


def test_lock_serialises_inside_a_write_transaction(store: Store) -> None:
    with store.write() as conn:
        store.lock(conn, "modelward.test")
        store.lock(conn, "modelward.test")  # re-entrant within one transaction
        assert conn.execute(text("SELECT 1")).scalar() == 1


def test_sqlite_store_runs_in_wal_mode_with_busy_timeout(tmp_path) -> None:
    s = Store(f"sqlite:///{tmp_path / 'x' / 'm.db'}", busy_timeout_ms=1234).open()
    with s.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234
    s.close()


def test_unsupported_database_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unsupported database"):
        Store("mysql://localhost/x").open()


def test_using_a_store_before_open_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="not open"):
        Store("sqlite://").engine  # noqa: B018


def test_migrations_head_constant_matches_alembic_scripts() -> None:
    from alembic.script import ScriptDirectory

    from modelward.store.migrations import MIGRATIONS_DIR, alembic_config

    script = ScriptDirectory.from_config(alembic_config())  # type: ignore[arg-type]
    assert script.get_current_head() == HEAD_REVISION
    assert MIGRATIONS_DIR.is_dir()


def test_migrated_schema_matches_table_definitions(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.read() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        diff = compare_metadata(ctx, metadata)
    assert diff == []
