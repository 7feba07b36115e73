"""Start serving a version from its checked ONNX file, before its native model is loaded.

Loading a scikit-learn model means importing scikit-learn and skops first: about two seconds of a
server's start-up, for a model the server then runs through onnxruntime anyway. When a version was
compiled before (same pinned model files: the cache is keyed by their digest), its ONNX file agreed
with the native model on the reference sample then, and the compiled cache kept a *start record*
beside it: the input layout, the classes as the native model returns them, whether it has
probabilities. :func:`start_from_cache` checks the version's files against their pins as a full load
does (:func:`~modelward.runtime.loader.fetch_version`), checks the ONNX file against the sha256 its
sidecar pins, and returns a model whose ``native`` is the compiled model, ready to serve.

The server treats such a start as provisional: once every model answers, it loads each native model
the usual way, checks the compiled model against it again, and swaps the result in
(:meth:`modelward.serving.models.ModelManager.settle`). Anything missing or not matching (no record,
another format, a changed file) returns None, and the version loads the long way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from modelward.registry.registry import Registry
from modelward.registry.types import VersionInfo
from modelward.runtime._convert import (
    START_FORMAT,
    InputSpec,
    OnnxRunner,
    cache_key,
    cache_read,
    describe,
    onnx_missing,
    start_path,
)
from modelward.runtime.compiled import CompiledModel, CompileResult
from modelward.runtime.loader import Fetched, fetch_version
from modelward.runtime.predictor import ArrayPredictor, from_compiled

__all__ = ["start_from_cache"]

log = logging.getLogger(__name__)


def start_from_cache(
    registry: Registry, info: VersionInfo, cache_dir: Path, *, threads: int = 1
) -> ArrayPredictor | None:
    """The version's predictor on its cached ONNX file (``predictor.model.native`` is the compiled
    model), or None when the cache holds no start for these pinned files. Raises what a load raises
    for files that do not match their pins."""
    if onnx_missing() is not None:
        return None
    started = time.perf_counter()
    fetched = fetch_version(registry, info)
    try:
        return _start(fetched, cache_dir, threads, started)
    finally:
        fetched.close()


def _start(fetched: Fetched, cache_dir: Path, threads: int, started: float) -> ArrayPredictor | None:
    path = start_path(cache_dir, fetched.digest)
    try:
        record = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("start record %s is unreadable (%s): loading the long way", path, exc)
        return None
    try:
        spec, classes, probabilities = _parse(record, fetched.digest)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("start record %s does not fit this version (%s): loading the long way", path, exc)
        return None
    data = cache_read(cache_dir, str(record["key"]), spec)  # None for a file that changed (logged)
    if data is None:
        return None
    try:
        runner = OnnxRunner(data, spec, classes=classes, probabilities=probabilities, threads=threads)
    except Exception as exc:  # onnxruntime refuses the file: the long way compiles it again
        log.warning("the cached ONNX file of %s does not load (%s)", fetched.info.ref, describe(exc))
        return None
    compiled = CompiledModel("onnxruntime", spec, runner, classes=classes, probabilities=probabilities)
    compiled.sha256 = hashlib.sha256(data).hexdigest()
    model = fetched.described(compiled, str(record["runtime"]))
    result = CompileResult(
        "onnxruntime",
        True,
        None,
        compiled.sha256,
        float(record["max_abs_diff"]),
        time.perf_counter() - started,
        cached=True,
        sample_rows=int(record["sample_rows"]),
    )
    return from_compiled(model, result, compiled)


def _parse(record: Any, digest: str) -> tuple[InputSpec, np.ndarray | None, bool]:
    if not isinstance(record, dict) or record.get("format") != START_FORMAT:
        raise ValueError(f"not a {START_FORMAT} record")
    if record["digest"] != digest:
        raise ValueError("it names other model files")
    inputs = record["inputs"]
    spec = InputSpec(
        tuple(str(n) for n in inputs["names"]),
        tuple(inputs["kinds"]),
        inputs["layout"],
        inputs.get("dtype", "float64"),
    )
    if record["key"] != cache_key(None, spec, digest):
        raise ValueError("its cache key is not this version's")
    classes = None
    if record["classes"] is not None:
        dtype = np.dtype(record["classes_dtype"])
        classes = np.asarray(record["classes"], dtype=object if dtype.kind == "O" else dtype)
    return spec, classes, bool(record["probabilities"])
