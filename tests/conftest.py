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

POSTGRES_URL = os.environ.get(
    "MODELWARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def _no_settings_leak_between_tests() -> Iterator[None]:
    """Put back every MODELWARD_* and MLFLOW_* variable a test left changed (``mlflow.set_tracking_uri``
    writes MLFLOW_TRACKING_URI into the environment, which Settings then reads): a test file must
    not point the next one, in whatever order the workers take them, at its own home."""
    prefixes = ("MODELWARD_", "MLFLOW_")
    before = {k: v for k, v in os.environ.items() if k.startswith(prefixes)}
    yield
    for key in [k for k in os.environ if k.startswith(prefixes) and k not in before]:
        del os.environ[key]
    os.environ.update(before)


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


@pytest.fixture(scope="session")
def mlflow_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow database; copying it saves each test MLflow's migrations."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_db_template: Path) -> Settings:
    """Embedded settings under a temporary home, with no outside MLflow configuration leaking in."""
    import shutil

    for key in list(os.environ):
        if key.startswith(("MODELWARD_", "MLFLOW_")):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(mlflow_db_template, home / "mlflow.db")
    monkeypatch.setenv("MODELWARD_HOME", str(home))
    monkeypatch.setenv("MODELWARD_ACTOR", "tester")
    return Settings()


def _load_example(name: str, path: Path) -> object:
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="session")
def churn_frame() -> object:
    """2,000 rows of the example churn data, without the id column."""
    generate = _load_example("churn_generate", EXAMPLES / "churn" / "generate.py")
    frame = generate.generate(2_000, seed=1)  # type: ignore[attr-defined]
    return frame.drop(columns=["customer_id"])


def make_pipeline(estimator: object) -> object:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [
        "age",
        "tenure",
        "balance",
        "num_products",
        "has_cr_card",
        "is_active_member",
        "estimated_salary",
    ]
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["geography", "gender"]),
        ]
    )
    return Pipeline([("pre", pre), ("model", estimator)])


@pytest.fixture(scope="session")
def churn_models(churn_frame: object) -> dict[str, object]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    frame = churn_frame
    x, y = frame.drop(columns=["churn"]), frame["churn"]  # type: ignore[attr-defined]
    return {
        "logreg": make_pipeline(LogisticRegression(max_iter=500)).fit(x, y),  # type: ignore[attr-defined]
        "forest": make_pipeline(RandomForestClassifier(n_estimators=20, random_state=0)).fit(x, y),  # type: ignore[attr-defined]
    }


@pytest.fixture
def registry(settings: Settings) -> Iterator[object]:
    from modelward.registry import Registry

    reg = Registry.from_settings(settings).open()
    yield reg
    reg.close()
