"""Single-row latency in process: each model's native ``predict_proba`` against its compiled form.

For every model it loads the registered version with ``modelward.load`` (verified, as a server
does), compiles it with ``modelward.runtime.compiled.compile_model`` (threads=1), and then times
each path in blocks of ``BLOCK`` consecutive calls, the paths' blocks interleaved so that background
noise falls on all three alike. Blocks, not single calls: a server makes one kind of call after
another, and a 10 ms scikit-learn call right before each compiled call would leave the compiled one
to run with cold caches (about 3x slower for the 100-tree forest than in a block). The first call
of each block is not counted.

* ``native``: the scikit-learn pipeline's ``predict_proba`` on a one-row DataFrame;
* ``compiled_frame``: the compiled model's ``predict_proba`` on the same DataFrame;
* ``compiled_arrays``: ``predict_arrays`` on one 1-element array per column (the pandas-free path
  a server uses once it has parsed the JSON).

It prints one ``BENCH_JSON`` line with the median and p90 of each, in microseconds.

    MODELWARD_HOME=benchmarks/.work/home python benchmarks/latency.py --calls 1000 --models random_forest
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

BLOCK = 50

MODELS = {
    "logistic_regression": "churn:1",
    "hist_gradient_boosting": "churn:2",
    "random_forest": "churn-forest:1",
    "xgboost": "churn-xgboost:1",
    "lightgbm": "churn-lightgbm:1",
}


def _quantiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    return {
        "median_us": round(statistics.median(ordered) / 1000, 2),
        "p90_us": round(ordered[int(0.9 * (len(ordered) - 1))] / 1000, 2),
    }


def measure(ref: str, calls: int, cache_dir: Path) -> dict[str, Any]:
    import numpy as np

    import modelward
    from modelward.runtime.compiled import compile_model

    model = modelward.load(ref)
    compiled, result = compile_model(model, cache_dir=cache_dir, threads=1)
    frame = model.warm_frame().iloc[:1].reset_index(drop=True)
    arrays = {name: np.asarray(frame[name].to_numpy()) for name in frame.columns}
    native = model.native.predict_proba if model.is_classifier else model.native.predict
    entry: dict[str, Any] = {
        "ref": ref,
        "native_runtime": model.runtime,
        "runtime": result.runtime,
        "compiled": result.compiled,
        "reason": result.reason,
        "compile_seconds": round(result.seconds, 3),
        "max_abs_diff": result.max_abs_diff,
        "calls": calls,
    }
    paths: dict[str, Any] = {"native": lambda: native(frame)}
    if result.compiled:
        frame_call = compiled.predict_proba if model.is_classifier else compiled.predict
        paths["compiled_frame"] = lambda: frame_call(frame)
        paths["compiled_arrays"] = lambda: compiled.predict_arrays(arrays)
    for call in paths.values():  # warm: first calls pay for lazy initialisation
        for _ in range(20):
            call()
    samples: dict[str, list[int]] = {key: [] for key in paths}
    clock = time.perf_counter_ns
    for _ in range(max(1, calls // BLOCK)):
        for key, call in paths.items():
            call()  # back to this path after another one: not counted
            for _ in range(BLOCK):
                started = clock()
                call()
                samples[key].append(clock() - started)
    for key, values in samples.items():
        entry[key] = _quantiles(values)
    if result.compiled:
        base = entry["native"]["median_us"]
        entry["speedup_frame"] = round(base / entry["compiled_frame"]["median_us"], 1)
        entry["speedup_arrays"] = round(base / entry["compiled_arrays"]["median_us"], 1)
    return entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated: {', '.join(MODELS)}")
    parser.add_argument("--cache-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    out: dict[str, Any] = {}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        if name not in MODELS:
            raise SystemExit(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
        try:
            out[name] = measure(MODELS[name], args.calls, args.cache_dir)
        except Exception as exc:  # one model failing (an extra not installed) must not hide the rest
            out[name] = {"ref": MODELS[name], "error": f"{type(exc).__name__}: {exc}"}
    print("BENCH_JSON " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
