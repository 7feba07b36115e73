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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelward.errors import RegistrationError, UntrustedTypes
from modelward.registry.calibration import registration_calibration
from modelward.registry.flavors import is_pickle_based
from modelward.registry.native import NativeModel, feature_names, flavor_name, load_native
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
from modelward.registry.task import TaskDecision, check_task, decide_task
from modelward.registry.trusted import untrusted_beyond_reviewed
from modelward.schema import FeatureSchema

if TYPE_CHECKING:
    import pandas as pd

    from modelward.drift.profile import DatasetProfile
    from modelward.registry.registry import Registry
    from modelward.registry.types import VersionInfo

__all__ = ["InspectedModel", "infer_schema", "inspect_mlflow_model", "register_mlflow_model"]


@dataclass(frozen=True, eq=False)
class InspectedModel:
    """An MLflow model loaded the way registration (and the server) loads it, with what registration
    decides about it from the reference data: nothing is registered or written."""

    model_uri: str
    mlmodel: Any
    flavors: dict[str, dict[str, Any]]
    native: NativeModel
    pickled: bool
    declared_types: tuple[str, ...]  # the skops types the model's own MLmodel file trusts
    schema: FeatureSchema
    schema_source: str
    features: pd.DataFrame
    labels: pd.Series | None
    task: TaskDecision
    probabilities: np.ndarray | None
    profile: DatasetProfile

    @property
    def flavor(self) -> str:
        return flavor_name(self.flavors)

    def record(
        self, *, target: str | None, trusted_types: Sequence[str], allow_pickle: bool
    ) -> dict[str, Any]:
        """The registration record's description of the model (lineage is the caller's)."""
        model = getattr(self.native.model, "pyfunc", self.native.model)  # what a wrapper serves through
        logged_class = (self.flavors.get(self.flavor) or {}).get("model_class")  # a booster's, as logged
        return {
            "flavor": self.flavor,
            "task": self.task.task,
            "task_source": self.task.source,
            "model_class": str(logged_class or f"{type(model).__module__}.{type(model).__qualname__}"),
            "classes": list(self.task.classes),
            "trusted_types": sorted(set(self.declared_types) & set(trusted_types)),
            "allow_pickle": bool(self.pickled and allow_pickle),
            "features": list(map(str, self.features.columns)),
            "schema": self.schema.to_dict(),
            "schema_source": self.schema_source,
            "target": target,
            "rows": len(self.features),
            "source_uri": self.model_uri,
            "calibration": registration_calibration(self.labels, self.probabilities, self.task.classes),
        }


def inspect_mlflow_model(
    registry: Registry,
    model_uri: str,
    frame: pd.DataFrame,
    *,
    target: str | None = None,
    trusted_types: Sequence[str] = (),
    allow_pickle: bool = False,
    task: str | None = None,
) -> InspectedModel:
    """Load the MLflow model at ``model_uri`` under modelward's load policy (pickle refused unless
    allowed, skops types beyond the reviewed list refused unless trusted) and describe it on
    ``frame`` (reference data, with the ``target`` column when given): its input schema, task and
    classes, and the reference profile of its predictions. Registration and the gates of a model not
    registered yet (:func:`modelward.governance.gates.validate_model`) both start here."""
    check_task(task)
    features, labels = _split(frame, target)
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
        loaded = _load(registry, model_uri, flavors, [*trusted_types, *registry.trusted_types], allow_pickle)
        native = loaded.model
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
    return InspectedModel(
        model_uri=model_uri,
        mlmodel=mlmodel,
        flavors=flavors,
        native=loaded,
        pickled=pickled,
        declared_types=tuple(declared),
        schema=schema,
        schema_source=schema_source,
        features=features,
        labels=labels,
        task=decision,
        probabilities=probabilities,
        profile=profile,
    )


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
    inspected = inspect_mlflow_model(
        registry,
        model_uri,
        source.frame,
        target=target,
        trusted_types=trusted_types,
        allow_pickle=allow_pickle,
        task=task,
    )
    with registry.mlflow_context(), quiet_mlflow():
        lineage = _lineage_tags(source)
        run_id = _run_of(registry, inspected.mlmodel, name)
        mv = mlflow.register_model(model_uri, name)
        version = str(mv.version)
        for key, value in lineage.items():
            registry.client.set_model_version_tag(name, version, key, value)
    record = inspected.record(target=target, trusted_types=trusted_types, allow_pickle=allow_pickle)
    record["lineage"] = lineage
    info = _finish(registry, name, version, run_id, inspected.profile, record, description, tags)
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
) -> NativeModel:
    """Load once, at registration, as the server will: to profile the predictions on the reference data."""
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="modelward-register-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=model_uri, dst_path=tmp, tracking_uri=registry.tracking_uri
        )
        return load_native(Path(local), flavors, trusted=trusted, allow_pickle=allow_pickle, what=model_uri)


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
