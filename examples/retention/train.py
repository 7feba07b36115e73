"""Train the retention model: XGBoost on the daily feature tables of a span of days, tracked in MLflow.

Builds the feature tables of days ``--first`` to ``--last`` from the transaction log
(``features.py``) with what each checked customer did (``shop.outcomes``), holds a quarter of the
customers out, fits an ``xgboost.XGBClassifier`` on the rest and logs one MLflow run: the
parameters, the train and holdout AUC, the feature table as the run's dataset input, and the model
(``mlflow.xgboost``, JSON format, with its signature). The tracking store is modelward's
(``MODELWARD_TRACKING_URI``, or ``MODELWARD_HOME``'s), so that ``modelward register --from-mlflow``
finds the run. Writes the model's URI to ``--out`` and the table (features and label) to
``--reference`` for the registration:

    python examples/retention/train.py --first -27 --last 0 --out model_uri.txt --reference reference.parquet
    modelward register --from-mlflow "$(cat model_uri.txt)" --name retention \
      --reference reference.parquet --target churned --probability-name churn_probability

or, as a scheduled retraining job does, register (``modelward.register_mlflow_model``, the same
registration) and promote (through the promotion gates) in the same process:

    python examples/retention/train.py --first 1 --last 7 --register retention --promote
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import mlflow
import mlflow.xgboost
import numpy as np
import pandas as pd
import xgboost
from features import FEATURES, TARGET, feature_tables
from mlflow.models import infer_signature
from shop import outcomes
from sklearn.metrics import roc_auc_score

import modelward
from modelward.config import Settings

EXPERIMENT = "retention"


def labelled_tables(log: pd.DataFrame, first: int, last: int, seed: int) -> pd.DataFrame:
    """The feature tables of days ``first``..``last`` with each checked customer's outcome."""
    table = feature_tables(log, first, last)
    table[TARGET] = pd.concat([outcomes(t, int(d), seed=seed) for d, t in table.groupby("day")])
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, default=Path("transactions.parquet"))
    parser.add_argument("--first", type=int, required=True, help="first day of the training span")
    parser.add_argument("--last", type=int, required=True, help="last day of the training span")
    parser.add_argument("--seed", type=int, default=0, help="the shop's seed (as given to shop.py)")
    parser.add_argument("--n-estimators", type=int, default=150)
    parser.add_argument("--max-depth", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=Path("model_uri.txt"))
    parser.add_argument("--reference", type=Path, default=Path("reference.parquet"))
    parser.add_argument("--register", metavar="NAME", help="register the logged model under this name")
    parser.add_argument("--promote", action="store_true", help="and make the new version champion")
    args = parser.parse_args(argv)
    if args.promote and not args.register:
        parser.error("--promote needs --register NAME")

    table = labelled_tables(pd.read_parquet(args.log), args.first, args.last, args.seed)
    held = np.random.default_rng(args.seed).random(int(table["customer_id"].max()) + 1) < 0.25
    holdout = held[table["customer_id"].to_numpy()]
    train, test = table[~holdout], table[holdout]
    params = {
        "n_estimators": args.n_estimators,
        "max_depth": args.max_depth,
        "learning_rate": args.learning_rate,
    }
    model = xgboost.XGBClassifier(**params, random_state=0, n_jobs=1)
    model.fit(train[FEATURES], train[TARGET])
    train_auc = float(roc_auc_score(train[TARGET], model.predict_proba(train[FEATURES])[:, 1]))
    holdout_auc = float(roc_auc_score(test[TARGET], model.predict_proba(test[FEATURES])[:, 1]))

    # Day counts are integers that are never missing: MLflow's hint about integer columns does not apply.
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
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
    span = f"days {args.first}..{args.last}"
    reference = table[[*FEATURES, TARGET]]
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"xgboost {span}") as run:
        mlflow.log_params(
            {
                **params,
                "first_day": args.first,
                "last_day": args.last,
                "rows": len(train),
                "features": ",".join(FEATURES),
            }
        )
        mlflow.log_metrics(
            {"train_auc": train_auc, "holdout_auc": holdout_auc, "churn_rate": float(table[TARGET].mean())}
        )
        dataset = mlflow.data.from_pandas(
            reference, source=str(args.log), targets=TARGET, name=f"features {span}"
        )
        mlflow.log_input(dataset, context="training")
        # Declared as doubles: a count may arrive as 3 or 3.0, and MLflow warns about integer columns.
        sample = train[FEATURES].head(50).astype("float64")
        mlflow.xgboost.log_model(
            model,
            name="model",
            model_format="json",
            signature=infer_signature(sample, model.predict_proba(sample)[:, 1]),
            input_example=sample.head(2),
            pip_requirements=[
                f"xgboost=={xgboost.__version__}"
            ],  # named: MLflow would otherwise load the model to guess
        )
    uri = f"runs:/{run.info.run_id}/model"
    args.out.write_text(uri + "\n")
    args.reference.parent.mkdir(parents=True, exist_ok=True)
    reference.to_parquet(args.reference, index=False)
    print(
        f"{span}: {len(table)} checks, churn rate {table[TARGET].mean():.2f}; "
        f"AUC train {train_auc:.3f}, holdout {holdout_auc:.3f}; logged {uri}"
    )
    if args.register:
        info = modelward.register_mlflow_model(
            uri,
            args.register,
            reference_data=reference,
            target=TARGET,
            response={"probability_name": "churn_probability"},
            description=f"XGBoost on the retention checks of {span}",
        )
        print(f"registered {info.ref}")
        if args.promote:
            modelward.promote(info.name, info.version, reason=f"trained on the checks of {span}")
            print(f"{info.ref} is champion")


if __name__ == "__main__":
    main()
