"""What performance needs to know of a version (task, classes, calibration), and recalibration.

A version's task and classes (in the model's order: ``classes[1]`` is the positive class of a binary
model) come from its registration record, read from the run's artifacts and checked against the
sha256 pinned at registration. Its calibration is the newest of:

1. a ``calibrate`` event in the audit chain (``modelward calibrate NAME:V --data holdout.parquet
   --target churn``), measured on held-out rows;
2. the record's ``calibration`` entry, measured at registration on the training rows. That one is
   optimistic for models that fit their training rows closely (trees, boosting), hence (1).

Recalibration is kept in the audit chain, not as a registry tag: a tag can be edited by anyone with
MLflow access and leaves no trace, while an audit event is tamper-evident, records who measured it,
on which data (sha256) and when, and keeps every earlier measurement. It is read from modelward's
own store, with no MLflow call.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelward.errors import (
    CalibrationError,  # importable here as before
    IntegrityError,
    NotFound,
)
from modelward.registry.calibration import DEFAULT_BINS, Calibration, compute_calibration
from modelward.registry.integrity import hash_bytes
from modelward.registry.lineage import fingerprint_file, fingerprint_frame
from modelward.registry.register import RECORD_FILE, load_record, read_table
from modelward.registry.types import TAG_PREFIX, VersionInfo

if TYPE_CHECKING:
    import pandas as pd

    from modelward.registry import Registry

__all__ = [
    "CALIBRATE_ACTION",
    "CalibrationError",
    "CalibrationRun",
    "VersionFacts",
    "calibrate",
    "read_record",
    "version_facts",
]

CALIBRATE_ACTION = "calibrate"


@dataclass(frozen=True, slots=True)
class VersionFacts:
    """What live performance needs to know of one version."""

    task: str  # "classification" | "regression"
    classes: tuple[str, ...] = ()  # str() of the class values, in the model's order
    calibration: Calibration | None = None


@dataclass(frozen=True, slots=True)
class CalibrationRun:
    """A calibration measured by :func:`calibrate` and appended to the audit chain (event ``seq``)."""

    ref: str
    calibration: Calibration
    seq: int
    dataset_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "seq": self.seq,
            "dataset_sha256": self.dataset_sha256,
            "calibration": self.calibration.to_dict(),
        }


def read_record(registry: Registry, info: VersionInfo) -> dict[str, Any] | None:
    """The registration record of ``info``, verified against its pin (which the audit chain vouches
    for); None for a version that was not registered through modelward. IntegrityError when the
    record's bytes or its pins changed."""
    run_id = info.tags.get(TAG_PREFIX + "run_id")
    folder = info.tags.get(TAG_PREFIX + "artifacts")
    if not run_id or not folder or not registry.manifest(info.name, info.version):
        return None
    pin = registry.verified_manifest(info.name, info.version).pins.get(f"run/{RECORD_FILE}")
    if pin is None:
        raise IntegrityError(info.name, info.version, [f"run/{RECORD_FILE} has no sha256 pin"])
    with tempfile.TemporaryDirectory(prefix="modelward-record-") as tmp:
        local = Path(registry.client.download_artifacts(run_id, f"{folder}/{RECORD_FILE}", tmp))
        data = local.read_bytes()
    if hash_bytes(data) != pin.sha256:
        raise IntegrityError(info.name, info.version, [f"run/{RECORD_FILE} does not match its sha256 pin"])
    return load_record(data.decode("utf-8"))


def _latest_holdout(registry: Registry, ref: str) -> Calibration | None:
    for event in registry.audit.events(subject=ref, action=CALIBRATE_ACTION, newest_first=True, limit=5):
        if event.subject == ref and isinstance(event.payload.get("calibration"), dict):
            return Calibration.from_dict(event.payload["calibration"])
    return None


def version_facts(registry: Registry, name: str, version: str) -> VersionFacts | None:
    """Task, classes and calibration of ``name:version``; None when the registry does not know it."""
    try:
        info = registry.version(name, version)
    except NotFound:
        return None
    record = read_record(registry, info)
    if record is None:
        return None
    task = str(record.get("task") or "regression")
    classes = tuple(str(c) for c in record.get("classes") or ()) if task == "classification" else ()
    calibration = _latest_holdout(registry, info.ref) if task == "classification" else None
    if calibration is None and isinstance(record.get("calibration"), dict):
        calibration = Calibration.from_dict(record["calibration"])
    return VersionFacts(task, classes, calibration)


def calibrate(
    registry: Registry,
    ref: str,
    data: pd.DataFrame | str | os.PathLike[str],
    target: str,
    *,
    bins: int = DEFAULT_BINS,
) -> CalibrationRun:
    """Measure the calibration of ``ref`` (``name``, ``name@alias``, ``name:version``) on labelled
    held-out ``data`` and append it to the audit chain, where :func:`version_facts` finds it."""
    import pandas as pd

    from modelward.runtime import load_version

    if bins < 2:
        raise CalibrationError("--bins must be at least 2")
    if isinstance(data, pd.DataFrame):
        frame, digest, where = data, fingerprint_frame(data), None
    else:
        frame, digest, where = read_table(data), fingerprint_file(data), str(Path(data).resolve())
    if target not in frame.columns:
        columns = ", ".join(map(str, frame.columns))
        raise CalibrationError(f"target column '{target}' is not in the data (columns: {columns})")
    info = registry.resolve(ref)
    model = load_version(registry, info)
    if not model.is_classifier or not hasattr(model.native, "predict_proba"):
        raise CalibrationError(f"{info.ref} is a {model.task} model: calibration is for classifiers")
    labels = frame[target]
    probabilities = model.predict_proba(frame.drop(columns=[target]))
    try:
        result = compute_calibration(list(labels), probabilities, model.classes, bins=bins, source="holdout")
    except ValueError as exc:
        raise CalibrationError(f"cannot calibrate {info.ref} on this data: {exc}") from exc
    payload = {
        "calibration": result.to_dict(),
        "dataset_sha256": digest,
        "dataset_path": where,
        "target": target,
        "rows": len(frame),
    }
    event = registry.audit.append(CALIBRATE_ACTION, info.ref, payload, actor=registry.actor)
    return CalibrationRun(info.ref, result, event.seq, digest)
