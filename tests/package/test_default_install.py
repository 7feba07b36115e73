"""The default install serves compiled models: the ONNX runtime is a base dependency, not an extra."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_default_install_includes_the_compiled_runtime() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert {"onnxruntime", "skl2onnx", "onnxmltools", "onnx", "protobuf"} <= _names(project["dependencies"])
    assert any(r.replace(" ", "").startswith("protobuf>=6.31.1,<7") for r in project["dependencies"])
    # 'modelward[onnx]' is still a valid install (the hint and old instructions use it)
    assert project["optional-dependencies"]["onnx"] == []
