"""Registration: a model goes into the MLflow registry with everything needed to trust and watch it.

Recorded per version: the signature and an input example (MLflow), training metrics and params and
the dataset as an MLflow dataset input (on the run), lineage tags (dataset sha256, DVC pointer, git
commit; for a federated model the federation instead of the dataset, see
:mod:`modelward.registry.federation`), the reference profile and a registration record (run
artifacts under ``modelward/``), and the sha256 of every artifact file (modelward's store), plus an
audit event.
"""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelward.drift.profile import DatasetProfile, build_profile, nested_values, profile_predictions
from modelward.errors import RegistrationError, UntrustedTypes
from modelward.governance.audit import canonical_json
from modelward.governance.pins import REGISTER_ACTION, pins_digest
from modelward.governance.reports import VersionReports
from modelward.registry.calibration import registration_calibration
from modelward.registry.federation import Federation, federation_of
from modelward.registry.flavors import (
    Flavor,
    detect_flavor,
    pip_requirements,
)
from modelward.registry.integrity import FilePin, hash_bytes, hash_tree
from modelward.registry.lineage import dvc_pointer, fingerprint_file, fingerprint_frame, git_info
from modelward.registry.refs import validate_name
from modelward.registry.response import with_response
from modelward.registry.task import decide_task
from modelward.registry.trusted import untrusted_beyond_reviewed
from modelward.registry.types import TAG_PREFIX, VersionInfo
from modelward.store import artifact_files

if TYPE_CHECKING:
    import pandas as pd

    from modelward.registry.registry import Registry

__all__ = ["DataSource", "read_table", "register_model"]

log = logging.getLogger(__name__)

PROFILE_FILE = "reference_profile.json"
RECORD_FILE = "registration.json"


@dataclass(frozen=True, slots=True)
class DataSource:
    """Training or reference data, with where it came from."""

    frame: pd.DataFrame
    path: Path | None
    fingerprint: str


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise RegistrationError(f"data file {p} does not exist")
    suffix = p.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return pd.read_parquet(p)
    if suffix == ".csv":
        return pd.read_csv(p)
    raise RegistrationError(f"cannot read {p}: use a .csv or .parquet file")


def _source(data: pd.DataFrame | str | os.PathLike[str]) -> DataSource:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return DataSource(data, None, fingerprint_frame(data))
    path = Path(data).resolve()
    return DataSource(read_table(path), path, fingerprint_file(path))


def _split(frame: pd.DataFrame, target: str | None) -> tuple[pd.DataFrame, pd.Series | None]:
    if target is None:
        return frame, None
    if target not in frame.columns:
        raise RegistrationError(
            f"target column '{target}' is not in the data (columns: {', '.join(map(str, frame.columns))})"
        )
    return frame.drop(columns=[target]), frame[target]


def _features_for(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """Drop columns the model was not trained on (ids, the target) when the model knows its features."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return frame
    wanted = [str(n) for n in names]
    missing = [n for n in wanted if n not in frame.columns]
    if missing:
        raise RegistrationError(f"the data lacks the model's feature(s): {', '.join(missing)}")
    return frame[wanted]


def _reference_profile(
    features: pd.DataFrame, predictions: np.ndarray, probabilities: np.ndarray | None, classes: Sequence[str]
) -> DatasetProfile:
    if nested := [str(c) for c in features if nested_values(features[c])]:  # lists: no bins; said so
        log.warning("not profiled for drift (lists or objects): %s", ", ".join(nested))
    profile = build_profile(features.drop(columns=nested))
    if classes:
        prediction = profile_predictions(predictions, probabilities, list(classes), task="classification")
    elif nested_values(predictions):  # a list (or an object) per row: no prediction profile either
        return profile
    else:
        prediction = profile_predictions(predictions, task="regression")
    return profile.with_prediction(prediction)


def _lineage_tags(source: DataSource, federation: Federation | None = None) -> dict[str, str]:
    """The version's lineage: the data's fingerprint and pointers, or the federation that trained it
    (whose data stayed on its nodes: the registration's data is a reference sample, not fingerprinted)."""
    tags = federation.tags() if federation is not None else _data_tags(source)
    git = git_info(source.path.parent if source.path is not None else None) or git_info()
    if git is not None:
        tags[TAG_PREFIX + "git.commit"] = git.commit
        tags[TAG_PREFIX + "git.dirty"] = str(git.dirty).lower()
        if git.branch:
            tags[TAG_PREFIX + "git.branch"] = git.branch
    return tags


def _data_tags(source: DataSource) -> dict[str, str]:
    tags = {TAG_PREFIX + "dataset.sha256": source.fingerprint}
    if source.path is not None:
        tags[TAG_PREFIX + "dataset.path"] = str(source.path)
        pointer = dvc_pointer(source.path)
        if pointer is not None:
            tags[TAG_PREFIX + "dvc.file"] = pointer.dvc_file
            tags[TAG_PREFIX + "dvc.path"] = pointer.path
            if pointer.md5:
                tags[TAG_PREFIX + "dvc.md5"] = pointer.md5
            if pointer.remote:
                tags[TAG_PREFIX + "dvc.remote"] = pointer.remote
    tags.update(_time_range(source.frame))
    return tags


def _time_range(frame: pd.DataFrame) -> dict[str, str]:
    """The span of the data's first date-time column (the model card's "time range"), if it has one."""
    import pandas as pd

    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_datetime64_any_dtype(series) and series.notna().any():
            return {
                TAG_PREFIX + "dataset.time_column": str(column),
                TAG_PREFIX + "dataset.time_start": pd.Timestamp(series.min()).isoformat(),
                TAG_PREFIX + "dataset.time_end": pd.Timestamp(series.max()).isoformat(),
            }
    return {}


def save_notes(
    registry: Registry, info: VersionInfo, intended_use: str | None, limitations: str | None
) -> None:
    """Keep the intended use and limitations given at registration with the version (model card)."""
    if intended_use is None and limitations is None:
        return
    VersionReports(registry.store).set_notes(
        info.name, info.version, actor=registry.actor, intended_use=intended_use, limitations=limitations
    )


def _skops_types(model: Any) -> list[str]:
    import skops.io as sio

    try:
        return sorted(sio.get_untrusted_types(data=sio.dumps(model)))
    except Exception as exc:  # skops raises TypeError and others for objects it cannot serialise
        raise RegistrationError(
            f"the model cannot be saved in the skops format ({exc}); custom functions or classes must be "
            "importable from an installed package"
        ) from exc


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """MLflow's advice (integer columns, ambiguous dataset sources) and progress lines are for people
    driving MLflow by hand; modelward reports on its own terms."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    chatter = io.StringIO()
    # MLflow prints "Successfully registered model ..." straight to stderr.
    with warnings.catch_warnings(), redirect_stderr(chatter):
        warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")
        warnings.filterwarnings("ignore", message=r".*(Integer columns|interpreted in multiple ways).*")
        try:
            yield
        finally:
            logger.setLevel(level)
    if chatter.getvalue().strip():
        log.debug("mlflow: %s", chatter.getvalue().strip())


def register_model(
    registry: Registry,
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
    task: str | None = None,
    intended_use: str | None = None,
    limitations: str | None = None,
    federation: Federation | Mapping[str, Any] | None = None,
) -> VersionInfo:
    """Register an in-memory scikit-learn, XGBoost or LightGBM model; see :func:`modelward.register`."""
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.models import infer_signature

    validate_name(name)
    federated = federation_of(federation)
    flavor = detect_flavor(model)
    source = _source(train_data)
    features, labels = _split(source.frame, target)
    features = _features_for(model, features)
    predictions, probabilities = _predict(model, features, flavor)
    if task is not None and task != flavor.task:
        decision = decide_task(model, np.asarray(predictions), labels, declared=task)
        flavor = Flavor(flavor.name, decision.task, flavor.model_class, decision.classes)
        probabilities = probabilities if decision.task == "classification" else None

    found_types: list[str] = []
    if flavor.name in {"sklearn", "lightgbm"}:
        found_types = _skops_types(model)
        beyond = untrusted_beyond_reviewed(found_types, [*trusted_types, *registry.trusted_types])
        if beyond:
            raise UntrustedTypes(beyond)
    explicit = sorted(set(found_types) & set(trusted_types))

    with quiet_mlflow():
        signature = infer_signature(features, predictions)
    profile = _reference_profile(features, predictions, probabilities, flavor.classes)
    lineage = _lineage_tags(source, federated)

    with registry.mlflow_context(), quiet_mlflow():
        experiment_id = _experiment_id(registry)
        nested = mlflow.active_run() is not None
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"register-{name}", nested=nested) as run:
            if params:
                mlflow.log_params(dict(params))
            if metrics:
                mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            if federated is None:  # a federation's training data is on its nodes: no dataset input
                frame_for_dataset = source.frame if labels is not None else features
                where: dict[str, Any] = {"source": str(source.path)} if source.path is not None else {}
                dataset = from_pandas(
                    frame_for_dataset,
                    name=source.path.name if source.path is not None else f"{name}-train",
                    targets=target,
                    digest=source.fingerprint[:36],
                    **where,
                )
                mlflow.log_input(dataset, context="training")
            mlflow.set_tags(dict(lineage))
            logged = _log_model(model, flavor, name, signature, features.head(5), found_types)
            version = str(logged.registered_model_version)
            run_id = run.info.run_id

    record = {
        "flavor": flavor.name,
        "task": flavor.task,
        "model_class": flavor.model_class,
        "classes": list(flavor.classes),
        "trusted_types": explicit,
        "allow_pickle": False,
        "features": list(map(str, features.columns)),
        "target": target,
        "rows": len(features),
        "lineage": lineage,
        "calibration": registration_calibration(labels, probabilities, flavor.classes),
    }
    if federated is not None:
        record["federation"] = federated.to_dict()
    info = _finish(registry, name, version, run_id, profile, record, description, tags)
    save_notes(registry, info, intended_use, limitations)
    return info


def _predict(model: Any, features: pd.DataFrame, flavor: Flavor) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        predictions = np.asarray(model.predict(features))
        probabilities = None
        if flavor.task == "classification" and hasattr(model, "predict_proba"):
            probabilities = np.asarray(model.predict_proba(features))
    except Exception as exc:  # the user's model raised: say so instead of failing deep in MLflow
        raise RegistrationError(f"the model failed to predict on the training data: {exc}") from exc
    return predictions, probabilities


def _experiment_id(registry: Registry) -> str:
    client = registry.client
    existing = client.get_experiment_by_name(registry.experiment)
    if existing is not None:
        return str(existing.experiment_id)
    return str(client.create_experiment(registry.experiment, artifact_location=registry.artifact_location))


def _log_model(
    model: Any, flavor: Flavor, name: str, signature: Any, example: pd.DataFrame, skops_types: list[str]
) -> Any:
    common: dict[str, Any] = {
        "name": "model",
        "signature": signature,
        "input_example": example,
        "registered_model_name": name,
        "pip_requirements": pip_requirements(flavor.name),
    }
    if flavor.name == "sklearn":
        import mlflow.sklearn

        return mlflow.sklearn.log_model(
            model, serialization_format="skops", skops_trusted_types=skops_types or None, **common
        )
    if flavor.name == "lightgbm":
        import mlflow.lightgbm

        return mlflow.lightgbm.log_model(
            model, serialization_format="skops", skops_trusted_types=skops_types or None, **common
        )
    import mlflow.xgboost

    return mlflow.xgboost.log_model(model, model_format="json", **common)


def _run_of(registry: Registry, mlmodel: Any, name: str) -> str:
    """The run that will hold modelward's artifacts: the model's own run, else a new one."""
    if getattr(mlmodel, "run_id", None):
        return str(mlmodel.run_id)
    experiment_id = _experiment_id(registry)
    run = registry.client.create_run(experiment_id, run_name=f"register-{name}")
    registry.client.set_terminated(run.info.run_id)
    return str(run.info.run_id)


def _finish(
    registry: Registry,
    name: str,
    version: str,
    run_id: str,
    profile: DatasetProfile,
    record: dict[str, Any],
    description: str | None,
    tags: Mapping[str, str] | None,
) -> VersionInfo:
    """Tag the version, log its modelward artifacts, pin every file and write the audit event."""
    client = registry.client
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    folder = f"modelward/{safe}/v{version}"
    profile_bytes = profile.to_json()
    try:
        record = with_response(record, tags)  # checked here: a refused option deletes the version
        record_text = canonical_json(record)
        client.log_text(run_id, profile_bytes.decode("utf-8"), f"{folder}/{PROFILE_FILE}")
        client.log_text(run_id, record_text, f"{folder}/{RECORD_FILE}")
        version_tags = {
            TAG_PREFIX + "flavor": str(record["flavor"]),
            TAG_PREFIX + "task": str(record["task"]),
            TAG_PREFIX + "model_class": str(record["model_class"]),
            TAG_PREFIX + "run_id": run_id,
            TAG_PREFIX + "artifacts": folder,
            **record["lineage"],
        }
        for key, value in {**version_tags, **dict(tags or {})}.items():
            client.set_model_version_tag(name, version, key, value)
        if description:
            client.update_model_version(name, version, description=description)
        pins = _pin_model_files(registry, name, version)
        record_bytes = record_text.encode("utf-8")
        for filename, data in ((PROFILE_FILE, profile_bytes), (RECORD_FILE, record_bytes)):
            pins[f"run/{filename}"] = FilePin(f"run/{filename}", hash_bytes(data), len(data))
        with registry.store.write() as conn:
            conn.execute(
                artifact_files.insert(),
                [
                    {"model": name, "version": version, "path": p.path, "sha256": p.sha256, "size": p.size}
                    for p in pins.values()
                ],
            )
            payload = {
                "flavor": record["flavor"],
                "model_class": record["model_class"],
                "run_id": run_id,
                "dataset_sha256": record["lineage"].get(TAG_PREFIX + "dataset.sha256"),
                "git_commit": record["lineage"].get(TAG_PREFIX + "git.commit"),
                "artifacts_sha256": pins_digest({p.path: p.sha256 for p in pins.values()}),
                "trusted_types": record["trusted_types"],
                "allow_pickle": record["allow_pickle"],
            }
            if "federation" in record:
                payload["federation"] = record["federation"]
            subject = f"{name}:{version}"
            registry.audit.append(REGISTER_ACTION, subject, payload, actor=registry.actor, conn=conn)
    except BaseException:
        # A version without pins cannot be loaded; remove it rather than leave a trap.
        log.error("registration of %s version %s failed; deleting the incomplete version", name, version)
        try:
            client.delete_model_version(name, version)
        except Exception:  # best effort: the original error matters more
            log.exception("could not delete incomplete version %s:%s", name, version)
        raise
    return registry.version(name, version)


def _pin_model_files(registry: Registry, name: str, version: str) -> dict[str, FilePin]:
    import tempfile

    import mlflow.artifacts

    uri = registry.client.get_model_version_download_uri(name, version)
    with tempfile.TemporaryDirectory(prefix="modelward-pin-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=tmp, tracking_uri=registry.tracking_uri
        )
        return hash_tree(local, prefix="model/")


def load_record(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise RegistrationError("the registration record is not a JSON object")
    return value
