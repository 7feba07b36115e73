"""modelward: take a trained model to production and keep it healthy.

Importing ``modelward`` is cheap: MLflow, pandas and web frameworks load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
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
]

if TYPE_CHECKING:
    from modelward.api import (
        archive,
        fairness,
        load,
        open_registry,
        promote,
        register,
        register_mlflow_model,
        rollback,
        set_policy,
        validate,
        validate_model,
    )
    from modelward.config import Settings

_API = {
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


def __getattr__(name: str) -> Any:
    if name in _API:
        from modelward import api

        return getattr(api, name)
    if name == "Settings":
        from modelward.config import Settings

        return Settings
    raise AttributeError(f"module 'modelward' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
