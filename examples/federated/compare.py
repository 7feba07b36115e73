"""Compare the federated model with one trained centrally on the pooled shards, on unseen data.

The pooled model is what training would give if every bank could hand its rows to one place, which
is exactly what federated learning avoids; it is the yardstick for what the federation gave up. Both
are scored on a holdout drawn from every bank's region. Run from anywhere:

    python examples/federated/compare.py federated.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))

import data
from register import aggregate_model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summary", type=Path, help="the JSON federate.py wrote")
    args = parser.parse_args(argv)

    summary = json.loads(args.summary.read_text())
    nodes, rows, seed = summary["nodes"], summary["rows_per_node"], summary["seed"]
    pooled = pd.concat([data.shard(n, rows, seed=seed) for n in range(nodes)], ignore_index=True)
    central = LogisticRegression(max_iter=1000).fit(pooled[data.FEATURES], pooled[data.TARGET])
    federated = aggregate_model(summary)
    holdout = data.holdout(nodes)
    x, y = holdout[data.FEATURES], holdout[data.TARGET]
    result = {
        name: {
            "accuracy": float(accuracy_score(y, model.predict(x))),
            "auc": float(roc_auc_score(y, model.predict_proba(x)[:, 1])),
        }
        for name, model in (("federated", federated), ("central", central))
    }
    result["holdout_rows"] = len(holdout)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
