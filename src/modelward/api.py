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
    from modelward.governance.fairness_data import FairnessRun
    from modelward.governance.gate_result import Validation
    from modelward.registry import Registry, VersionInfo
    from modelward.runtime import LoadedModel

__all__ = [
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
    intended_use: str | None = None,
    limitations: str | None = None,
    federation: Mapping[str, Any] | None = None,
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
    ``predict_proba``). ``intended_use`` and ``limitations`` go into the version's model card
    (editable later with ``modelward card edit``). ``federation={"rounds": 5, "nodes": 3,
    "strategy": "FedAvg", "framework": "flwr 1.42.0", "examples": 2400}`` registers a model trained
    by federated learning: its lineage names the federation, and ``train_data`` is then a reference
    sample (schema, input example, drift reference) that is neither fingerprinted nor logged as the
    training data set (docs/registry.md, "Federated models").
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
            intended_use=intended_use,
            limitations=limitations,
            federation=federation,
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
    intended_use: str | None = None,
    limitations: str | None = None,
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
            intended_use=intended_use,
            limitations=limitations,
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
    force: bool = False,
    data: pd.DataFrame | str | os.PathLike[str] | None = None,
    label: str | None = None,
    settings: Settings | None = None,
) -> VersionInfo:
    """Point ``alias`` at ``version`` once it passes the model's promotion gates (the stored policy,
    else the defaults; ``data`` is the holdout they score). A failing gate raises LifecycleError naming
    it; ``force=True`` with a ``reason`` promotes anyway and the override is audited with the results."""
    from modelward.config import Settings
    from modelward.governance.promotion import promote_gated

    cfg = settings or Settings()
    with open_registry(cfg) as registry:
        done = promote_gated(
            registry,
            name,
            version,
            alias,
            reason=reason,
            force=force,
            data=data,
            label=label,
            compile=cfg.compile,
            cache_dir=cfg.home / "compiled",
        )
        return done.raise_if_refused()


def validate(
    ref: str,
    *,
    against: str = "champion",
    data: pd.DataFrame | str | os.PathLike[str] | None = None,
    label: str | None = None,
    policy: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
) -> Validation:
    """Run the promotion gates of ``ref`` against ``against`` (``modelward validate``): the policy
    file given, else the model's stored policy, else the defaults; ``data`` is the labelled holdout.
    The result (``.passed``, ``.gates``, ``.failing``) is stored with the version."""
    from modelward.config import Settings
    from modelward.governance.gates import validate as run_gates
    from modelward.governance.policy import read_policy_file

    chosen = read_policy_file(policy) if policy is not None else None
    cfg = settings or Settings()
    with open_registry(cfg) as registry:
        return run_gates(
            registry,
            ref,
            against=against,
            data=data,
            label=label,
            policy=chosen,
            policy_source=str(policy) if policy is not None else None,
            compile=cfg.compile,
            cache_dir=cfg.home / "compiled",
        )


def validate_model(
    model_uri: str,
    name: str,
    *,
    against: str = "champion",
    data: pd.DataFrame | str | os.PathLike[str] | None = None,
    label: str | None = None,
    policy: str | os.PathLike[str] | None = None,
    task: str | None = None,
    trusted_types: Sequence[str] = (),
    allow_pickle: bool = False,
    settings: Settings | None = None,
) -> Validation:
    """Run model ``name``'s promotion gates on an MLflow model that is not registered yet
    (``runs:/<run>/model``, ``models:/m-...``, a local folder) against ``against``, on the labelled
    holdout ``data`` (``modelward validate --model-uri``): the check before :func:`register_mlflow_model`.
    Nothing is registered; the verdict is audited as a ``validate_model`` event naming the URI.
    ``trusted_types``, ``allow_pickle`` and ``task`` as for :func:`register_mlflow_model`."""
    from modelward.config import Settings
    from modelward.governance.gates import validate_model as run_gates
    from modelward.governance.policy import read_policy_file

    chosen = read_policy_file(policy) if policy is not None else None
    cfg = settings or Settings()
    with open_registry(cfg) as registry:
        return run_gates(
            registry,
            model_uri,
            name,
            against=against,
            data=data,
            label=label,
            policy=chosen,
            policy_source=str(policy) if policy is not None else None,
            task=task,
            trusted_types=trusted_types,
            allow_pickle=allow_pickle,
            compile=cfg.compile,
            cache_dir=cfg.home / "compiled",
        )


def set_policy(name: str, body: str, *, source: str = "policy", settings: Settings | None = None) -> str:
    """Store ``body`` (YAML) as the promotion policy of model ``name`` (``modelward policy set``): checked
    first (ConfigError names a bad field and its line), audited with its sha256; returns that sha256."""
    import hashlib

    from modelward.config import Settings
    from modelward.governance.policy import parse_policy
    from modelward.governance.reports import VersionReports

    policy = parse_policy(body, source=source)
    cfg = settings or Settings()
    digest = hashlib.sha256(body.encode()).hexdigest()
    with open_registry(cfg) as registry:
        registry.model(name)
        VersionReports(registry.store).set_policy(name, body, actor=cfg.resolved_actor)
        registry.audit.append(
            "policy_set", name, {"sha256": digest, "policy": policy.to_dict()}, actor=cfg.resolved_actor
        )
    return digest


def rollback(
    name: str, alias: str = "champion", *, reason: str | None = None, settings: Settings | None = None
) -> VersionInfo:
    from modelward.governance.promotion import refresh_card_after

    with open_registry(settings) as registry:
        info = registry.rollback(name, alias, reason=reason)
        refresh_card_after(registry, info)
        return info


def archive(
    name: str, version: str | int, *, reason: str | None = None, settings: Settings | None = None
) -> VersionInfo:
    with open_registry(settings) as registry:
        return registry.archive(name, version, reason=reason)


def fairness(
    ref: str,
    *,
    sensitive: str | Sequence[str],
    data: str | os.PathLike[str] | None = None,
    label: str | None = None,
    window: str | None = None,
    version: str | None = None,
    groups: str | os.PathLike[str] | None = None,
    bins: int = 4,
    min_group: int = 30,
    save: bool = True,
    settings: Settings | None = None,
) -> FairnessRun:
    """Audit how the version ``ref`` treats the groups of the ``sensitive`` columns, with Fairlearn.

    With ``data`` (a .csv or .parquet file; ``label`` names its label column, if any) the version
    scores the file; with ``window`` ("7d") the audit reads the live traffic of the model ``ref``
    (one ``version``; group columns from the logged inputs, or ``groups``: a file of request_id
    plus the columns) joined with its feedback labels. The report is stored with the version
    unless ``save=False`` (docs/governance.md, "Fairness").
    """
    from modelward.config import Settings
    from modelward.errors import ConfigError
    from modelward.governance.fairness_data import audit_file, audit_live, save_run

    cfg = settings or Settings()
    columns = [sensitive] if isinstance(sensitive, str) else list(sensitive)
    names = [c.strip() for part in columns for c in part.split(",") if c.strip()]
    if (data is None) == (window is None):
        raise ConfigError("give either data (a file to score) or window (live traffic)")
    with open_registry(cfg) as registry:
        if data is not None:
            run = audit_file(registry, ref, data, names, label=label, min_group=min_group, bins=bins)
        else:
            from modelward.feedback.performance import parse_window

            seconds = parse_window(window or "")
            run = audit_live(
                registry,
                ref,
                seconds,
                names,
                version=version,
                groups_path=groups,
                min_group=min_group,
                bins=bins,
            )
            run = type(run)(run.model, run.version, run.report, run.data | {"window": window})
        if save:
            save_run(registry.store, run, actor=cfg.resolved_actor)
    return run
