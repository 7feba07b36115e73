"""Shared fixtures: isolated settings, stores on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from modelward.config import Settings
from modelward.store import Store

POSTGRES_URL = os.environ.get("MODELWARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("MODELWARD_REQUIRE_POSTGRES") == "1"


def _postgres_problem() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'modelward[postgres]')"
    conninfo = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(conninfo, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {POSTGRES_URL} is unreachable: {str(exc).strip()}"
    return None


@pytest.fixture(scope="session")
def postgres_base_url() -> str:
    problem = _postgres_problem()
    if problem is not None:
        if _postgres_required():
            pytest.fail(f"{problem}; CI requires PostgreSQL (set MODELWARD_TEST_POSTGRES_URL)")
        pytest.skip(f"{problem}; set MODELWARD_REQUIRE_POSTGRES=1 to make this a failure")
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_base_url: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    import psycopg

    schema = f"mw_test_{uuid.uuid4().hex[:12]}"
    conninfo = postgres_base_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in postgres_base_url else "?"
    yield f"{postgres_base_url}{sep}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'modelward.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url).open()
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Embedded settings under a temporary home, with no outside MLflow configuration leaking in."""
    for key in list(os.environ):
        if key.startswith(("MODELWARD_", "MLFLOW_")):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    monkeypatch.setenv("MODELWARD_HOME", str(home))
    monkeypatch.setenv("MODELWARD_ACTOR", "tester")
    return Settings()
