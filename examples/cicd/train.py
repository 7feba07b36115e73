"""Train the churn model on the DVC-tracked data and log it to MLflow; CI's training step.

Reads ``data/train.parquet`` (pulled by ``dvc pull``), fits a scikit-learn pipeline, logs it with
its signature, parameters and holdout AUC into the tracking store modelward uses
(``MODELWARD_TRACKING_URI``, or ``MODELWARD_HOME``'s), and writes the model's URI to ``--out`` for
the registration step. Run from the example's folder (the repository root in a project of its own):

    python train.py [--data data/train.parquet] [--holdout data/holdout.parquet] [--out model_uri.txt]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import mlflow
import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelward.config import Settings

NUMERIC = ["age", "tenure", "balance", "num_products", "has_cr_card", "is_active_member", "estimated_salary"]
CATEGORICAL = ["geography", "gender"]
EXPERIMENT = "churn-ci"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/train.parquet"))
    parser.add_argument("--holdout", type=Path, default=Path("data/holdout.parquet"))
    parser.add_argument("--out", type=Path, default=Path("model_uri.txt"))
    parser.add_argument("--C", type=float, default=1.0)
    args = parser.parse_args(argv)

    train, holdout = pd.read_parquet(args.data), pd.read_parquet(args.holdout)
    features = NUMERIC + CATEGORICAL
    pre = ColumnTransformer(
        [("num", StandardScaler(), NUMERIC), ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)]
    )
    model = Pipeline([("pre", pre), ("model", LogisticRegression(C=args.C, max_iter=1000))])
    model.fit(train[features], train["churn"])
    auc = float(roc_auc_score(holdout["churn"], model.predict_proba(holdout[features])[:, 1]))

    settings = Settings()
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(
            EXPERIMENT, artifact_location=f"{settings.resolved_artifact_location}/{EXPERIMENT}"
        )
    )
    commit = os.environ.get("GITHUB_SHA", "")
    with mlflow.start_run(
        experiment_id=experiment_id, tags={"git_commit": commit} if commit else None
    ) as run:
        mlflow.log_params({"model": "logistic_regression", "C": args.C, "rows": len(train)})
        mlflow.log_metric("holdout_auc", auc)
        mlflow.log_input(
            mlflow.data.from_pandas(train, source=str(args.data), targets="churn"), context="training"
        )
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(train[features].head(50), model.predict(train[features].head(50))),
            input_example=train[features].head(2),
            pip_requirements=["scikit-learn", "skops"],
        )
    uri = f"runs:/{run.info.run_id}/model"
    args.out.write_text(uri + "\n")
    print(f"holdout AUC {auc:.3f}; logged {uri}")


if __name__ == "__main__":
    main()
