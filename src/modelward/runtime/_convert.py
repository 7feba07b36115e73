"""The routes of :mod:`modelward.runtime.compiled` and its cache of ONNX files (private).

A route takes the fitted model and an :class:`InputSpec` and returns a *runner*: a function from
columns (name -> 1-D array) to ``(labels or values, probabilities or None)``, already in the shapes,
dtypes and class order that the native model returns. A route that cannot take a model raises
:class:`Unsupported` with the reason; the caller checks equivalence and falls back.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import logging
import pickle
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from modelward.files import write_bytes

log = logging.getLogger("modelward.runtime.compiled")

CACHE_FORMAT = "modelward.compiled/1"
ONNX_HINT = "pip install 'modelward[onnx]'"
# ai.onnx.ml 3 is the newest version of that domain that onnxmltools' LightGBM converter accepts.
TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}
Outputs = tuple[np.ndarray, np.ndarray | None]
Runner = Callable[[Mapping[str, Any]], Outputs]
Kind = Literal["string", "number"]

# Models whose splits onnxruntime evaluates on float32: their ONNX input is cast to float32, which is
# also what scikit-learn's trees and XGBoost do with their input.
_TREE_MODULES = ("sklearn.tree", "sklearn.ensemble", "xgboost", "lightgbm")
_NOT_TREES = ("Voting", "Stacking", "Bagging")
# library: (class prefix, onnxmltools converter module, also the prefix of skl2onnx's alias for a class)
_BOOSTERS = {"xgboost": ("XGB", "XGBoost"), "lightgbm": ("LGBM", "LightGbm")}


def describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())  # one line, at most 300 characters
    return f"{type(exc).__name__}: {text[:300]}{'...' if len(text) > 300 else ''}"


class Unsupported(Exception):
    """This route cannot take this model; the message says why."""


@dataclass(frozen=True, slots=True)
class InputSpec:
    """How columns reach the compiled model.

    ``layout`` "columns": one ``[n, 1]`` input per column, strings as strings and numbers as float64
    (pipelines that start with a ColumnTransformer); "matrix": one ``[n, k]`` input ``X`` of ``dtype``.
    """

    names: tuple[str, ...]
    kinds: tuple[Kind, ...]
    layout: Literal["columns", "matrix"]
    dtype: Literal["float64", "float32"] = "float64"

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def frame_columns(frame: Any, spec: InputSpec) -> dict[str, np.ndarray]:
    """The spec's columns of a DataFrame, as views of one ``to_numpy`` (float64, or objects if any
    column holds strings): one call is much cheaper than a column access each for a row or two."""
    names = list(spec.names)
    if frame.columns.tolist() != names:
        absent = [n for n in names if n not in frame.columns]
        if absent:
            raise KeyError(f"the frame lacks column(s) {', '.join(absent)}")
        frame = frame[names]
    if "string" in spec.kinds:
        values = frame.to_numpy(dtype=object, na_value=None)
    else:
        values = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    return {n: values[:, j] for j, n in enumerate(names)}


def onnx_missing() -> str | None:
    """Why the ONNX route is unavailable (a package is not installed), or None."""
    import importlib.util

    for package in ("onnxruntime", "skl2onnx", "onnx"):
        if importlib.util.find_spec(package) is None:
            return f"{package} is not installed: {ONNX_HINT}"
    return None


def _steps(native: Any) -> tuple[Any, Any]:
    """(first step, final estimator) of a Pipeline; (model, model) otherwise."""
    steps = getattr(native, "steps", None)
    if isinstance(steps, list) and steps:
        return steps[0][1], steps[-1][1]
    return native, native


def _is_tree(estimator: Any) -> bool:
    cls = type(estimator)
    return cls.__module__.startswith(_TREE_MODULES) and not cls.__name__.startswith(_NOT_TREES)


def plan_inputs(native: Any, names: tuple[str, ...], kinds: tuple[Kind, ...]) -> InputSpec:
    from sklearn.compose import ColumnTransformer

    first, final = _steps(native)
    if isinstance(first, ColumnTransformer):
        return InputSpec(names, kinds, "columns")
    strings = [n for n, k in zip(names, kinds, strict=True) if k == "string"]
    if strings:
        problem = f"string column(s) {', '.join(strings)} reach the model without a ColumnTransformer"
        raise Unsupported(problem)
    # A bare tree model takes float32 (as scikit-learn and XGBoost do); a pipeline casts before its trees.
    return InputSpec(names, kinds, "matrix", "float32" if first is final and _is_tree(final) else "float64")


def _register_converters(final: Any) -> None:
    """Teach skl2onnx the XGBoost and LightGBM scikit-learn estimators, through onnxmltools."""
    library = type(final).__module__.split(".")[0]
    if library not in ("xgboost", "lightgbm"):
        return
    import importlib

    from skl2onnx import update_registered_converter
    from skl2onnx.common import shape_calculator as shapes

    prefix, converter = _BOOSTERS[library]
    lib = importlib.import_module(library)
    module = importlib.import_module(f"onnxmltools.convert.{library}.operator_converters.{converter}")
    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    for kind, calculate, options in (
        ("Classifier", shapes.calculate_linear_classifier_output_shapes, classifier_options),
        ("Regressor", shapes.calculate_linear_regressor_output_shapes, None),
    ):
        cls = getattr(lib, prefix + kind)
        convert = getattr(module, f"convert_{library}")
        update_registered_converter(cls, converter + cls.__name__, calculate, convert, options=options)


def _conversion_model(native: Any) -> tuple[Any, Any]:
    """The model to hand to skl2onnx (a Pipeline gets a float32 cast before its trees), and its final step.

    Fitted steps are shared, never refitted; XGBoost's booster is copied without its feature names,
    which its converter cannot parse.
    """
    from sklearn.pipeline import Pipeline

    first, final = _steps(native)
    converted = final
    if type(final).__module__.startswith("xgboost"):
        converted = copy.deepcopy(final)
        converted.get_booster().feature_names = None
    if first is final:
        return converted, converted
    steps: list[tuple[str, Any]] = list(native.steps[:-1])
    if _is_tree(final):
        from skl2onnx.sklapi import CastTransformer

        steps.append(("modelward_cast", CastTransformer(dtype=np.float32)))
    return Pipeline([*steps, (native.steps[-1][0], converted)]), converted


def to_onnx(native: Any, spec: InputSpec, classifier: bool) -> bytes:
    """The ONNX model of ``native``, probabilities as a plain [n, classes] tensor (no ZipMap)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    model, final = _conversion_model(native)
    _register_converters(final)
    if spec.layout == "matrix":
        tensor = FloatTensorType if spec.dtype == "float32" else DoubleTensorType
        initial: list[tuple[str, Any]] = [("X", tensor([None, len(spec.names)]))]
    else:
        initial = [
            (n, (StringTensorType if k == "string" else DoubleTensorType)([None, 1]))
            for n, k in zip(spec.names, spec.kinds, strict=True)
        ]
    options = {id(final): {"zipmap": False}} if classifier else None
    with warnings.catch_warnings():  # converters warn about their own internals
        warnings.simplefilter("ignore")
        try:
            onx = convert_sklearn(model, initial_types=initial, options=options, target_opset=TARGET_OPSET)
        except NameError as exc:  # a classifier whose converter has no ZipMap to turn off
            if options is None or "zipmap" not in str(exc):
                raise
            onx = convert_sklearn(model, initial_types=initial, target_opset=TARGET_OPSET)
    return bytes(onx.SerializeToString())


def _strings(values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=object).reshape(-1)
    if not all(isinstance(v, str) for v in arr):
        # onnxruntime takes str only: a missing value becomes its text, which no encoder has seen.
        arr = np.array([v if isinstance(v, str) else str(v) for v in arr], dtype=object)
    return arr.reshape(-1, 1)


def _matrix(spec: InputSpec, columns: Mapping[str, Any], dtype: str | None = None) -> np.ndarray:
    out = np.empty((len(columns[spec.names[0]]), len(spec.names)), dtype=dtype or spec.dtype)
    for j, name in enumerate(spec.names):
        out[:, j] = np.asarray(columns[name], dtype=np.float64)
    return out


def _feeds(spec: InputSpec, columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
    if spec.layout == "matrix":
        return {"X": _matrix(spec, columns)}
    return {
        n: _strings(columns[n]) if k == "string" else np.asarray(columns[n], dtype=np.float64).reshape(-1, 1)
        for n, k in zip(spec.names, spec.kinds, strict=True)
    }


class OnnxRunner:
    """An onnxruntime session over one ONNX model."""

    def __init__(
        self, data: bytes, spec: InputSpec, *, classes: np.ndarray | None, probabilities: bool, threads: int
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        found = sorted(i.name for i in self.session.get_inputs())
        wanted = ["X"] if spec.layout == "matrix" else sorted(spec.names)
        if found != wanted:
            raise Unsupported(f"the ONNX model's inputs {found} are not the columns {wanted}")
        self._outputs = [o.name for o in self.session.get_outputs()][: 2 if probabilities else 1]
        self._spec, self._classes = spec, classes
        # The binding under InferenceSession.run: its Python wrapper re-checks the feeds on every
        # call, which costs as much as running a small model. Fall back if a release renames it.
        binding = getattr(self.session, "_sess", None)
        self._run_binding = getattr(binding, "run", None)

    def _run(self, feeds: dict[str, np.ndarray]) -> list[Any]:
        if self._run_binding is not None:
            try:
                return list(self._run_binding(self._outputs, feeds, None))
            except TypeError:  # another signature: use the public API from now on
                self._run_binding = None
        return list(self.session.run(self._outputs, feeds))

    def __call__(self, columns: Mapping[str, Any]) -> Outputs:
        result = self._run(_feeds(self._spec, columns))
        if self._classes is None:
            return np.asarray(result[0], dtype=np.float64).reshape(-1), None
        if len(result) > 1:
            proba = np.asarray(result[1], dtype=np.float64)
            if proba.ndim == 2 and proba.shape[1] == len(self._classes):
                # scikit-learn's predict() is the first most probable class. A forest's exact ties
                # (10 votes of 20) come out of float32 arithmetic a hair apart, either way: compare
                # at 1e-6 so that a tie stays a tie and goes to the first class, as in scikit-learn.
                return self._classes[np.argmax(np.round(proba, 6), axis=1)], proba
        labels = np.asarray(result[0]).reshape(-1)
        if labels.dtype != self._classes.dtype:  # int64 or str from ONNX: the model's own dtype
            labels = labels.astype(self._classes.dtype)
        return labels, np.asarray(result[1], dtype=np.float64) if len(result) > 1 else None


def _binary(p: np.ndarray) -> np.ndarray:
    return np.column_stack((1.0 - p, p)) if p.ndim == 1 else p


def native_runner(native: Any, spec: InputSpec) -> tuple[str, Runner] | None:
    """LightGBM's ``Booster.predict`` or XGBoost's ``inplace_predict`` on a numeric matrix: what the
    scikit-learn wrappers compute, without their DataFrame handling. None for other models."""
    library = type(native).__module__.split(".")[0]
    if library == "lightgbm" and not hasattr(native, "fit"):
        return _lightgbm_booster(native, spec)
    if library not in ("lightgbm", "xgboost") or not hasattr(native, "fit"):
        return None
    if spec.layout != "matrix":
        raise Unsupported("it takes numeric columns only")
    raw = getattr(native, "classes_", None)
    classes = None if raw is None else np.asarray(raw)
    if library == "lightgbm":
        booster = native.booster_

        def lightgbm(columns: Mapping[str, Any]) -> Outputs:
            out = np.asarray(booster.predict(_matrix(spec, columns, "float64")))
            if classes is None:
                return out, None
            proba = _binary(out)
            return classes[np.argmax(proba, axis=1)], proba

        return "lightgbm-native", lightgbm
    objective = str(native.get_params().get("objective") or "")
    if classes is not None and objective not in ("binary:logistic", "multi:softprob"):
        raise Unsupported(f"not for the XGBoost objective {objective!r}")
    booster, missing = native.get_booster(), native.missing
    try:
        iterations = (0, int(native.best_iteration) + 1)
    except AttributeError:  # trained without early stopping: every tree
        iterations = (0, 0)

    def xgboost(columns: Mapping[str, Any]) -> Outputs:
        X = _matrix(spec, columns, "float32")  # XGBoost's own feature type
        out = np.asarray(
            booster.inplace_predict(X, iteration_range=iterations, missing=missing, validate_features=False)
        )
        if classes is None:
            return out, None
        if out.ndim == 1:  # binary:logistic gives P(class 1); XGBoost's cut is > 0.5
            return classes[(out > 0.5).astype(np.int64)], _binary(out)
        return classes[np.argmax(out, axis=1)], out

    return "xgboost-native", xgboost


def _lightgbm_booster(booster: Any, spec: InputSpec) -> tuple[str, Runner]:
    """A raw LightGBM ``Booster`` (logged with ``mlflow.lightgbm``): its ``predict`` on a matrix, which
    is what it answers on a frame (values, or probabilities for a classification objective)."""
    if spec.layout != "matrix":
        raise Unsupported("it takes numeric columns only")

    def lightgbm(columns: Mapping[str, Any]) -> Outputs:
        return np.asarray(booster.predict(_matrix(spec, columns, "float64"))), None

    return "lightgbm-native", lightgbm


# --- the cache of ONNX files --------------------------------------------------------------------------


class _Canonical(pickle.Pickler):
    """Pickles structured arrays field by field: their padding bytes (scikit-learn's tree nodes have
    some) are uninitialised memory, which would give the same model a new digest on every load."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, np.ndarray) and obj.dtype.names:
            fields = tuple(np.ascontiguousarray(obj[name]).tobytes() for name in obj.dtype.names)
            return tuple, ((str(obj.dtype), obj.shape, fields),)
        return NotImplemented


def cache_key(native: Any, spec: InputSpec, digest: str | None = None) -> str | None:
    """sha256 of the input layout and of ``digest`` (the model artifact's pinned sha256) or else of the
    model's bytes, pickled for hashing only; None if it does not pickle."""
    key = hashlib.sha256(CACHE_FORMAT.encode())
    key.update(json.dumps(spec.to_dict(), sort_keys=True).encode())
    if digest is not None:
        key.update(b"digest:" + digest.encode())
        return key.hexdigest()
    buffer = io.BytesIO()
    try:
        _Canonical(buffer, protocol=5).dump(native)
    except Exception as exc:  # a model that does not pickle is compiled every time
        log.info("compiled-model cache unavailable: the model does not pickle (%s)", describe(exc))
        return None
    key.update(buffer.getvalue())
    return key.hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str] = {}
    for package in ("onnx", "onnxruntime", "skl2onnx", "onnxmltools", "scikit-learn", "protobuf"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def cache_read(cache_dir: Path, key: str, spec: InputSpec) -> bytes | None:
    """The cached ONNX bytes if present and matching the sha256 pinned in the sidecar; else None."""
    path, sidecar = cache_dir / f"{key}.onnx", cache_dir / f"{key}.json"
    if not path.exists() and not sidecar.exists():
        return None
    try:
        pins = json.loads(sidecar.read_text("utf-8"))
        data = path.read_bytes()
    except (OSError, ValueError) as exc:
        log.warning("compiled-model cache %s is unreadable (%s): recompiling", path, exc)
        return None
    if not isinstance(pins, dict) or (pins.get("format"), pins.get("inputs")) != (
        CACHE_FORMAT,
        spec.to_dict(),
    ):
        log.warning(
            "compiled-model cache %s: %s is not its %s sidecar: recompiling", path, sidecar, CACHE_FORMAT
        )
        return None
    found, pinned = hashlib.sha256(data).hexdigest(), pins.get("sha256")
    if found != pinned:
        message = (
            "compiled-model cache %s: its sha256 is %s, its sidecar pins %s: the file changed, recompiling"
        )
        log.warning(message, path, found, pinned)
        return None
    return data


def cache_write(cache_dir: Path, key: str, data: bytes, spec: InputSpec, diff: float) -> None:
    sidecar = {
        "format": CACHE_FORMAT,
        "model_key": key,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "inputs": spec.to_dict(),
        "max_abs_diff": diff,
        "versions": _versions(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        # The compiled model is as private as the home it sits in: readable by its owner only.
        write_bytes(cache_dir / f"{key}.onnx", data, mode=0o600)
        write_bytes(cache_dir / f"{key}.json", json.dumps(sidecar, indent=2).encode(), mode=0o600)
    except OSError as exc:
        log.warning("cannot write the compiled-model cache in %s: %s", cache_dir, exc)


START_FORMAT = "modelward.start/1"


def start_path(cache_dir: Path, digest: str) -> Path:
    """Where a version's start record sits: named by the digest of its pinned model files."""
    return cache_dir / f"{digest}.start.json"


def start_write(
    cache_dir: Path,
    digest: str,
    spec: InputSpec,
    *,
    classes: np.ndarray | None,
    probabilities: bool,
    runtime: str,
    diff: float,
    rows: int,
) -> None:
    """Record what serving the checked ONNX file of the model with these pinned files needs without
    loading the native model first (:mod:`modelward.runtime.quickstart`)."""
    key = cache_key(None, spec, digest)
    record = {
        "format": START_FORMAT,
        "digest": digest,
        "key": key,
        "inputs": spec.to_dict(),
        "classes": None if classes is None else classes.tolist(),
        "classes_dtype": None if classes is None else classes.dtype.str,
        "probabilities": probabilities,
        "runtime": runtime,
        "max_abs_diff": diff,
        "sample_rows": rows,
    }
    try:
        write_bytes(start_path(cache_dir, digest), json.dumps(record, indent=2).encode(), mode=0o600)
    except (OSError, TypeError, ValueError) as exc:  # classes JSON cannot hold: start the long way
        log.info("no start record for %s: %s", digest, describe(exc))
