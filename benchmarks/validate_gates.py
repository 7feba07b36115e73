"""``modelward validate`` on a large holdout: every gate, both versions scored, wall time of the command.

    python benchmarks/validate_gates.py                 # 100,000 holdout rows, 3 rounds
    python benchmarks/validate_gates.py --rows 2000 --rounds 1   # the harness works

A fresh home under a temporary folder gets the churn example's two models (logistic regression as
champion, a random forest as candidate, trained on 20,000 rows); a policy turns on every gate (metric
floor, regression, fairness on gender, latency on 200 single-row calls, schema, integrity,
calibration); the holdout (the churn generator, another seed) is written as Parquet. Each round runs
``modelward validate churn:2 --data holdout.parquet --policy policy.yaml --json`` in a fresh process
and reports its wall time (process start to exit, imports included) and the time the validation
itself recorded.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

POLICY = """\
metrics: {auc: {min: 0.6}}
regression: {metric: auc, margin: 0.05}
fairness: {sensitive: [gender], max_demographic_parity_difference: 0.2}
latency: {p95_ms: 50, sample: 200}
calibration: {max_ece: 0.5}
"""


def _churn_generator() -> Any:
    """examples/churn/generate.py, loaded from its path (the examples are not a package)."""
    spec = importlib.util.spec_from_file_location(
        "churn_generate", ROOT / "examples" / "churn" / "generate.py"
    )
    if spec is None or spec.loader is None:
        raise ImportError("examples/churn/generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare(home: Path, rows: int) -> Path:
    generate = _churn_generator()
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    import modelward
    from modelward.config import Settings

    train = generate.generate(20_000, seed=1).drop(columns=["customer_id"])
    numeric = [c for c in train.columns if c not in ("geography", "gender", "churn")]

    def pipeline(estimator: object) -> Pipeline:
        pre = ColumnTransformer(
            [
                ("num", StandardScaler(), numeric),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["geography", "gender"]),
            ]
        )
        return Pipeline([("pre", pre), ("model", estimator)])

    x, y = train.drop(columns=["churn"]), train["churn"]
    settings = Settings(home=home, actor="benchmark")
    champion = pipeline(LogisticRegression(max_iter=500)).fit(x, y)
    candidate = pipeline(RandomForestClassifier(n_estimators=50, max_depth=10, random_state=0)).fit(x, y)
    modelward.register(champion, "churn", train_data=train, target="churn", settings=settings)
    modelward.register(candidate, "churn", train_data=train, target="churn", settings=settings)
    modelward.promote("churn", 1, settings=settings)
    holdout = home.parent / "holdout.parquet"
    generate.generate(rows, seed=7).drop(columns=["customer_id"]).to_parquet(holdout)
    (home.parent / "policy.yaml").write_text(POLICY)
    return holdout


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelward-validate-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        os.environ["MODELWARD_HOME"] = str(home)
        holdout = prepare(home, args.rows)
        env = {**os.environ, "MODELWARD_HOME": str(home), "MODELWARD_ACTOR": "benchmark"}
        command = [sys.executable, "-m", "modelward", "validate", "churn:2", "--data", str(holdout)]
        command += ["--policy", str(Path(tmp) / "policy.yaml"), "--json"]
        walls, inner = [], []
        verdicts: dict[str, str] = {}
        for _ in range(args.rounds):
            started = time.perf_counter()
            proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            walls.append(time.perf_counter() - started)
            if proc.returncode not in (0, 1):
                raise SystemExit(f"validate failed ({proc.returncode}):\n{proc.stderr}")
            report = json.loads(proc.stdout)
            inner.append(float(report["seconds"]))
            verdicts = {g["name"]: g["verdict"] for g in report["gates"]}
        print(f"holdout rows: {args.rows:,}; rounds: {args.rounds}")
        print(f"gates: {verdicts}")
        print(
            f"validate wall time (fresh process), median: {statistics.median(walls):.2f} s",
            f"all: {[round(w, 2) for w in walls]}",
        )
        print(f"validation's own time, median: {statistics.median(inner):.2f} s")


if __name__ == "__main__":
    main()
