"""Package-wide promises: cheap import, public exports, and the layering of the packages."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import modelward

SRC = Path(__file__).resolve().parents[2] / "src" / "modelward"

# Lower layers never import higher ones (docs/architecture.md). The governance package spans two layers:
# the audit chain, the pins it vouches for and the store of reports sit below the registry (which
# writes into them); every other governance module (fairness, gates, cards, PII, ...) reads the
# registry and loads models, so it sits with the runtime.
LOW_GOVERNANCE = {"__init__", "audit", "pins", "reports"}
LAYERS: list[set[str]] = [
    {"_lazy", "errors", "config", "durations", "files", "schema", "validation", "drift", "routing"},
    {"store"},
    {"governance"},
    {"registry"},
    {"runtime", "feedback", "monitoring", "explain", "governance.high"},
    {"control"},
    {"serving", "ui"},
    {"api", "quickstart"},
    {"cli", "__main__"},
]


def _layer(part: str) -> int:
    for i, names in enumerate(LAYERS):
        if part in names:
            return i
    raise AssertionError(f"module modelward.{part} is not placed in a layer; add it to LAYERS and the docs")


def test_importing_modelward_loads_neither_mlflow_nor_fastapi_nor_pandas() -> None:
    code = "import sys, json, modelward; print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    loaded = set(
        json.loads(
            subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        )
    )
    assert not loaded & {"mlflow", "fastapi", "starlette", "pandas", "sqlalchemy", "sklearn", "numpy"}


def test_top_level_exports_are_exactly_the_public_api() -> None:
    assert set(modelward.__all__) == {
        "Settings",
        "__version__",
        "archive",
        "fairness",
        "load",
        "open_registry",
        "promote",
        "register",
        "register_mlflow_model",
        "rollback",
        "set_policy",
        "validate",
        "validate_model",
    }
    for name in modelward.__all__:
        assert getattr(modelward, name) is not None
    with pytest.raises(AttributeError):
        modelward.nonexistent  # noqa: B018


@pytest.mark.parametrize(
    "package",
    ["store", "registry", "runtime", "governance", "drift", "routing", "feedback", "monitoring", "serving"],
)
def test_each_package_exports_what_its_all_names(package: str) -> None:
    import importlib

    module = importlib.import_module(f"modelward.{package}")
    assert module.__all__, package
    for name in module.__all__:
        assert hasattr(module, name), f"modelward.{package}.{name}"


def _unit(parts: list[str] | tuple[str, ...]) -> str:
    """The layered unit of a module path under modelward (package, or governance's two halves)."""
    first = parts[0].removesuffix(".py")
    if first == "governance" and len(parts) > 1 and parts[1].removesuffix(".py") not in LOW_GOVERNANCE:
        return "governance.high"
    return first


def test_lower_layers_never_import_higher_ones() -> None:
    problems = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        own = _unit(rel.parts)
        if own == "__init__":
            continue
        if own == "store" and "migrations" in rel.parts:
            continue  # Alembic scripts, loaded by Alembic only
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
            for target in targets:
                parts = target.split(".")
                if parts[0] != "modelward" or len(parts) < 2 or _unit(parts[1:]) == own:
                    continue
                if _layer(_unit(parts[1:])) > _layer(own):
                    problems.append(f"{rel} imports {target}")
    assert problems == []


def test_every_source_file_stays_under_500_lines() -> None:
    long = {
        str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 500
    }
    assert long == {}
