"""Train a LightFM recommender on synthetic interactions and log it to MLflow as a pyfunc.

The pyfunc (``model.py``) takes a user id and a list of candidate item ids and answers one score per
item. The script logs it into the tracking store modelward uses (``MODELWARD_HOME``'s, or
``MODELWARD_TRACKING_URI``), with its signature, parameters and precision@10 on held-out
interactions, writes the reference requests and the item catalogue under ``--data-dir``, and prints
the model's URI for ``modelward register --from-mlflow``. Run from the repository root:

    python examples/recommender/train.py [--users 300] [--items 120] [--epochs 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import warnings
from pathlib import Path

import mlflow
import numpy as np
import scipy.sparse as sp
from lightfm import LightFM
from lightfm.evaluation import precision_at_k
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, Schema

from modelward.config import Settings

HERE = Path(__file__).resolve().parent
EXPERIMENT = "recommender"


def _sibling(name: str):  # examples/ is not a package: load the sibling module by path
    spec = importlib.util.spec_from_file_location(f"recommender_{name}", HERE / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _experiment(settings: Settings) -> str:
    """The example's experiment, its artifacts kept beside modelward's own."""
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return str(found.experiment_id)
    location = f"{settings.resolved_artifact_location}/{EXPERIMENT}"
    return str(client.create_experiment(EXPERIMENT, artifact_location=location))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--items", type=int, default=120)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=HERE / "data")
    args = parser.parse_args(argv)

    data = _sibling("data")
    interactions, catalogue = data.generate(args.users, args.items, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    test = rng.random(len(interactions)) < 0.2
    shape = (args.users, args.items)

    def matrix(rows):
        ones = np.ones(len(rows), dtype=np.float32)
        return sp.coo_matrix((ones, (rows["user_id"], rows["item_id"])), shape=shape)

    train_m, test_m = matrix(interactions[~test]), matrix(interactions[test])
    params = {"loss": "warp", "no_components": args.components, "epochs": args.epochs, "seed": args.seed}
    model = LightFM(loss="warp", no_components=args.components, random_state=args.seed)
    model.fit(train_m, epochs=args.epochs)
    precision = float(precision_at_k(model, test_m, train_interactions=train_m, k=10).mean())

    args.data_dir.mkdir(parents=True, exist_ok=True)
    reference = data.requests(500, args.users, args.items, seed=args.seed + 1)
    reference.to_parquet(args.data_dir / "requests.parquet", index=False)
    catalogue.to_parquet(args.data_dir / "items.parquet", index=False)

    settings = Settings()
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    user_bias, user_emb = model.get_user_representations()
    item_bias, item_emb = model.get_item_representations()
    signature = ModelSignature(
        inputs=Schema([ColSpec("long", "user_id"), ColSpec(Array("long"), "item_ids")]),
        outputs=Schema([ColSpec(Array("double"), "scores")]),
    )
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # MLflow asks for type hints on predict()
        factors = Path(tmp) / "factors.npz"
        np.savez(
            factors,
            user_embeddings=user_emb,
            user_biases=user_bias,
            item_embeddings=item_emb,
            item_biases=item_bias,
        )
        with mlflow.start_run(experiment_id=_experiment(settings)) as run:
            mlflow.log_params(params)
            mlflow.log_metric("precision_at_10", precision)
            mlflow.pyfunc.log_model(
                name="model",
                python_model=str(HERE / "model.py"),
                artifacts={"factors": str(factors)},
                signature=signature,
                input_example=reference.head(2),
                pip_requirements=["mlflow", "numpy", "pandas"],
            )
    uri = f"runs:/{run.info.run_id}/model"
    (args.data_dir / "model_uri.txt").write_text(uri + "\n")
    print(f"precision@10 {precision:.3f} on held-out interactions")
    print(f"logged {uri}")


if __name__ == "__main__":
    main()
