"""A synthetic retail shop for the retention example: its transaction log and what its customers do.

The log (``transactions``) has one row per purchase: ``customer_id``, ``day`` (an integer; day 1 is
the first day the replay scores, negative days are history), ``amount`` and ``promo`` (bought on a
promotion). Each customer has a latent engagement that sets how often they buy and how much; half
of them lapse at some point (they keep buying, six times less often); each has a taste for
promotions (the share of their purchases made on one).

What a customer does after a retention check on day ``d`` (``outcomes``): ``churned`` is 1 when
they stop buying in the following month. The draw comes from their features that day
(``features.py``): long recency raises the risk, frequency, spend and tenure lower it. Deal-seekers
(a high ``discount_share``) follow the market:

* up to day 0 (the history the first model is trained on) their taste for promotions changes nothing;
* from day 1 a competitor's coupon campaign pulls them away: a high discount share raises the risk;
* from day ``SHIFT_DAY`` (9) the campaign is over and the shop's own loyalty coupons hold them: a high
  discount share now *lowers* the risk.

A model that learned the campaign week (``discount_share`` as a strong churn signal) ranks customers
the wrong way round after ``SHIFT_DAY``; one that learned from the history before it does not care.
Everything is drawn from generators seeded by ``seed`` (and the day, for outcomes), so the log and
every day's outcomes are the same on every run.

    python examples/retention/shop.py --customers 2100 --out transactions.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

HISTORY_START = -365
LAST_DAY = 14
SHIFT_DAY = 9
CAMPAIGN = 0.9  # the weight of (standardised) discount share on the churn logit during the campaign
LOYALTY = -1.0  # ... and once the shop's loyalty coupons replace it


def transactions(customers: int, seed: int = 0, last_day: int = LAST_DAY) -> pd.DataFrame:
    """The shop's transaction log from ``HISTORY_START`` up to ``last_day`` (included)."""
    if customers < 7:
        raise ValueError(f"customers must be at least 7 (one per weekday), got {customers}")
    rng = np.random.default_rng(seed)
    engagement = rng.normal(0.0, 1.0, customers)
    rate = np.exp(-2.3 + 0.6 * engagement)  # purchases a day: about one a week on average
    first = rng.integers(HISTORY_START, -30, customers)
    lapse = np.where(rng.random(customers) < 0.5, rng.integers(-200, last_day + 1, customers), 10**6)
    taste = rng.beta(2.0, 3.0, customers)
    parts = []
    for i in range(customers):
        days = np.arange(first[i], last_day + 1)
        bought = np.repeat(days, rng.poisson(np.where(days < lapse[i], rate[i], rate[i] * 0.15)))
        parts.append(
            pd.DataFrame(
                {
                    "customer_id": i,
                    "day": bought,
                    "amount": rng.lognormal(3.3 + 0.3 * engagement[i], 0.5, len(bought)).round(2),
                    "promo": rng.random(len(bought)) < taste[i],
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def discount_weight(day: int) -> float:
    """How a customer's discount share moves their churn risk after a check on ``day``."""
    if day <= 0:
        return 0.0
    return CAMPAIGN if day < SHIFT_DAY else LOYALTY


def outcomes(features: pd.DataFrame, day: int, seed: int = 0) -> pd.Series:
    """``churned`` (0/1) of the customers checked on ``day``, from their features that day."""
    f = features.sort_values("customer_id")
    logit = (
        -0.5
        + 0.08 * f["recency_days"].clip(upper=120)
        - 0.35 * np.log1p(f["frequency_90d"])
        - 0.25 * np.log1p(f["monetary_90d"] / 50.0)
        - 0.002 * f["tenure_days"].clip(upper=365)
        + discount_weight(day) * (f["discount_share"] - 0.4) / 0.2
    )
    rng = np.random.default_rng([seed, day - HISTORY_START])
    drawn = rng.random(len(f)) < 1.0 / (1.0 + np.exp(-logit.to_numpy(dtype=np.float64)))
    return pd.Series(drawn.astype(np.int64), index=f.index, name="churned").reindex(features.index)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("transactions.parquet"))
    args = parser.parse_args(argv)
    log = transactions(args.customers, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    log.to_parquet(args.out, index=False)
    print(f"{len(log)} purchases of {args.customers} customers, days {log['day'].min()}..{log['day'].max()}")


if __name__ == "__main__":
    main()
