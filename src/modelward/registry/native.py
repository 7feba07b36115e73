"""Load an MLflow model by its own flavor's loader, the same way at registration and at serving.

Each flavor goes through MLflow's loader for it (``mlflow.lightgbm.load_model``,
``mlflow.xgboost.load_model``, ``mlflow.catboost.load_model``, ``mlflow.pyfunc.load_model`` for ONNX
and generic models), except scikit-learn and LightGBM scikit-learn models saved with skops: those are
loaded by modelward with its reviewed trusted list, not the list in the model's own MLmodel file
(which the model's author controls). What comes back always has ``predict(frame)``; classifiers that
can give probabilities also have ``predict_proba(frame)`` and ``classes_``.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelward.errors import ModelLoadError, ModelwardError, UnsafeModelFormat
from modelward.registry.flavors import allow_mlflow_deserialization, is_pickle_based
from modelward.registry.trusted import REVIEWED_TRUSTED_TYPES

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NativeModel", "feature_names", "flavor_name", "load_native"]

log = logging.getLogger(__name__)

_LIBRARY_FLAVORS = ("sklearn", "lightgbm", "xgboost", "catboost")


@dataclass(frozen=True, slots=True)
class NativeModel:
    """The object that predicts, and the name of the runtime it runs on (shown by ``show``)."""

    model: Any
    runtime: str


def flavor_name(flavors: Mapping[str, Any]) -> str:
    """The flavor modelward loads the model by (the first library flavor, else ONNX, else pyfunc)."""
    return next((f for f in (*_LIBRARY_FLAVORS, "onnx") if f in flavors), "python_function")


def load_native(
    model_dir: Path,
    flavors: Mapping[str, Mapping[str, Any]],
    *,
    trusted: Iterable[str] = (),
    allow_pickle: bool = False,
    what: str = "the model",
) -> NativeModel:
    """The model in ``model_dir`` (a local copy of the MLflow model), loaded by its flavor.

    A library's own failure (a file that is not what its flavor says) is a :class:`ModelLoadError`."""
    try:
        return _load(model_dir, flavors, trusted, allow_pickle, what)
    except ModelwardError:
        raise
    except Exception as exc:  # each library raises its own types
        raise ModelLoadError(what, flavor_name(flavors), f"{type(exc).__name__}: {exc}") from exc


def _load(
    model_dir: Path,
    flavors: Mapping[str, Mapping[str, Any]],
    trusted: Iterable[str],
    allow_pickle: bool,
    what: str,
) -> NativeModel:
    _import_libraries(flavors)
    pickled, fmt = is_pickle_based(flavors)
    if pickled:
        if not allow_pickle:
            raise UnsafeModelFormat(f"{what} ({fmt})")
        return _pickled(model_dir, flavors, fmt)
    for flavor in ("sklearn", "lightgbm"):
        conf = flavors.get(flavor)
        if conf is None or conf.get("serialization_format") != "skops":
            continue
        if flavor == "lightgbm" and _lightgbm_booster(conf):
            break  # a Booster is saved in LightGBM's text format whatever the field says
        file = str(conf["pickled_model"] if "pickled_model" in conf else conf["data"])
        return NativeModel(
            _load_skops(model_dir / file, sorted(REVIEWED_TRUSTED_TYPES | set(trusted))), f"{flavor}-skops"
        )
    if "lightgbm" in flavors:
        import mlflow.lightgbm

        return NativeModel(mlflow.lightgbm.load_model(str(model_dir)), "lightgbm-booster")
    if "xgboost" in flavors:
        import mlflow.xgboost

        model = mlflow.xgboost.load_model(str(model_dir))
        if hasattr(model, "fit"):
            return NativeModel(model, "xgboost")
        # A raw Booster predicts on a DMatrix: MLflow's pyfunc wrapper builds it from the frame.
        return NativeModel(_Pyfunc(_pyfunc(model_dir)), "xgboost-booster")
    if "catboost" in flavors:
        import mlflow.catboost

        return NativeModel(mlflow.catboost.load_model(str(model_dir)), "catboost")
    if "onnx" in flavors:
        return NativeModel(_Pyfunc(_pyfunc(model_dir)), "onnxruntime (mlflow.onnx)")
    return NativeModel(_Pyfunc(_pyfunc(model_dir)), "mlflow-pyfunc")


_IMPORTS = threading.Lock()
_LIBRARIES = {
    "sklearn": ("sklearn", "skops.io", "mlflow.sklearn"),
    "lightgbm": ("lightgbm", "mlflow.lightgbm"),
    "xgboost": ("xgboost", "mlflow.xgboost"),
    "catboost": ("catboost", "mlflow.catboost"),
    "onnx": ("onnxruntime", "mlflow.onnx"),
    "python_function": ("mlflow.pyfunc",),
}


def _import_libraries(flavors: Mapping[str, Any]) -> None:
    """Import the flavors' libraries one thread at a time. A server loads its models in parallel, and
    two threads importing XGBoost at once can each see it half initialised (its modules import each
    other), which fails one of the loads."""
    with _IMPORTS:
        for flavor in flavors:
            for module in _LIBRARIES.get(flavor, ()):
                importlib.import_module(module)


def _lightgbm_booster(conf: Mapping[str, Any]) -> bool:
    return str(conf.get("model_class", "lightgbm.basic.Booster")) == "lightgbm.basic.Booster"


def _pyfunc(model_dir: Path) -> Any:
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(str(model_dir))


def _pickled(model_dir: Path, flavors: Mapping[str, Any], fmt: str) -> NativeModel:
    """A model whose format needs unpickling, accepted by an explicit opt-in pinned at registration."""
    with allow_mlflow_deserialization():
        pyfunc = _pyfunc(model_dir)
    if any(f in flavors for f in _LIBRARY_FLAVORS):
        # A library model saved with pickle: use the library object, with its predict_proba.
        try:
            return NativeModel(pyfunc.get_raw_model(), f"mlflow-pyfunc ({fmt})")
        except (AttributeError, NotImplementedError, ValueError):
            pass
    # A custom python_function model is called through MLflow's wrapper (its own predict signature).
    return NativeModel(_Pyfunc(pyfunc), f"mlflow-pyfunc ({fmt})")


def _load_skops(path: Path, trusted: list[str]) -> Any:
    import skops.io as sio

    data = path.read_bytes()
    untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in trusted]
    if untrusted:
        raise UnsafeModelFormat(f"{path.name} (skops types not trusted: {', '.join(sorted(untrusted))})")
    return sio.loads(data, trusted=trusted)


_LABELS = ("label", "output_label", "predictions", "prediction", "predict")


class _Pyfunc:
    """MLflow's pyfunc wrapper with its answer as one array: of a frame of several outputs (an ONNX
    classifier's label and probability map) the label column.

    ``pyfunc`` is MLflow's own ``PyFuncModel``, kept for anything that needs it (metadata, schema).
    """

    def __init__(self, pyfunc: Any) -> None:
        self.pyfunc = pyfunc

    def predict(self, frame: pd.DataFrame) -> Any:
        out = self.pyfunc.predict(frame)
        columns = getattr(out, "columns", None)
        if columns is None or len(columns) == 1:
            return out
        name = next((c for c in _LABELS if c in columns), None)
        if name is None:
            return out
        return np.asarray(out[name])

    def __repr__(self) -> str:
        return f"pyfunc({self.pyfunc.metadata.flavors.get('python_function', {}).get('loader_module')})"


def feature_names(model: Any) -> list[str] | None:
    """The feature names the model was fitted on, as its library records them, or None."""
    raw = getattr(model, "feature_names_in_", None)
    if raw is None:
        raw = getattr(model, "feature_names_", None)  # CatBoost
    if raw is None and hasattr(model, "feature_name") and callable(model.feature_name):
        raw = model.feature_name()  # LightGBM Booster
    if raw is None and type(model).__module__.startswith("xgboost"):
        booster = model.get_booster() if hasattr(model, "get_booster") else model
        raw = getattr(booster, "feature_names", None)
    if raw is None:
        return None
    names = [str(n) for n in raw]
    return names or None
