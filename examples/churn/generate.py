"""Synthetic bank-customer churn data for the modelward examples.

Each row is a retail-bank customer; ``churn`` says whether they closed their account within a year.
The data-generating process, all driven by one ``numpy`` generator seeded with ``seed``:

* Demographics: ``geography`` is France / Germany / Spain (50 / 25 / 25 %), ``gender`` is 55 % male,
  ``age`` is 18 + a gamma(4, 5.25) draw (right-skewed, median near 38, clipped to 18-92).
* Relationship: ``tenure`` is uniform over 0-10 years, ``num_products`` is 1-4 (50 / 46 / 3 / 1 %),
  ``has_cr_card`` is 1 for 70 %, ``is_active_member`` for 50 %.
* Money: ``balance`` is exactly 0.0 for about 30 % of customers (rarer in Germany, as in the classic
  Kaggle set), otherwise lognormal with median 76,000; ``estimated_salary`` is uniform 10k-200k.
* Label: ``churn ~ Bernoulli(sigmoid(logit + noise))`` with Gaussian noise (sd 0.5) on the logit.
  The logit rises for ages 40-60 (a bump, not a line), inactive members, Germany, women and high
  balances; it falls for two products and jumps for three or four. Inactive customers over 45 get an
  extra push (an interaction), so a tree model beats a logistic regression a little. Salary and
  credit-card ownership have no effect. The base rate is about 20 %.

``drift`` in [0, 1] moves the population, not the label model: customers get older, more German and
less active, so the churn rate rises too. ``drift=0`` is the training distribution.

    python examples/churn/generate.py --rows 10000 --seed 0 --out data/churn.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = [
    "age",
    "tenure",
    "balance",
    "num_products",
    "has_cr_card",
    "is_active_member",
    "estimated_salary",
    "geography",
    "gender",
]
TARGET = "churn"

_INTERCEPT = -2.95
_PRODUCT_EFFECT = np.array([0.0, 0.0, -1.3, 2.2, 3.5])  # indexed by num_products


def _churn_logit(frame: pd.DataFrame) -> np.ndarray:
    age = frame["age"].to_numpy(dtype=np.float64)
    inactive = 1.0 - frame["is_active_member"].to_numpy(dtype=np.float64)
    balance = frame["balance"].to_numpy(dtype=np.float64)
    return (
        _INTERCEPT
        + 1.6 * np.exp(-(((age - 51.0) / 10.0) ** 2))
        + 1.0 * inactive
        + 0.6 * inactive * (age >= 45)
        + 0.9 * (frame["geography"] == "Germany").to_numpy(dtype=np.float64)
        + 0.45 * (frame["gender"] == "Female").to_numpy(dtype=np.float64)
        + 0.25 * np.minimum(balance, 250_000.0) / 100_000.0
        + _PRODUCT_EFFECT[frame["num_products"].to_numpy()]
    )


def generate(n_rows: int = 10_000, *, seed: int = 0, drift: float = 0.0) -> pd.DataFrame:
    """Return ``n_rows`` synthetic customers; the same ``seed`` and ``drift`` give the same frame."""
    if n_rows < 1:
        raise ValueError(f"n_rows must be at least 1, got {n_rows}")
    if not 0.0 <= drift <= 1.0:
        raise ValueError(f"drift must be in [0, 1], got {drift}")
    rng = np.random.default_rng(seed)

    ids = rng.choice(90_000_000, size=n_rows, replace=False) + 10_000_000
    geography = rng.choice(
        ["France", "Germany", "Spain"],
        size=n_rows,
        p=[0.5 - 0.2 * drift, 0.25 + 0.25 * drift, 0.25 - 0.05 * drift],
    )
    gender = rng.choice(["Male", "Female"], size=n_rows, p=[0.55, 0.45])
    age = np.clip(np.rint(18 + rng.gamma(4.0, 5.25, size=n_rows) + 8.0 * drift), 18, 92)
    tenure = rng.integers(0, 11, size=n_rows)
    num_products = rng.choice([1, 2, 3, 4], size=n_rows, p=[0.50, 0.46, 0.03, 0.01])
    has_cr_card = rng.random(n_rows) < 0.7
    is_active = rng.random(n_rows) < 0.5 - 0.2 * drift
    zero_balance = rng.random(n_rows) < np.where(geography == "Germany", 0.12, 0.36)
    balance = np.where(zero_balance, 0.0, np.round(rng.lognormal(np.log(76_000), 0.5, size=n_rows), 2))
    salary = np.round(rng.uniform(10_000, 200_000, size=n_rows), 2)

    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:08d}" for i in ids],
            "age": age.astype(np.int64),
            "tenure": tenure.astype(np.int64),
            "balance": balance.astype(np.float64),
            "num_products": num_products.astype(np.int64),
            "has_cr_card": has_cr_card.astype(np.int64),
            "is_active_member": is_active.astype(np.int64),
            "estimated_salary": salary.astype(np.float64),
            "geography": [str(g) for g in geography],
            "gender": [str(g) for g in gender],
        }
    )
    noisy_logit = _churn_logit(frame) + rng.normal(0.0, 0.5, size=n_rows)
    frame[TARGET] = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-noisy_logit))).astype(np.int64)
    return frame


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic bank churn data set.")
    parser.add_argument("--rows", type=int, default=10_000, help="number of customers")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--drift", type=float, default=0.0, help="population shift in [0, 1]")
    parser.add_argument("--out", type=Path, default=Path("data/churn.parquet"), help=".csv or .parquet")
    args = parser.parse_args(argv)
    suffix = args.out.suffix.lower()
    if suffix not in {".csv", ".parquet"}:
        parser.error(f"--out must end in .csv or .parquet, got {args.out}")
    try:
        frame = generate(args.rows, seed=args.seed, drift=args.drift)
    except ValueError as exc:
        parser.error(str(exc))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(args.out, index=False)
    else:
        frame.to_parquet(args.out, index=False)
    print(f"wrote {len(frame)} rows to {args.out} (churn rate {frame[TARGET].mean():.1%})")


if __name__ == "__main__":
    main()
