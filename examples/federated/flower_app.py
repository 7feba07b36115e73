"""The Flower apps: each node fits the logistic regression on its own shard, the server averages.

``client_app`` runs on every node (a SuperNode): it receives the global coefficients, trains a few
iterations of scikit-learn's ``LogisticRegression`` from them on its own rows, and answers with the
new coefficients and its number of rows. ``server_app`` runs Flower's ``FedAvg`` for the configured
number of rounds (each node's coefficients weighted by its rows) and keeps the final average. Only
model parameters and counts cross the network; no row leaves its node.

The run's settings come from Flower's run config (``rounds``, ``rows-per-node``, ``local-iterations``,
``seed``, ``out``) and each node's shard from its node config (``partition-id``, ``num-partitions``):
the simulation engine sets the node config itself, ``flower-supernode --node-config`` sets it in a
deployment.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import flwr
import numpy as np
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # a node process loads this file by path: let it find data.py beside it
    sys.path.insert(0, str(HERE))

import data  # noqa: E402

DEFAULTS: dict[str, Any] = {
    "rounds": 5,
    "nodes": 3,
    "rows-per-node": 800,
    "local-iterations": 20,
    "seed": 0,
    "out": "federated.json",
}


def _setting(context: Context, key: str, given: dict[str, Any]) -> Any:
    """The run config's value (a deployment's ``flwr run --run-config``), else ``given``'s, else the default."""
    return context.run_config.get(key, given.get(key, DEFAULTS[key]))


def _model(arrays: ArrayRecord, iterations: int) -> LogisticRegression:
    """A logistic regression that starts from the global coefficients (``warm_start``)."""
    coef, intercept = arrays.to_numpy_ndarrays()
    model = LogisticRegression(warm_start=True, max_iter=iterations)
    model.classes_ = np.array([0, 1])
    model.coef_, model.intercept_ = coef.copy(), intercept.copy()
    return model


def initial_arrays() -> ArrayRecord:
    return ArrayRecord([np.zeros((1, len(data.FEATURES))), np.zeros(1)])


def make_client_app(given: dict[str, Any] | None = None) -> ClientApp:
    """The node's app; ``given`` settings apply where the run config has none (the simulation's)."""
    settings = dict(given or {})
    app = ClientApp()

    def local_shard(context: Context) -> Any:
        node = int(context.node_config["partition-id"])
        rows = int(_setting(context, "rows-per-node", settings))
        return data.shard(node, rows, seed=int(_setting(context, "seed", settings)))

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        frame = local_shard(context)
        x, y = frame[data.FEATURES].to_numpy(), frame[data.TARGET].to_numpy()
        model = _model(msg.content["arrays"], int(_setting(context, "local-iterations", settings)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a few iterations per round, by design
            model.fit(x, y)
        loss = float(log_loss(y, model.predict_proba(x), labels=[0, 1]))
        content = RecordDict(
            {
                "arrays": ArrayRecord([model.coef_, model.intercept_]),
                "metrics": MetricRecord({"train_loss": loss, "num-examples": len(frame)}),
            }
        )
        return Message(content=content, reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        frame = local_shard(context)
        x, y = frame[data.FEATURES].to_numpy(), frame[data.TARGET].to_numpy()
        model = _model(msg.content["arrays"], 1)
        accuracy = float((model.predict(x) == y).mean())
        loss = float(log_loss(y, model.predict_proba(x), labels=[0, 1]))
        metrics = MetricRecord({"eval_accuracy": accuracy, "eval_loss": loss, "num-examples": len(frame)})
        return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)

    return app


def make_server_app(given: dict[str, Any] | None = None) -> ServerApp:
    """The coordinator's app: FedAvg over every node, the final average written to ``out``."""
    settings = dict(given or {})
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        rounds = int(_setting(context, "rounds", settings))
        nodes = int(_setting(context, "nodes", settings))
        strategy = FedAvg(min_train_nodes=nodes, min_evaluate_nodes=nodes, min_available_nodes=nodes)
        result = strategy.start(grid=grid, initial_arrays=initial_arrays(), num_rounds=rounds)
        coef, intercept = result.arrays.to_numpy_ndarrays()
        history = [
            {
                "round": r,
                "train_loss": float(str(result.train_metrics_clientapp[r]["train_loss"])),
                "eval_accuracy": float(str(result.evaluate_metrics_clientapp[r]["eval_accuracy"])),
            }
            for r in sorted(result.train_metrics_clientapp)
        ]
        summary = {
            "features": data.FEATURES,
            "target": data.TARGET,
            "classes": [0, 1],
            "coef": coef.tolist(),
            "intercept": intercept.tolist(),
            "strategy": type(strategy).__name__,
            "rounds": rounds,
            "nodes": nodes,
            "rows_per_node": int(_setting(context, "rows-per-node", settings)),
            "local_iterations": int(_setting(context, "local-iterations", settings)),
            "seed": int(_setting(context, "seed", settings)),
            "flwr_version": flwr.__version__,
            "history": history,
        }
        Path(str(_setting(context, "out", settings))).write_text(json.dumps(summary, indent=2) + "\n")

    return app


# What a deployment loads (``flower-supernode ... flower_app:client_app``): settings from the run config.
client_app = make_client_app()
server_app = make_server_app()
