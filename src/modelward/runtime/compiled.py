"""Compiled inference: a model converted to ONNX (or put on a native fast path), checked, and cached.

:func:`compile_model` converts a scikit-learn model (linear models, trees and tree ensembles including
HistGradientBoosting, pipelines that start with a ColumnTransformer), an XGBoost or a LightGBM
scikit-learn estimator to ONNX and runs it with onnxruntime. Before it is used, the compiled model must
agree with the native one on a reference sample: identical labels, probabilities within ``tolerance``
(regression outputs within ``tolerance * max(1, |y|)``). LightGBM and XGBoost models that do not convert
fall back to their boosters' own fast predict; anything else that does not convert or does not agree
falls back to the native model, with the reason logged and returned. Nothing here raises for a model
that cannot be compiled, and a missing ``onnxruntime`` is such a reason.

The ONNX file is cached as ``<cache_dir>/<key>.onnx``: ``key`` is the sha256 of the input layout and of
the model artifact's pinned digest (``digest=``), or else of the model's bytes (pickled for hashing, never
unpickled). A sidecar ``<key>.json`` pins the ONNX file's own sha256, checked on every reuse: a file that
changed is recompiled, and the log says why. See docs/compiled-runtime.md.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelward.drift.profile import DatasetProfile, NumericProfile
from modelward.errors import ModelwardError
from modelward.runtime._convert import (
    CACHE_FORMAT,
    InputSpec,
    Kind,
    OnnxRunner,
    Runner,
    Unsupported,
    cache_key,
    cache_read,
    cache_write,
    describe,
    frame_columns,
    native_runner,
    onnx_missing,
    plan_inputs,
    start_write,
    to_onnx,
)
from modelward.runtime.model import LoadedModel
from modelward.schema import FeatureSchema

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CACHE_FORMAT", "CompileResult", "CompiledModel", "compile_model", "sample_frame"]

log = logging.getLogger(__name__)

SAMPLE_ROWS = 2000


@dataclass(frozen=True, slots=True)
class CompileResult:
    """What :func:`compile_model` did.

    ``runtime`` is "onnxruntime", "lightgbm-native" or "xgboost-native" when ``compiled``, else the
    native model's runtime name; ``reason`` says why ONNX was not used (None when it was); ``sha256`` is
    the ONNX file's; ``max_abs_diff`` the largest probability (or regression value) difference on the
    sample; ``seconds`` the time the whole call took.
    """

    runtime: str
    compiled: bool
    reason: str | None
    sha256: str | None
    max_abs_diff: float | None
    seconds: float
    cached: bool = False
    sample_rows: int = 0


class CompiledModel:
    """``predict(frame)`` / ``predict_proba(frame)`` like the native model, on a compiled runtime.

    ``predict_arrays(columns)`` is the hot path without pandas: a mapping of column name to 1-D array
    (or list) gives ``(labels or values, probabilities or None)``.
    """

    def __init__(
        self,
        runtime: str,
        spec: InputSpec,
        runner: Runner,
        *,
        classes: np.ndarray | None,
        probabilities: bool,
    ) -> None:
        self.runtime = runtime
        self.spec = spec
        self.sha256: str | None = None  # the ONNX file's
        self.has_proba = probabilities
        if classes is not None:
            self.classes_ = classes
        self._run = runner

    def predict_arrays(self, columns: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
        labels, proba = self._run(columns)
        return labels, proba if self.has_proba else None

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self._run(frame_columns(frame, self.spec))[0]

    @property
    def predict_proba(self) -> Callable[[pd.DataFrame], np.ndarray]:
        """Probabilities, [n, classes] in the model's class order; absent (``hasattr`` is False) for
        models without them, as with scikit-learn."""
        if not self.has_proba:
            raise AttributeError(f"this {self.runtime} model has no predict_proba()")
        return self._predict_proba

    def _predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        proba = self._run(frame_columns(frame, self.spec))[1]
        if proba is None:
            raise ModelwardError(f"this {self.runtime} model gave no probabilities")
        return proba

    def __repr__(self) -> str:
        return f"CompiledModel(runtime={self.runtime!r}, inputs={len(self.spec.names)})"


def compile_model(
    model: LoadedModel,
    *,
    cache_dir: Path | None = None,
    sample: pd.DataFrame | None = None,
    tolerance: float = 1e-5,
    threads: int = 1,
    digest: str | None = None,
) -> tuple[Any, CompileResult]:
    """``(object to predict with, result)``: a :class:`CompiledModel` that agrees with ``model`` on
    ``sample`` (default: the input example, then :data:`SAMPLE_ROWS` rows drawn from the reference
    profile by :func:`sample_frame`), else ``model.native``. ``threads``: onnxruntime's intra-op threads.
    ``digest``: the model artifact's pinned sha256, to key the cache by instead of the model's bytes.
    """
    started = time.perf_counter()
    try:
        job = _job(model, sample, tolerance)
    except Exception as exc:  # no sample, or a native model that fails on it: nothing to check against
        return _native(model, [f"no reference sample to check against: {describe(exc)}"], started, 0)
    reasons: list[str] = []
    try:
        spec = plan_inputs(model.native, job.spec.names, job.spec.kinds)
    except Unsupported as exc:
        reasons.append(f"not convertible to ONNX: {exc}")
        spec = job.spec
    else:
        outcome = onnx_missing() or _onnx(job, spec, threads, cache_dir, digest)
        if not isinstance(outcome, str):
            compiled, diff, cached = outcome
            log.info("%s: compiled to ONNX (max abs diff %.3g)", model.info.ref, diff)
            rows = len(job.labels)
            if cache_dir is not None and digest is not None:
                start_write(
                    cache_dir,
                    digest,
                    spec,
                    classes=job.classes,
                    probabilities=job.has_proba,
                    runtime=model.runtime,
                    diff=diff,
                    rows=rows,
                )
            return compiled, CompileResult(
                "onnxruntime", True, None, compiled.sha256, diff, _since(started), cached, rows
            )
        reasons.append(outcome)
    try:
        route = native_runner(model.native, spec)
        if route is None:
            return _native(model, reasons, started, len(job.labels))
        runtime = route[0]
        compiled = CompiledModel(runtime, spec, route[1], classes=job.classes, probabilities=job.has_proba)
        diff = _check(compiled, job)
    except Unsupported as exc:
        reasons.append(f"native fast path: {exc}")
    except Exception as exc:  # a booster that rejects the matrix: fall back rather than fail the load
        reasons.append(f"the native fast path failed: {describe(exc)}")
    else:
        reason = "; ".join(reasons)
        log.info("%s: using the %s fast path (%s)", model.info.ref, runtime, reason)
        return compiled, CompileResult(
            runtime, True, reason, None, diff, _since(started), False, len(job.labels)
        )
    return _native(model, reasons, started, len(job.labels))


def _since(started: float) -> float:
    return time.perf_counter() - started


def _native(model: LoadedModel, reasons: list[str], started: float, rows: int) -> tuple[Any, CompileResult]:
    reason = "; ".join(reasons)
    log.warning("%s: serving the native model (%s): %s", model.info.ref, model.runtime, reason)
    return model.native, CompileResult(model.runtime, False, reason, None, None, _since(started), False, rows)


@dataclass(frozen=True, slots=True)
class _Job:
    """The reference sample as columns, and what the native model answers on it."""

    native: Any
    spec: InputSpec  # the sample's columns, as the "columns" layout
    columns: dict[str, np.ndarray]
    labels: np.ndarray
    proba: np.ndarray | None
    classes: np.ndarray | None
    has_proba: bool
    tolerance: float


def _job(model: LoadedModel, sample: pd.DataFrame | None, tolerance: float) -> _Job:
    """The sample (schema columns, in order) and the native outputs; rows with missing values are
    dropped if the native model refuses them."""
    import pandas as pd

    if sample is None:
        parts = [model.warm_frame()] if model.example is not None else []
        try:
            parts.append(sample_frame(model.profile, model.schema))
        except ValueError:  # a profile without every column: the input example alone, if any
            if not parts:
                raise
        sample = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    frame = model.schema.select(sample) if len(model.schema) else sample
    if not len(frame):
        raise Unsupported("the sample is empty")
    has_proba = model.is_classifier and hasattr(model.native, "predict_proba")
    try:
        labels = np.asarray(model.predict(frame))
    except (ValueError, TypeError) as exc:
        complete = frame.dropna().reset_index(drop=True)
        if not 0 < len(complete) < len(frame):
            raise
        log.debug("%s: the native model refuses missing values (%s): checking complete rows", model, exc)
        frame, labels = complete, np.asarray(model.predict(complete))
    proba = np.asarray(model.predict_proba(frame), dtype=np.float64) if has_proba else None
    kinds: list[Kind] = []
    for name in frame.columns:
        if len(model.schema):
            field = model.schema[str(name)]
            kinds.append("number" if field.numeric or field.type == "boolean" else "string")
        else:
            kinds.append("number" if pd.api.types.is_numeric_dtype(frame[name].dtype) else "string")
    spec = InputSpec(tuple(str(c) for c in frame.columns), tuple(kinds), "columns")
    raw = getattr(model.native, "classes_", None) if model.is_classifier else None
    classes = np.asarray(raw) if raw is not None else None
    if model.is_classifier and classes is None:
        classes = np.asarray(model.classes, dtype=object)
    return _Job(model.native, spec, frame_columns(frame, spec), labels, proba, classes, has_proba, tolerance)


def _check(compiled: CompiledModel, job: _Job) -> float:
    """The largest difference on the sample; raises :class:`Unsupported` unless the outputs agree:
    identical labels and probabilities within the tolerance, or regression values within
    ``tolerance * max(1, |y|)``."""
    got, proba = compiled.predict_arrays(job.columns)
    if job.classes is None:
        want = np.asarray(job.labels, dtype=np.float64).reshape(-1)
        diff = np.abs(np.asarray(got, dtype=np.float64).reshape(-1) - want)
        worst = float(np.max(diff, initial=0.0))
        if not np.all(diff <= job.tolerance * np.maximum(1.0, np.abs(want))):  # False for NaN too
            raise Unsupported(f"predictions differ from the native model's by up to {worst:.3g}")
        return worst
    got, want = np.asarray(got, dtype=object).reshape(-1), np.asarray(job.labels, dtype=object).reshape(-1)
    if got.shape != want.shape or (differ := int(np.sum(got != want))):
        n = "all" if got.shape != want.shape else differ
        raise Unsupported(f"{n} of {len(want)} sample labels differ from the native model's")
    if proba is None or job.proba is None:
        return 0.0
    if proba.shape != job.proba.shape:
        raise Unsupported(f"probabilities of shape {proba.shape}, not the native {job.proba.shape}")
    worst = float(np.max(np.abs(proba - job.proba), initial=0.0))
    if not worst <= job.tolerance:  # False for NaN too
        raise Unsupported(f"probabilities differ from the native model's by up to {worst:.3g}")
    return worst


def _onnx(
    job: _Job, spec: InputSpec, threads: int, cache_dir: Path | None, digest: str | None
) -> tuple[CompiledModel, float, bool] | str:
    """The compiled model, its max difference, whether it came from the cache; else why not."""
    model = job.native
    key = cache_key(model, spec, digest) if cache_dir is not None else None
    data = cache_read(cache_dir, key, spec) if cache_dir is not None and key is not None else None
    cached = data is not None
    try:
        data = data or to_onnx(model, spec, job.classes is not None)
        runner = OnnxRunner(data, spec, classes=job.classes, probabilities=job.has_proba, threads=threads)
    except Exception as exc:  # converters raise anything from NotImplementedError to RuntimeError
        return f"ONNX conversion failed: {describe(exc)}"
    sha256 = hashlib.sha256(data).hexdigest()
    compiled = CompiledModel("onnxruntime", spec, runner, classes=job.classes, probabilities=job.has_proba)
    compiled.sha256 = sha256
    try:
        diff = _check(compiled, job)
    except Unsupported as exc:
        return f"the ONNX model does not match the native one: {exc}"
    except Exception as exc:
        return f"the ONNX model failed on the sample: {describe(exc)}"
    if cache_dir is not None and key is not None and not cached:
        cache_write(cache_dir, key, data, spec, diff)
    return compiled, diff, cached


# --- a sample drawn from the reference profile ----------------------------------------------------------

_SCHEMA_DTYPES = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32"}
_SCHEMA_DTYPES |= {"boolean": "bool", "string": "str"}


def sample_frame(
    profile: DatasetProfile,
    schema: FeatureSchema | None = None,
    *,
    rows: int = SAMPLE_ROWS,
    seed: int = 0,
    edge_share: float = 0.1,
) -> pd.DataFrame:
    """``rows`` rows drawn from a reference profile, the same for the same ``seed``.

    A numeric value picks a bin with the reference's frequencies, then a point uniformly within it;
    ``edge_share`` of them sit exactly on a bin edge instead (the reference's quantiles, where trees
    tend to split). A categorical value picks a category by frequency. Values are missing at the
    reference's missing rate. Columns come in schema order with the schema's types (integers
    rounded; without a schema, the profile's order and dtypes); a column the profile lacks is all
    missing if optional, else :class:`ValueError`.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    typed = schema is not None and len(schema) > 0
    names = schema.names if schema is not None and typed else tuple(profile.features)
    data: dict[str, Any] = {}
    for name in names:
        field = schema[name] if schema is not None and typed else None
        feature = profile.features.get(name)
        if feature is None:
            if field is None or field.required:
                raise ValueError(f"the reference profile has no column '{name}'")
            data[name] = np.full(rows, None, dtype=object)
            continue
        if field is not None and field.type not in _SCHEMA_DTYPES:
            raise ValueError(f"column '{name}' is of type {field.type}, which cannot be sampled")
        dtype = _SCHEMA_DTYPES[field.type] if field is not None else _profile_dtype(feature.dtype)
        if isinstance(feature, NumericProfile):
            values: np.ndarray = _numeric(feature, rng, rows, edge_share, dtype)
        else:
            keys: list[str | None] = list(feature.categories)
            weights = np.asarray(list(feature.categories.values()), dtype=np.float64)
            p = weights / weights.sum() if weights.sum() > 0 else None
            values = np.asarray(keys or [None], dtype=object)[rng.choice(max(len(keys), 1), rows, p=p)]
        data[name] = _typed(values, rng.random(rows) < feature.missing_rate, dtype)
    return pd.DataFrame(data, columns=list(names))


def _profile_dtype(dtype: str) -> str:
    lowered = dtype.lower()
    if lowered.startswith(("int", "uint")):
        return "int64"
    if lowered.startswith("float"):
        return "float64"
    return "bool" if lowered in ("bool", "boolean") else "str"


def _numeric(
    feature: NumericProfile, rng: np.random.Generator, rows: int, edge_share: float, dtype: str
) -> np.ndarray:
    edges = np.asarray(feature.edges, dtype=np.float64)
    if edges.size < 2:
        constant = edges[0] if edges.size else (feature.mean or 0.0)
        return np.full(rows, constant, dtype=np.float64)
    inner = np.asarray(feature.counts[1 : edges.size], dtype=np.float64)  # [under, inner..., over]
    bins = rng.choice(edges.size - 1, rows, p=inner / inner.sum() if inner.sum() > 0 else None)
    low, high = edges[bins], edges[bins + 1]
    values = low + rng.random(rows) * (high - low)
    if dtype.startswith("int"):  # a uniform pick among the integers of [low, high), or of [low, high] last
        first = np.ceil(low)
        count = np.where(bins == edges.size - 2, np.floor(high), np.ceil(high) - 1) - first + 1
        values = np.where(count >= 1, first + np.floor(rng.random(rows) * np.maximum(count, 1)), values)
    on_edge = rng.random(rows) < edge_share
    values[on_edge] = np.where(rng.random(rows) < 0.5, low, high)[on_edge]
    return values


def _typed(values: np.ndarray, missing: np.ndarray, dtype: str) -> np.ndarray:
    if dtype in ("str", "bool"):
        if dtype == "str":
            out = np.asarray([v if v is None else str(v) for v in values], dtype=object)
        else:
            out = (values != 0 if values.dtype.kind == "f" else values == "True").astype(object)
        out[missing] = None
        return out if dtype == "str" or missing.any() else out.astype(bool)
    numbers = np.asarray([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    numbers[missing] = np.nan
    if dtype.startswith("int"):
        numbers = np.rint(numbers)
        return numbers if np.isnan(numbers).any() else numbers.astype(dtype)
    return numbers.astype(dtype)
