"""Read-only commands import what they use and nothing more.

Each command runs as a user runs it (``python -X importtime -m modelward ...``, a fresh interpreter)
and the modules it imported are read from ``-X importtime``'s report. What a command may import is
judged against what it does: the MLflow client itself brings pandas, SQLAlchemy and parts of SciPy
and FastAPI, so a command that reads the MLflow registry may load those; none of them needs the
drift statistics (scipy.stats), a model stack (scikit-learn, skops, ONNX) or the server. Commands that
read only modelward's own store (audit, alerts) load neither MLflow nor the data stack. The time
these imports cost is measured in benchmarks/startup.py.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from modelward.config import Settings
from modelward.registry import Registry, register_model

# Never needed to read the registry, the store or a deployment.
NOT_FOR_READS = (
    "scipy.stats",
    "sklearn",
    "skops",
    "onnx",
    "onnxruntime",
    "skl2onnx",
    "uvicorn",
    "prometheus_client",
    "modelward.serving",
    "modelward.runtime",
    "modelward.feedback",
    "modelward.drift.detect",
)
# Beyond that, never needed by a command that reads only modelward's own store.
NOT_FOR_STORE_READS = (
    *NOT_FOR_READS,
    "mlflow",
    "pandas",
    "numpy",
    "scipy",
    "pyarrow",
    "fastapi",
    "starlette",
    "httpx",
    "alembic",
    "modelward.registry.register",
)

READS_MLFLOW = [
    ("models",),
    ("versions", "churn"),
    ("show", "churn", "--quick"),
    ("deploy", "status", "churn"),
]
READS_STORE = [("alerts",), ("alerts", "--all"), ("audit", "verify"), ("audit", "log")]


def import_order(*argv: str, env: dict[str, str] | None = None) -> list[str]:
    """The modules a command imported, in the order their imports completed."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "modelward", *argv],
        capture_output=True,
        text=True,
        env=env if env is not None else dict(os.environ),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [
        line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")
    ]


def imported_by(*argv: str, env: dict[str, str] | None = None) -> set[str]:
    return set(import_order(*argv, env=env))


def loaded(modules: set[str], forbidden: tuple[str, ...]) -> list[str]:
    """The forbidden packages or modules found in ``modules`` (a package also by its submodules)."""
    return [f for f in forbidden if any(m == f or m.startswith(f + ".") for m in modules)]


@pytest.fixture
def churn(registry: Registry, churn_models: dict, churn_frame: pd.DataFrame) -> Registry:
    register_model(registry, churn_models["logreg"], "churn", train_data=churn_frame, target="churn")
    registry.promote("churn", 1)
    return registry


def test_read_only_commands_import_only_what_they_use(churn: Registry) -> None:
    found = {}
    for argv in READS_MLFLOW:
        found[" ".join(argv)] = loaded(imported_by(*argv), NOT_FOR_READS)
    for argv in READS_STORE:
        found[" ".join(argv)] = loaded(imported_by(*argv), NOT_FOR_STORE_READS)
    assert found == {command: [] for command in found}


def test_help_imports_no_mlflow_store_or_data_stack(settings: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWARD_")}
    modules = imported_by("--help", env=env)
    assert loaded(modules, (*NOT_FOR_STORE_READS, "sqlalchemy", "modelward.store")) == []


def test_a_command_that_loads_a_model_imports_scipy_special_before_mlflow(churn: Registry) -> None:
    """skops finds SciPy's ufuncs by scanning sys.modules in import order: scipy.special must come
    before MLflow's thousands of modules, or loading a model spends about a second scanning."""
    order = import_order("show", "churn")
    first = {
        p: next(i for i, m in enumerate(order) if m == p or m.startswith(p + "."))
        for p in ("scipy", "mlflow")
    }
    assert "scipy.special" in order
    assert first["scipy"] < first["mlflow"]
