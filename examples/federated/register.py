"""Register the federation's aggregate model in modelward, with the federation as its lineage.

Reads the summary ``federate.py`` wrote (the averaged coefficients, rounds, nodes, strategy), builds
the scikit-learn ``LogisticRegression`` those coefficients define, and registers it as a new version
of ``--name``: the coordinator's reference sample gives the input schema and the drift reference,
and the lineage names the federation (``modelward.federation.rounds``, ``.nodes``, ...) with no
fingerprint of any node's data, which the coordinator never saw. Run from anywhere:

    python examples/federated/register.py federated.json [--name credit_fl] [--promote]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

import modelward

sys.path.insert(0, str(Path(__file__).resolve().parent))

import data


def aggregate_model(summary: dict[str, Any]) -> LogisticRegression:
    """The logistic regression the averaged coefficients define (no fitting: the federation did it)."""
    import pandas as pd

    model = LogisticRegression()
    # fit on two rows only to set scikit-learn's fitted attributes, then carry the federation's weights
    model.fit(pd.DataFrame(np.zeros((2, len(summary["features"]))), columns=summary["features"]), [0, 1])
    model.coef_ = np.asarray(summary["coef"], dtype=float)
    model.intercept_ = np.asarray(summary["intercept"], dtype=float)
    model.classes_ = np.asarray(summary["classes"])
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summary", type=Path, help="the JSON federate.py wrote")
    parser.add_argument("--name", default="credit_fl")
    parser.add_argument("--promote", action="store_true", help="make the new version the champion")
    args = parser.parse_args(argv)

    summary = json.loads(args.summary.read_text())
    model = aggregate_model(summary)
    reference = data.reference()
    last = summary["history"][-1]
    info = modelward.register(
        model,
        args.name,
        train_data=reference,
        target=data.TARGET,
        params={"model": "logistic_regression", "local_iterations": summary.get("local_iterations", "")},
        metrics={"federated_accuracy": last["eval_accuracy"], "federated_train_loss": last["train_loss"]},
        federation={
            "rounds": summary["rounds"],
            "nodes": summary["nodes"],
            "strategy": summary["strategy"],
            "framework": f"flwr {summary['flwr_version']}",
            "examples": summary["rows_per_node"] * summary["nodes"],
        },
        response={"probability_name": "default_probability"},
        description=f"{summary['strategy']} over {summary['nodes']} banks, {summary['rounds']} rounds",
    )
    if args.promote:
        modelward.promote(args.name, info.version, "champion", reason="first federated model")
    print(
        json.dumps({"model": args.name, "version": info.version, "champion": args.promote, "tags": info.tags})
    )


if __name__ == "__main__":
    main()
