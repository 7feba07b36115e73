"""Which MLflow flavor saves a model, how it is logged, and which formats load without pickle."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Literal

from modelward.errors import RegistrationError
from modelward.registry.task import Task

__all__ = [
    "Flavor",
    "allow_mlflow_deserialization",
    "detect_flavor",
    "is_pickle_based",
    "pip_requirements",
]


@dataclass(frozen=True, slots=True)
class Flavor:
    name: Literal["sklearn", "xgboost", "lightgbm"]
    task: Task
    model_class: str
    classes: tuple[str, ...]


def _qualname(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def detect_flavor(model: Any) -> Flavor:
    """The flavor for an in-memory model: scikit-learn estimators and the XGBoost/LightGBM sklearn API."""
    module = type(model).__module__.split(".")[0]
    if module in {"xgboost", "lightgbm"} and not hasattr(model, "fit"):
        raise RegistrationError(
            f"{_qualname(model)} is a raw booster: register the scikit-learn API model "
            "(XGBClassifier, LGBMRegressor, ...) or log it with MLflow and use register_mlflow_model()"
        )
    if not hasattr(model, "predict"):
        raise RegistrationError(f"{_qualname(model)} has no predict(): not a model modelward can register")
    name: Literal["sklearn", "xgboost", "lightgbm"]
    if module == "xgboost":
        name = "xgboost"
    elif module == "lightgbm":
        name = "lightgbm"
    elif hasattr(model, "get_params"):
        name = "sklearn"
    else:
        raise RegistrationError(
            f"{_qualname(model)} is not a scikit-learn, XGBoost or LightGBM model; "
            "log it with MLflow and use register_mlflow_model()"
        )
    from sklearn.base import is_classifier

    classes: tuple[str, ...] = ()
    task: Task = "regression"
    if is_classifier(model) or hasattr(model, "predict_proba"):
        task = "classification"
        raw = getattr(model, "classes_", None)
        if raw is None:
            raise RegistrationError(f"{_qualname(model)} is a classifier without classes_: is it fitted?")
        classes = tuple(str(c) for c in raw)
    return Flavor(name, task, _qualname(model), classes)


def pip_requirements(flavor: str) -> list[str]:
    """Pinned requirements, given so MLflow does not spend seconds inferring them in a subprocess."""
    packages = {
        "sklearn": ["scikit-learn", "skops"],
        "xgboost": ["xgboost"],
        "lightgbm": ["lightgbm", "skops"],
    }
    out: list[str] = []
    for package in packages.get(flavor, []):
        dist = "xgboost-cpu" if package == "xgboost" and not _installed("xgboost") else package
        version = _installed(dist)
        out.append(f"{package}=={version}" if version else package)
    return out


def _installed(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def is_pickle_based(flavors: Mapping[str, Mapping[str, Any]]) -> tuple[bool, str]:
    """Whether loading this MLmodel needs unpickling; with the flavor that decides it.

    Safe without pickle: scikit-learn and LightGBM models in skops format, LightGBM boosters in
    their text format, XGBoost in its JSON/UBJ format, CatBoost in its own format, ONNX. Anything
    else, custom pyfunc models included, runs pickled or arbitrary code when loaded.
    """
    if "sklearn" in flavors:
        fmt = str(flavors["sklearn"].get("serialization_format", "pickle"))
        return fmt != "skops", f"sklearn ({fmt})"
    if "lightgbm" in flavors:
        conf = flavors["lightgbm"]
        if conf.get("model_class", "lightgbm.basic.Booster") == "lightgbm.basic.Booster":
            return False, "lightgbm (booster text)"
        fmt = str(conf.get("serialization_format", "cloudpickle"))
        return fmt != "skops", f"lightgbm ({fmt})"
    if "xgboost" in flavors:
        return False, "xgboost"
    if "catboost" in flavors:
        return False, "catboost"
    if "onnx" in flavors:
        return False, "onnx"
    return True, "python_function" if "python_function" in flavors else ", ".join(flavors) or "unknown"


_ENV_LOCK = threading.Lock()


@contextmanager
def allow_mlflow_deserialization() -> Iterator[None]:
    """Let MLflow deserialise a model for the block (MLflow 3 refuses unless this variable is set).

    Only entered for models that are skops (checked against modelward's trusted list) or that the
    user registered with an explicit pickle opt-in, after their artifacts were verified.
    """
    name = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
    with _ENV_LOCK:
        before = os.environ.get(name)
        os.environ[name] = "true"
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = before
