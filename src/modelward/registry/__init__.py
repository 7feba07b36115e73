"""MLflow-backed registry: register, resolve (version | alias), promote, rollback, archive, pins."""

from __future__ import annotations

from modelward.registry.deployments import Deployment, Deployments, StaleDeployment
from modelward.registry.refs import ModelRef, parse_ref
from modelward.registry.register import register_mlflow_model, register_model
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
