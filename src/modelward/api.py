"""The top-level convenience API: each call opens the registry described by the settings
(``MODELWARD_*`` environment, else ``./.modelward``), acts, and closes it."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from modelward.config import Settings
    from modelward.registry import Registry, VersionInfo
    from modelward.runtime import LoadedModel

__all__ = ["archive", "load", "open_registry", "promote", "register", "register_mlflow_model", "rollback"]


@contextmanager
def open_registry(settings: Settings | None = None) -> Iterator[Registry]:
    from modelward.config import Settings
    from modelward.registry import Registry

    registry = Registry.from_settings(settings or Settings()).open()
    try:
        yield registry
    finally:
        registry.close()


def register(
    model: Any,
    name: str,
    *,
    train_data: pd.DataFrame | str | os.PathLike[str],
    target: str | None = None,
    metrics: Mapping[str, float] | None = None,
    params: Mapping[str, Any] | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    trusted_types: Sequence[str] = (),
    response: Mapping[str, Any] | None = None,
    task: str | None = None,
    settings: Settings | None = None,
) -> VersionInfo:
    """Register a fitted scikit-learn, XGBoost or LightGBM model as a new version of ``name``.

    ``train_data`` (a DataFrame, or a .csv/.parquet path whose DVC pointer is then recorded) gives
    the signature, input example, dataset lineage and reference profile; ``target`` names its label
    column. scikit-learn models are saved with skops; ``trusted_types`` lists types beyond
    modelward's reviewed list that you have reviewed yourself. ``response={"probability_name":
    "churn_probability"}`` gives a binary classifier's answers that member (its positive-class
    probability; ``"positive_class"`` picks the class, by default the second). ``task``
    ("classification" or "regression") says what the model predicts when its class does not (no
    ``predict_proba``).
    """
    from modelward.registry import register_model
    from modelward.registry.response import response_tags

    tags = {**(tags or {}), **response_tags(response)}
    with open_registry(settings) as registry:
        check = _pii_check(registry, name, train_data, settings)
        info = register_model(
            registry,
            model,
            name,
            train_data=train_data,
            target=target,
            metrics=metrics,
            params=params,
            description=description,
            tags=tags,
            trusted_types=trusted_types,
            task=task,
        )
        _pii_record(registry, info, check, settings)
        return info


def _pii_check(registry: Registry, name: str, data: Any, settings: Settings | None) -> Any:
    """The training data's PII check (docs/privacy.md): refuses, warns, or returns the scan to keep."""
    from modelward.config import Settings
    from modelward.governance.pii_register import check_training_data

    cfg = settings or Settings()
    return check_training_data(registry.store, name, data, setting=cfg.pii_on_register)


def _pii_record(registry: Registry, info: VersionInfo, check: Any, settings: Settings | None) -> None:
    from modelward.config import Settings
    from modelward.governance.pii_register import record_check

    if check is not None:
        cfg = settings or Settings()
        record_check(registry.store, info.name, info.version, check, actor=cfg.resolved_actor)


def register_mlflow_model(
    model_uri: str,
    name: str,
    *,
    reference_data: pd.DataFrame | str | os.PathLike[str],
    target: str | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    trusted_types: Sequence[str] = (),
    allow_pickle: bool = False,
    response: Mapping[str, Any] | None = None,
    task: str | None = None,
    settings: Settings | None = None,
) -> VersionInfo:
    """Register a model MLflow already holds (``runs:/<run>/model``, ``models:/...``).

    Pickle-based flavors (custom pyfunc, pickled scikit-learn) need ``allow_pickle=True``.
    ``response`` as for :func:`register`.
    ``task`` ("classification" or "regression") says what the model predicts; by default it is
    decided from the model (``predict_proba``), its signature, the target and its outputs.
    """
    from modelward.registry import register_mlflow_model as _register
    from modelward.registry.response import response_tags

    tags = {**(tags or {}), **response_tags(response)}

    with open_registry(settings) as registry:
        check = _pii_check(registry, name, reference_data, settings)
        info = _register(
            registry,
            model_uri,
            name,
            reference_data=reference_data,
            target=target,
            description=description,
            tags=tags,
            trusted_types=trusted_types,
            allow_pickle=allow_pickle,
            task=task,
        )
        _pii_record(registry, info, check, settings)
        return info


def load(ref: str, *, settings: Settings | None = None) -> LoadedModel:
    """Load ``name``, ``name@alias`` or ``name:version``, verified against its sha256 pins."""
    from modelward.runtime import load_version

    with open_registry(settings) as registry:
        return load_version(registry, registry.resolve(ref))


def promote(
    name: str,
    version: str | int,
    alias: str = "champion",
    *,
    reason: str | None = None,
    settings: Settings | None = None,
) -> VersionInfo:
    with open_registry(settings) as registry:
        return registry.promote(name, version, alias, reason=reason)


def rollback(
    name: str, alias: str = "champion", *, reason: str | None = None, settings: Settings | None = None
) -> VersionInfo:
    with open_registry(settings) as registry:
        return registry.rollback(name, alias, reason=reason)


def archive(
    name: str, version: str | int, *, reason: str | None = None, settings: Settings | None = None
) -> VersionInfo:
    with open_registry(settings) as registry:
        return registry.archive(name, version, reason=reason)
