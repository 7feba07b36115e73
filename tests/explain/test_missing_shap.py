"""Without SHAP, building an explainer names the extra to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def hide_shap(folder: Path) -> Path:
    """A folder that, first on the path, makes ``import shap`` fail as on an install without it."""
    package = folder / "shap"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('No module named shap')\n")
    return folder


def test_explaining_without_shap_names_the_extra(tmp_path: Path) -> None:
    code = (
        "from modelward.errors import MissingDependency\n"
        "from modelward.explain._shap import import_shap\n"
        "try:\n"
        "    import_shap()\n"
        "except MissingDependency as exc:\n"
        "    print(exc.extra, '|', exc)\n"
    )
    hidden = hide_shap(tmp_path / "noshap")
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": f"{hidden}:{SRC}", "PATH": "/usr/bin:/bin"},
    ).stdout
    assert out.startswith("explain |")
    assert "pip install 'modelward[explain]'" in out
