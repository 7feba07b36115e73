"""Train and register the benchmark models into a private MODELWARD_HOME.

Run by ``benchmarks/run.py`` in a subprocess (so MLflow's process-wide state never touches the
harness), with ``MODELWARD_HOME`` set to the home to fill:

    MODELWARD_HOME=benchmarks/.work/home python benchmarks/prepare.py --data-dir benchmarks/.work/data \
        --rows 20000 --extra forest,xgboost,lightgbm

It registers:

* ``churn:1`` (logistic regression pipeline) and ``churn:2`` (HistGradientBoosting pipeline), by
  running ``examples/churn/train.py`` exactly as a user would;
* ``noop:1``: a one-feature ``LinearRegression`` (``y = 2x + 1``), the cheapest model modelward can
  serve, which compiles to a one-node ONNX graph; it measures the server's own overhead;
* with ``--extra``: ``churn-forest:1`` (a 100-tree RandomForest), ``churn-xgboost:1`` and
  ``churn-lightgbm:1`` (100 trees each), all in the same churn preprocessing pipeline, for the
  in-process single-row latency scenario.

It prints one JSON line naming what it registered (and what it skipped, with the reason).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ("forest", "xgboost", "lightgbm")
# XGBoost inside a pipeline is outside modelward's reviewed skops list; we built these models here.
TRUSTED = {"xgboost": ("xgboost.core.Booster", "xgboost.sklearn.XGBClassifier")}


def _module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _extra_estimator(kind: str, seed: int) -> Any:
    if kind == "forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
    if kind == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier(n_estimators=100, max_depth=6, random_state=seed, n_jobs=1)
    if kind == "lightgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(n_estimators=100, random_state=seed, n_jobs=1, verbose=-1)
    raise ValueError(f"unknown extra model {kind!r}; choose from {', '.join(EXTRAS)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--extra", default="", help="comma-separated: forest,xgboost,lightgbm")
    parser.add_argument("--minimal", action="store_true", help="churn:1 and noop:1 only (the smoke test)")
    args = parser.parse_args(argv)

    import numpy as np
    import pandas as pd

    import modelward

    train = _module("churn_train", ROOT / "examples" / "churn" / "train.py")
    skipped: dict[str, str] = {}
    if args.minimal:  # what train.py does for version 1, without training version 2
        frame = train._generator().generate(args.rows, seed=args.seed).drop(columns=["customer_id"])
        args.data_dir.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(args.data_dir / "churn_train.parquet", index=False)
        features = train.NUMERIC + train.CATEGORICAL
        logreg = train.pipeline(train.LogisticRegression(max_iter=1000)).fit(frame[features], frame["churn"])
        modelward.register(logreg, "churn", train_data=frame, target="churn", description="churn logreg")
        modelward.promote("churn", 1, "champion", reason="benchmark")
        registered = ["churn:1"]
        skipped["churn:2"] = "--minimal"
    else:
        train.main(["--rows", str(args.rows), "--seed", str(args.seed), "--data-dir", str(args.data_dir)])
        registered = ["churn:1", "churn:2"]
    from sklearn.linear_model import LinearRegression

    x = np.linspace(-1.0, 1.0, 200)
    noop_frame = pd.DataFrame({"x": x, "y": 2.0 * x + 1.0})
    noop = LinearRegression().fit(noop_frame[["x"]], noop_frame["y"])
    modelward.register(noop, "noop", train_data=noop_frame, target="y", description="benchmark no-op")
    registered.append("noop:1")

    wanted = [k.strip() for k in args.extra.split(",") if k.strip()]
    if wanted:
        frame = pd.read_parquet(args.data_dir / "churn_train.parquet")
        features = [c for c in frame.columns if c != "churn"]
        for kind in wanted:
            try:
                estimator = _extra_estimator(kind, args.seed)
            except ImportError as exc:
                skipped[kind] = f"not installed: {exc}"
                continue
            model = train.pipeline(estimator).fit(frame[features], frame["churn"])
            try:
                info = modelward.register(
                    model,
                    f"churn-{kind}",
                    train_data=frame,
                    target="churn",
                    description=f"benchmark {kind}",
                    trusted_types=TRUSTED.get(kind, ()),
                )
            except Exception as exc:  # a model that cannot be registered is reported, not fatal
                skipped[kind] = f"registration failed: {type(exc).__name__}: {exc}"
                continue
            registered.append(info.ref)
    print(json.dumps({"registered": registered, "skipped": skipped}))


if __name__ == "__main__":
    main()
