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


def test_the_cli_says_which_extra_to_install_in_one_line(explain_home: Path, tmp_path: Path) -> None:
    import json
    import os

    row = tmp_path / "row.json"
    row.write_text(json.dumps({"age": 40, "tenure": 3, "balance": 0.0, "num_products": 2, "has_cr_card": 1}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELWARD_", "MLFLOW_"))}
    env.update(
        MODELWARD_HOME=str(explain_home),
        PYTHONPATH=f"{hide_shap(tmp_path / 'noshap')}:{SRC}",
    )
    done = subprocess.run(
        [sys.executable, "-m", "modelward", "explain", "xgb", "--input", str(row)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "error: explaining predictions needs the 'shap' package: pip install 'modelward[explain]'"
    ]
