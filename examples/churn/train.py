"""Train two churn models and register them as versions 1 and 2 of ``churn``.

Version 1 is a logistic regression, version 2 a histogram gradient-boosted tree model; both are
scikit-learn pipelines with the same preprocessing. Version 1 is promoted to champion and
version 2 to challenger. Run from the repository root:

    python examples/churn/train.py [--rows 20000] [--seed 0] [--data-dir examples/churn/data]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import modelward

HERE = Path(__file__).resolve().parent
NUMERIC = ["age", "tenure", "balance", "num_products", "has_cr_card", "is_active_member", "estimated_salary"]
CATEGORICAL = ["geography", "gender"]


def _generator():  # examples/ is not a package: load the sibling module by path
    spec = importlib.util.spec_from_file_location("churn_generate", HERE / "generate.py")
    if spec is None or spec.loader is None:
        raise ImportError("cannot load generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def pipeline(estimator: object) -> Pipeline:
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    return Pipeline([("pre", pre), ("model", estimator)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=HERE / "data")
    parser.add_argument("--name", default="churn")
    args = parser.parse_args(argv)

    generate = _generator()
    frame = generate.generate(args.rows, seed=args.seed)
    train, test = train_test_split(frame, test_size=0.25, random_state=args.seed, stratify=frame["churn"])
    args.data_dir.mkdir(parents=True, exist_ok=True)
    train_path = args.data_dir / "churn_train.parquet"
    train.drop(columns=["customer_id"]).to_parquet(train_path, index=False)
    test.to_parquet(args.data_dir / "churn_test.parquet", index=False)

    features = NUMERIC + CATEGORICAL
    candidates = [
        (
            "logistic regression",
            pipeline(LogisticRegression(max_iter=1000)),
            {"model": "logistic_regression", "C": 1.0},
        ),
        (
            "gradient boosting",
            pipeline(
                HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=args.seed)
            ),
            {"model": "hist_gradient_boosting", "max_iter": 200, "learning_rate": 0.05},
        ),
    ]
    versions = []
    for label, model, params in candidates:
        model.fit(train[features], train["churn"])
        proba = model.predict_proba(test[features])[:, 1]
        metrics = {
            "test_auc": float(roc_auc_score(test["churn"], proba)),
            "test_accuracy": float(accuracy_score(test["churn"], model.predict(test[features]))),
        }
        info = modelward.register(
            model,
            args.name,
            train_data=train_path,
            target="churn",
            metrics=metrics,
            params=params,
            description=f"churn {label}",
            response={"probability_name": "churn_probability"},
        )
        versions.append(info.version)
        print(f"registered {info.ref} ({label}): test AUC {metrics['test_auc']:.3f}")

    modelward.promote(args.name, versions[0], "champion", reason="first model")
    modelward.promote(args.name, versions[-1], "challenger", reason="candidate for an A/B test")
    print(f"{args.name}:{versions[0]} is champion, {args.name}:{versions[-1]} is challenger")


if __name__ == "__main__":
    main()
