"""SHAP, imported when an explainer is built: its absence names the ``[explain]`` extra."""

from __future__ import annotations

from typing import Any

from modelward.errors import MissingDependency

__all__ = ["import_shap"]


def import_shap() -> Any:
    try:
        import shap  # type: ignore[import-untyped]
    except ImportError as exc:
        raise MissingDependency("shap", "explain", "explaining predictions") from exc
    return shap
