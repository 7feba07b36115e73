"""Load a registered version for inference, after checking every artifact against its pins.

The artifacts are copied to a private temporary folder, hashed there, and loaded from that same
copy, so nothing can change between the check and the load. Each flavor loads by its own loader
(:mod:`modelward.registry.native`, shared with registration): scikit-learn and LightGBM models in
skops format with modelward's reviewed trusted list (not the list in the model's own MLmodel file),
boosters, CatBoost and ONNX by MLflow's loaders, anything pickle-based only with the opt-in recorded
and pinned at registration.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelward.drift.profile import DatasetProfile
from modelward.errors import IntegrityError
from modelward.governance.pins import LoadPolicy
from modelward.registry.integrity import diff_manifest, hash_tree
from modelward.registry.native import load_native
from modelward.registry.register import PROFILE_FILE, RECORD_FILE, load_record
from modelward.registry.registry import Registry
from modelward.registry.types import TAG_PREFIX, VersionInfo
from modelward.runtime.model import LoadedModel
from modelward.runtime.predictor import model_digest
from modelward.schema import FeatureSchema

__all__ = ["Fetched", "fetch_version", "load_version"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Fetched:
    """A version's files, copied to a private folder and checked against their pins, and what they say;
    the model itself not loaded yet. ``close()`` removes the folder."""

    info: VersionInfo
    model_dir: Path
    record: dict[str, Any]
    profile: DatasetProfile
    flavors: dict[str, Any]
    schema: FeatureSchema
    example: dict[str, Any] | None
    digest: str  # sha256 over the model files' pins (runtime.predictor.model_digest)
    folder: tempfile.TemporaryDirectory[str]

    def described(self, native: Any, runtime: str) -> LoadedModel:
        """The loaded version, with ``native`` as its model."""
        return LoadedModel(
            info=self.info,
            native=native,
            runtime=runtime,
            task=str(self.record.get("task", "regression")),
            classes=tuple(str(c) for c in self.record.get("classes", [])),
            schema=self.schema,
            profile=self.profile,
            record=self.record,
            example=self.example,
        )

    def close(self) -> None:
        self.folder.cleanup()


def load_version(registry: Registry, info: VersionInfo) -> LoadedModel:
    fetched = fetch_version(registry, info)
    try:
        loaded = load_native(
            fetched.model_dir,
            fetched.flavors,
            trusted=[*fetched.record.get("trusted_types", []), *registry.trusted_types],
            allow_pickle=bool(fetched.record.get("allow_pickle")),
            what=info.ref,
        )
    finally:
        fetched.close()
    return fetched.described(loaded.model, loaded.runtime)


def fetch_version(registry: Registry, info: VersionInfo) -> Fetched:
    """Copy a version's files to a private folder and check every one against its pins: what
    :func:`load_version` loads the model from, and what a start from the compiled cache reads."""
    import mlflow.artifacts

    # The store's pins count only once the audit chain vouches for them: whoever can rewrite the
    # store and the artifacts alike must not get a file (or a pickle opt-in) past the check.
    manifest = registry.verified_manifest(info.name, info.version)
    expected = manifest.pins
    run_id = info.tags.get(TAG_PREFIX + "run_id")
    folder = info.tags.get(TAG_PREFIX + "artifacts")
    if not run_id or not folder:
        raise IntegrityError(
            info.name, info.version, ["the modelward.run_id / modelward.artifacts tags are missing"]
        )

    tmp = tempfile.TemporaryDirectory(prefix="modelward-load-")
    try:
        root = Path(tmp.name)
        uri = registry.client.get_model_version_download_uri(info.name, info.version)
        model_dir = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(root / "model"), tracking_uri=registry.tracking_uri
            )
        )
        run_dir = root / "run"
        run_dir.mkdir()
        for filename in (PROFILE_FILE, RECORD_FILE):
            try:
                registry.client.download_artifacts(run_id, f"{folder}/{filename}", str(run_dir))
            except Exception as exc:  # MLflow raises several types for a missing artifact
                log.debug("cannot download %s: %s", filename, exc)
        # A single-file download lands directly in the destination folder.
        found = hash_tree(model_dir, prefix="model/")
        found.update(hash_tree(run_dir, prefix="run/"))
        problems = diff_manifest(expected, found)
        if problems:
            raise IntegrityError(info.name, info.version, problems)

        record = load_record((run_dir / RECORD_FILE).read_text("utf-8"))
        _check_policy(record, manifest.policy, info)
        profile = DatasetProfile.from_json((run_dir / PROFILE_FILE).read_bytes())
        mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text("utf-8"))
        return Fetched(
            info=info,
            model_dir=model_dir,
            record=record,
            profile=profile,
            flavors=mlmodel.get("flavors") or {},
            schema=_schema(mlmodel, record, profile),
            example=_example(model_dir),
            digest=model_digest(expected),
            folder=tmp,
        )
    except BaseException:
        tmp.cleanup()
        raise


def _check_policy(record: dict[str, Any], policy: LoadPolicy, info: VersionInfo) -> None:
    """The pinned record's load policy must be the one its register event recorded.

    The record's bytes are pinned and the pins vouched for, so a difference means a forged event
    or record; either way nothing is loaded on the record's word alone."""
    recorded = (bool(record.get("allow_pickle")), tuple(str(t) for t in record.get("trusted_types") or ()))
    if recorded != (policy.allow_pickle, policy.trusted_types):
        raise IntegrityError(
            info.name,
            info.version,
            [
                f"{RECORD_FILE} allows pickle={recorded[0]} and trusts {list(recorded[1])}, but its "
                f"register event (seq {policy.seq}) recorded pickle={policy.allow_pickle} and "
                f"{list(policy.trusted_types)}"
            ],
        )


def _example(model_dir: Path) -> dict[str, Any] | None:
    """MLflow's input example in pandas "split" orient ({"columns": [...], "data": [[...]]}), if any."""
    path = model_dir / "input_example.json"
    if not path.is_file():
        return None
    try:
        value = _json(path)
    except ValueError:
        return None
    if (
        isinstance(value, dict)
        and isinstance(value.get("columns"), list)
        and isinstance(value.get("data"), list)
    ):
        return value
    return None


def _schema(mlmodel: dict[str, Any], record: dict[str, Any], profile: DatasetProfile) -> FeatureSchema:
    """The signature's inputs, else the schema inferred and pinned at registration, else (a version
    registered before schemas were recorded) its features typed by their reference profile: a
    served model never has an empty schema."""
    inputs = (mlmodel.get("signature") or {}).get("inputs")
    if inputs:
        return FeatureSchema.from_mlflow_inputs(inputs)
    if record.get("schema"):
        return FeatureSchema.from_mlflow_inputs(record["schema"])
    names = [str(n) for n in record.get("features") or [] if str(n) in profile.features]
    return FeatureSchema.from_mlflow_inputs(
        [{"name": n, "type": "double" if profile.features[n].kind == "numeric" else "string"} for n in names]
    )


def _json(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))
