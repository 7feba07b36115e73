"""A loaded version made ready for the request path: columns in, labels and probabilities out.

:func:`prepare` compiles the model (ONNX or a booster's fast path, see :mod:`modelward.runtime.compiled`)
when it can, and otherwise wraps the native model. Either way the result is an
:class:`ArrayPredictor`: validated columns (name -> 1-D array) go in, no pandas on the compiled path,
and ``(labels or values, probabilities or None)`` come out, labels in the model's class values.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelward.runtime.compiled import CompiledModel, CompileResult, compile_model
from modelward.runtime.model import LoadedModel

__all__ = ["ArrayPredictor", "Outputs", "from_compiled", "model_digest", "prepare"]

log = logging.getLogger(__name__)

Outputs = tuple[np.ndarray, np.ndarray | None]  # labels (or values), probabilities rows x classes


@dataclass(frozen=True, eq=False)
class ArrayPredictor:
    """``predict(columns)`` for one loaded version; ``runtime`` names what runs it."""

    model: LoadedModel
    runtime: str
    compiled: CompileResult | None
    _run: Callable[[Mapping[str, np.ndarray]], Outputs]

    @property
    def has_probabilities(self) -> bool:
        return self.model.is_classifier and hasattr(self.model.native, "predict_proba")

    def predict(self, columns: Mapping[str, np.ndarray]) -> Outputs:
        return self._run(columns)

    def describe(self) -> dict[str, Any]:
        c = self.compiled
        return {
            "runtime": self.runtime,
            "compiled": bool(c and c.compiled),
            "reason": c.reason if c else "compilation is turned off",
            "max_abs_diff": c.max_abs_diff if c else None,
            "sha256": c.sha256 if c else None,
            "cached": c.cached if c else False,
            "compile_seconds": round(c.seconds, 3) if c else None,
        }


def from_compiled(model: LoadedModel, result: CompileResult, compiled: CompiledModel) -> ArrayPredictor:
    """The predictor of a model already compiled and checked (a start from the compiled cache)."""
    return ArrayPredictor(model, result.runtime, result, _compiled(model, compiled))


def model_digest(pins: Mapping[str, Any]) -> str:
    """sha256 over the model files' pinned digests: the compiled cache's key for this version."""
    h = hashlib.sha256()
    for path in sorted(p for p in pins if p.startswith("model/")):
        h.update(f"{path}\0{pins[path].sha256}\n".encode())
    return h.hexdigest()


def _frame(model: LoadedModel, columns: Mapping[str, np.ndarray]) -> Any:
    import pandas as pd

    names = model.schema.names if len(model.schema) else tuple(columns)
    data = {n: pd.Series(columns[n], dtype=columns[n].dtype, copy=False) for n in names}
    return pd.DataFrame(data, copy=False)


def _native(model: LoadedModel) -> Callable[[Mapping[str, np.ndarray]], Outputs]:
    proba = model.is_classifier and hasattr(model.native, "predict_proba")
    classes = np.asarray(model.class_values, dtype=object) if proba else None

    def run(columns: Mapping[str, np.ndarray]) -> Outputs:
        frame = _frame(model, columns)
        if classes is not None:
            p = np.asarray(model.predict_proba(frame), dtype=np.float64)
            # scikit-learn's own rule for predict(): the most probable class.
            return classes[np.argmax(p, axis=1)], p
        return np.asarray(model.predict(frame)), None

    return run


def _compiled(model: LoadedModel, compiled: CompiledModel) -> Callable[[Mapping[str, np.ndarray]], Outputs]:
    proba = model.is_classifier and compiled.has_proba
    run_arrays = compiled.predict_arrays

    def run(columns: Mapping[str, np.ndarray]) -> Outputs:
        labels, p = run_arrays(columns)
        return np.asarray(labels), (p if proba else None)

    return run


def prepare(
    model: LoadedModel,
    *,
    compile: bool = True,
    cache_dir: Path | None = None,
    digest: str | None = None,
) -> ArrayPredictor:
    """The fastest checked way to run ``model``: compiled when ``compile`` and it converts and
    agrees with the native model on the reference sample, else the native model (reason logged)."""
    if not compile:
        return ArrayPredictor(model, model.runtime, None, _native(model))
    runner, result = compile_model(model, cache_dir=cache_dir, digest=digest)
    if isinstance(runner, CompiledModel):
        return ArrayPredictor(model, result.runtime, result, _compiled(model, runner))
    return ArrayPredictor(model, model.runtime, result, _native(model))
