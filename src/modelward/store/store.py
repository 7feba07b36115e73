"""The modelward database: one code path for SQLite (embedded default) and PostgreSQL.

SQLite is opened in WAL mode with a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE`` so that a writer takes the lock before reading: two writers can then never
both read the same audit head and deadlock on the upgrade to a write lock ("database is locked").
On PostgreSQL, writers that must be serialised take a transaction-scoped advisory lock.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from modelward.errors import ConfigError, MigrationError, MissingDependency, StoreError

__all__ = ["VERSION_TABLE", "Store"]

log = logging.getLogger(__name__)

# MLflow keeps its own `alembic_version`; ours has its own name so both can share one database.
VERSION_TABLE = "modelward_alembic_version"

_WRITE_OPTION = "modelward_write"


class Store:
    """modelward's own database.

    ``Store(url)`` only stores its arguments; :meth:`open` creates the engine and :meth:`migrate`
    brings the schema to the newest revision. Use :meth:`read` and :meth:`write` for transactions.
    """

    def __init__(
        self, url: str, *, busy_timeout_ms: int = 30_000, echo: bool = False, power_safe: bool = True
    ) -> None:
        self.url = url
        self.busy_timeout_ms = busy_timeout_ms
        self.echo = echo
        # SQLite only: False syncs the WAL at checkpoints rather than at every commit. A commit then
        # survives a crash of the process but not a power cut: for the prediction log, whose rows
        # are best effort anyway, not for the audit chain or feedback.
        self.power_safe = power_safe
        self._engine: Engine | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def dialect(self) -> str:
        return make_url(self.url).get_backend_name()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise StoreError("the store is not open: call Store.open() first")
        return self._engine

    def open(self) -> Store:
        if self._engine is not None:
            return self
        try:
            url = make_url(self.url)
        except Exception as exc:  # SQLAlchemy raises ArgumentError and ValueError subclasses here
            raise ConfigError(f"invalid database URL {self.url!r}: {exc}") from exc
        backend = url.get_backend_name()
        if backend == "sqlite":
            self._engine = self._open_sqlite(url.database)
        elif backend == "postgresql":
            self._engine = self._open_postgresql()
        else:
            raise ConfigError(f"unsupported database {backend!r}: use a sqlite:/// or postgresql:// URL")
        return self

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> Store:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_sqlite(self, database: str | None) -> Engine:
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            self.url,
            echo=self.echo,
            connect_args={"timeout": self.busy_timeout_ms / 1000, "check_same_thread": False},
        )
        busy = int(self.busy_timeout_ms)
        synchronous = "FULL" if self.power_safe else "NORMAL"

        @event.listens_for(engine, "connect")
        def _configure(dbapi_connection: Any, _record: Any) -> None:
            # Take transaction control away from pysqlite so BEGIN is ours to emit.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            try:
                # Before the first table exists (a new database) this makes deleted pages returnable to
                # the file system (prediction log retention); on an existing database it changes
                # nothing (`modelward predictions vacuum` converts one).
                cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA busy_timeout={busy}")
                cursor.execute("PRAGMA foreign_keys=ON")
                # FULL: an acknowledged commit survives power loss, not only a process crash.
                cursor.execute(f"PRAGMA synchronous={synchronous}")
            finally:
                cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            if conn.get_execution_options().get(_WRITE_OPTION):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        return engine

    def _open_postgresql(self) -> Engine:
        url = make_url(self.url)
        if url.drivername == "postgresql":
            # Prefer psycopg 3; SQLAlchemy's bare "postgresql" means psycopg2.
            url = url.set(drivername="postgresql+psycopg")
        try:
            return create_engine(url, echo=self.echo, pool_pre_ping=True)
        except ModuleNotFoundError as exc:
            raise MissingDependency("psycopg", "postgres", "a PostgreSQL store") from exc

    # -- transactions ----------------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (a snapshot on PostgreSQL, a deferred transaction on SQLite)."""
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise StoreError(f"cannot read the modelward database ({self._safe_url()}): {exc.orig}") from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction; it commits when the block exits without error.

        On SQLite the write lock is taken up front (BEGIN IMMEDIATE).
        """
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(**{_WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            raise StoreError(f"cannot write the modelward database ({self._safe_url()}): {exc.orig}") from exc

    def lock(self, conn: Connection, name: str) -> None:
        """Serialise writers on ``name`` until the transaction ends.

        SQLite writers are already serialised by BEGIN IMMEDIATE; PostgreSQL takes an advisory lock.
        """
        if conn.dialect.name == "postgresql":
            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def _safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    # -- schema ----------------------------------------------------------------------------------

    def current_revision(self) -> str | None:
        with self.read() as conn:
            if not inspect(conn).has_table(VERSION_TABLE):
                return None
            row = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).first()  # noqa: S608
            return None if row is None else str(row[0])

    def migrate(self) -> None:
        """Bring the schema to the newest revision; safe to call from many processes at once."""
        from modelward.store.migrations import HEAD_REVISION

        try:
            if self.current_revision() == HEAD_REVISION:
                return
        except StoreError:
            raise
        except SQLAlchemyError as exc:
            raise MigrationError(f"cannot inspect the modelward database: {exc}") from exc
        from modelward.store.migrations import upgrade

        try:
            with self.write() as conn:
                self.lock(conn, "modelward.migrate")
                upgrade(conn)
        except SQLAlchemyError as exc:
            raise MigrationError(f"migrating the modelward database failed: {exc}") from exc
        log.info("modelward database at revision %s", HEAD_REVISION)
