"""MLflow-backed registry: register, resolve (version | alias), promote, rollback, archive, pins."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelward._lazy import lazy_exports

if TYPE_CHECKING:
    from modelward.registry.deployments import Deployment, Deployments, StaleDeployment
    from modelward.registry.from_mlflow import register_mlflow_model
    from modelward.registry.refs import ModelRef, parse_ref
    from modelward.registry.register import register_model
    from modelward.registry.registry import DEFAULT_ALIAS, Registry
    from modelward.registry.trusted import REVIEWED_TRUSTED_TYPES
    from modelward.registry.types import ModelInfo, VersionInfo

__all__ = [
    "DEFAULT_ALIAS",
    "REVIEWED_TRUSTED_TYPES",
    "Deployment",
    "Deployments",
    "ModelInfo",
    "ModelRef",
    "Registry",
    "StaleDeployment",
    "VersionInfo",
    "parse_ref",
    "register_mlflow_model",
    "register_model",
]

# Imported when first read (PEP 562): a process that needs one module of this package does not
# pay for the others.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "deployments": ("Deployment", "Deployments", "StaleDeployment"),
        "refs": ("ModelRef", "parse_ref"),
        "from_mlflow": ("register_mlflow_model",),
        "register": ("register_model",),
        "registry": ("DEFAULT_ALIAS", "Registry"),
        "trusted": ("REVIEWED_TRUSTED_TYPES",),
        "types": ("ModelInfo", "VersionInfo"),
    },
)
