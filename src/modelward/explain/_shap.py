"""SHAP, imported when an explainer is built: its absence names the ``[explain]`` extra."""

from __future__ import annotations

import warnings
from typing import Any

from modelward.errors import MissingDependency

__all__ = ["import_shap"]


def import_shap() -> Any:
    try:
        with warnings.catch_warnings():
            # SHAP's plotting module, imported with the package, calls a matplotlib function that
            # matplotlib has marked for deprecation: nothing a user of explanations can act on.
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            import shap  # type: ignore[import-untyped]
    except ImportError as exc:
        raise MissingDependency("shap", "explain", "explaining predictions") from exc
    return shap
