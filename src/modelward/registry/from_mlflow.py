"""Register a model MLflow already holds (``runs:/...``, ``models:/...``), as its author logged it.

The model is loaded the way the server will load it (:mod:`modelward.registry.native`), from a local
copy of its artifacts, to profile its predictions on the reference data. Its input schema is its
signature, else the feature names the model was fitted on (typed from the reference data), else the
reference data's columns; where it came from is recorded, and a model with none is refused. Its task
is declared (``task=``) or decided by :mod:`modelward.registry.task`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelward.errors import RegistrationError, UntrustedTypes
from modelward.registry.calibration import registration_calibration
from modelward.registry.flavors import is_pickle_based
from modelward.registry.native import feature_names, flavor_name, load_native
from modelward.registry.refs import validate_name
from modelward.registry.register import (
    _finish,
    _lineage_tags,
    _reference_profile,
    _run_of,
    _source,
    _split,
    quiet_mlflow,
    save_notes,
)
from modelward.registry.task import check_task, decide_task
from modelward.registry.trusted import untrusted_beyond_reviewed
from modelward.schema import FeatureSchema

if TYPE_CHECKING:
    import pandas as pd

    from modelward.registry.registry import Registry
    from modelward.registry.types import VersionInfo

__all__ = ["infer_schema", "register_mlflow_model"]


def register_mlflow_model(
    registry: Registry,
    model_uri: str,
    name: str,
    *,
    reference_data: pd.DataFrame | str | os.PathLike[str],
    target: str | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    trusted_types: Sequence[str] = (),
    allow_pickle: bool = False,
    task: str | None = None,
    intended_use: str | None = None,
    limitations: str | None = None,
) -> VersionInfo:
    """Register a model MLflow already holds; see :func:`modelward.register_mlflow_model`."""
    import mlflow

    validate_name(name)
    check_task(task)
    source = _source(reference_data)
    features, labels = _split(source.frame, target)
    with registry.mlflow_context(), quiet_mlflow():
        mlmodel = _read_mlmodel(registry, model_uri)
        flavors = {k: dict(v) for k, v in mlmodel.flavors.items()}
        pickled, what = is_pickle_based(flavors)
        if pickled and not allow_pickle:
            from modelward.errors import UnsafeModelFormat

            raise UnsafeModelFormat(f"the MLflow model at {model_uri} ({what})")
        declared = [
            str(t)
            for t in (flavors.get("sklearn") or flavors.get("lightgbm") or {}).get("skops_trusted_types")
            or []
        ]
        beyond = untrusted_beyond_reviewed(declared, [*trusted_types, *registry.trusted_types])
        if beyond:
            raise UntrustedTypes(beyond)
        native = _load(registry, model_uri, flavors, [*trusted_types, *registry.trusted_types], allow_pickle)
        schema, schema_source = infer_schema(mlmodel, native, features)
        features = schema.select(features)
        try:
            predictions = np.asarray(native.predict(schema.model_input(features)))  # tensors: a dict
        except Exception as exc:  # the user's model raised: say so instead of failing deep in MLflow
            raise RegistrationError(f"the model failed to predict on the reference data: {exc}") from exc
        if predictions.ndim > 1 and predictions.shape[1] == 1:
            predictions = predictions[:, 0]
        decision = decide_task(native, predictions, labels, declared=task, output_type=_output_type(mlmodel))
        probabilities = None
        if decision.task == "classification" and hasattr(native, "predict_proba"):
            probabilities = np.asarray(native.predict_proba(features))
        profile = _reference_profile(features, predictions, probabilities, decision.classes)
        lineage = _lineage_tags(source)
        run_id = _run_of(registry, mlmodel, name)
        mv = mlflow.register_model(model_uri, name)
        version = str(mv.version)
        for key, value in lineage.items():
            registry.client.set_model_version_tag(name, version, key, value)
    flavor = flavor_name(flavors)
    model = getattr(native, "pyfunc", native)  # what a wrapped model is served through
    logged_class = (flavors.get(flavor) or {}).get("model_class")  # a booster's, as MLflow logged it
    record = {
        "flavor": flavor,
        "task": decision.task,
        "task_source": decision.source,
        "model_class": str(logged_class or f"{type(model).__module__}.{type(model).__qualname__}"),
        "classes": list(decision.classes),
        "trusted_types": sorted(set(declared) & set(trusted_types)),
        "allow_pickle": bool(pickled and allow_pickle),
        "features": list(map(str, features.columns)),
        "schema": schema.to_dict(),
        "schema_source": schema_source,
        "target": target,
        "rows": len(features),
        "lineage": lineage,
        "source_uri": model_uri,
        "calibration": registration_calibration(labels, probabilities, decision.classes),
    }
    info = _finish(registry, name, version, run_id, profile, record, description, tags)
    save_notes(registry, info, intended_use, limitations)
    return info


def _read_mlmodel(registry: Registry, model_uri: str) -> Any:
    """The MLmodel at ``model_uri``; a URI this tracking store does not hold says which store it searched."""
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    try:
        return Model.load(model_uri)
    except (MlflowException, OSError) as exc:
        hint = ""
        local = Path.cwd() / "mlflow.db"
        if local.is_file() and registry.tracking_uri != f"sqlite:///{local}":
            hint = (
                f"; MLflow's own default store sqlite:///{local} is here too: to register from it, set "
                f"MODELWARD_TRACKING_URI=sqlite:///{local}"
            )
        raise RegistrationError(
            f"cannot read the MLflow model at {model_uri} from the tracking store {registry.tracking_uri} "
            f"({_first_line(exc)}){hint}"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _load(
    registry: Registry,
    model_uri: str,
    flavors: Mapping[str, Mapping[str, Any]],
    trusted: Sequence[str],
    allow_pickle: bool,
) -> Any:
    """Load once, at registration, as the server will: to profile the predictions on the reference data."""
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="modelward-register-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=model_uri, dst_path=tmp, tracking_uri=registry.tracking_uri
        )
        return load_native(
            Path(local), flavors, trusted=trusted, allow_pickle=allow_pickle, what=model_uri
        ).model


def infer_schema(mlmodel: Any, native: Any, features: pd.DataFrame) -> tuple[FeatureSchema, str]:
    """The input schema and where it came from: "signature", "model feature names" or "reference data".

    Refused (:class:`RegistrationError`) when none can be had: the reference data lacks the features
    the model was fitted on, or holds no feature column at all.
    """
    signature = getattr(mlmodel, "signature", None)
    if signature is not None and signature.inputs is not None:
        return FeatureSchema.from_mlflow_inputs(signature.inputs.to_json()), "signature"
    names = feature_names(native)
    source = "model feature names"
    if names is not None:
        missing = [n for n in names if n not in features.columns]
        if missing:
            raise RegistrationError(
                f"the model has no signature and the reference data lacks feature(s) it was fitted on: "
                f"{', '.join(missing)}; log the model with a signature or give reference data with them"
            )
        frame = features[names]
    else:
        frame, source = features, "reference data"
    if frame.shape[1] == 0:
        raise RegistrationError(
            "no input schema: the model has no signature, records no feature names, and the reference "
            "data has no feature column; log the model with a signature (mlflow.models.infer_signature)"
        )
    from mlflow.models import infer_signature

    with quiet_mlflow():
        inferred = infer_signature(frame)
    return FeatureSchema.from_mlflow_inputs(inferred.inputs.to_json()), source


def _output_type(mlmodel: Any) -> str | None:
    signature = getattr(mlmodel, "signature", None)
    outputs = getattr(signature, "outputs", None)
    if outputs is None:
        return None
    specs = outputs.to_dict()
    if len(specs) != 1:
        return None
    kind = specs[0].get("type")
    return str(kind) if kind else None
