"""Synthetic loan applications: one bank's shard per federation node, and a small coordinator sample.

Every bank sees the same kind of customer, but each in its own region: the banks' customers differ
in income and age (the shards are not identically distributed), while who defaults follows the same
rule everywhere. A node builds its shard from its own seed; no row is ever sent to the coordinator.
``reference`` is the coordinator's own small sample (a public or synthetic one in real life): it
fixes the input schema and the drift reference at registration and is never used for training.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = ["age", "income", "debt_ratio", "credit_lines", "late_payments", "utilization"]
TARGET = "default"

# log-odds of default: the same rule at every bank
_WEIGHTS = {
    "age": -0.06,
    "income": -0.05,
    "debt_ratio": 5.0,
    "credit_lines": -0.3,
    "late_payments": 1.2,
    "utilization": 4.0,
}
_BIAS = 1.4


def applications(rows: int, seed: int, region: int = 0) -> pd.DataFrame:
    """``rows`` applications with their outcome; ``region`` shifts who applies (not why they default)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(38 + 5 * region, 10, rows).clip(18, 85).round(),
            "income": rng.lognormal(np.log(45 + 10 * region), 0.4, rows).round(1),  # thousands a year
            "debt_ratio": rng.beta(2, 5, rows).round(3),
            "credit_lines": rng.poisson(4, rows).astype(float),
            "late_payments": rng.poisson(0.8, rows).astype(float),
            "utilization": rng.uniform(0, 1, rows).round(3),
        }
    )
    logit = _BIAS + sum(w * frame[c] for c, w in _WEIGHTS.items())
    frame[TARGET] = (rng.uniform(0, 1, rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def shard(node: int, rows: int, seed: int = 0) -> pd.DataFrame:
    """Node ``node``'s own data: a bank in region ``node``."""
    return applications(rows, seed=seed * 1000 + node, region=node)


def reference(rows: int = 300, seed: int = 7) -> pd.DataFrame:
    """The coordinator's sample: schema and drift reference only."""
    return applications(rows, seed=seed * 1000 + 999, region=1)


def holdout(nodes: int, rows_per_node: int = 500, seed: int = 99) -> pd.DataFrame:
    """Unseen applications from every node's region: to compare models, never to train them."""
    return pd.concat(
        [applications(rows_per_node, seed=seed * 1000 + n, region=n) for n in range(nodes)], ignore_index=True
    )
