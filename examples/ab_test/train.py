"""Register the two churn models of the A/B test as versions 1 and 2 of ``churn_ab``.

Version 1, the champion, is the retention team's old model: a logistic regression that looks at
age, tenure and balance only. Version 2, the challenger, is a gradient-boosted tree model on every
feature. Both take the same nine typed features (the churn example's), so that either can answer any
request. Run from the repository root:

    python examples/ab_test/train.py [--rows 6000] [--seed 0] [--name churn_ab]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import modelward

CHURN = Path(__file__).resolve().parents[1] / "churn"
NUMERIC = ["age", "tenure", "balance", "num_products", "has_cr_card", "is_active_member", "estimated_salary"]


def churn_generator():  # examples/ is not a package: load the churn example's generator by path
    spec = importlib.util.spec_from_file_location("churn_generate", CHURN / "generate.py")
    if spec is None or spec.loader is None:
        raise ImportError("cannot load examples/churn/generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def old_model() -> Pipeline:
    pre = ColumnTransformer([("num", StandardScaler(), ["age", "tenure", "balance"])])
    return Pipeline([("pre", pre), ("model", LogisticRegression(max_iter=1000))])


def new_model() -> Pipeline:
    pre = ColumnTransformer(
        [
            ("num", "passthrough", NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["geography", "gender"]),
        ]
    )
    return Pipeline([("pre", pre), ("model", HistGradientBoostingClassifier(max_iter=100, random_state=0))])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="churn_ab")
    args = parser.parse_args(argv)

    frame = churn_generator().generate(args.rows, seed=args.seed).drop(columns=["customer_id"])
    x, y = frame.drop(columns=["churn"]), frame["churn"]
    for alias, model, params in (
        ("champion", old_model(), {"model": "logistic_regression", "features": "age,tenure,balance"}),
        ("challenger", new_model(), {"model": "hist_gradient_boosting", "features": "all"}),
    ):
        model.fit(x, y)
        info = modelward.register(
            model,
            args.name,
            train_data=frame,
            target="churn",
            params=params,
            response={"probability_name": "churn_probability"},
        )
        modelward.promote(args.name, info.version, alias, reason=f"A/B test: the {alias}")
        print(f"registered {args.name}:{info.version} as {alias}")


if __name__ == "__main__":
    main()
