"""Daily feature tables of the retention example, built from the shop's transaction log.

On day ``d`` the CRM checks the customers due that day (one customer in seven: ``customer_id % 7``
is the weekday) who have bought something before ``d``. Their features use only purchases made
before ``d``:

| feature | meaning |
|---|---|
| ``recency_days`` | days since the last purchase |
| ``frequency_90d`` | purchases in the last 90 days |
| ``monetary_90d`` | spend in the last 90 days |
| ``tenure_days`` | days since the first purchase |
| ``discount_share`` | share of all spend made on a promotion |

    python examples/retention/features.py --log transactions.parquet --day 7 --out day7.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

FEATURES = ["recency_days", "frequency_90d", "monetary_90d", "tenure_days", "discount_share"]
TARGET = "churned"


def daily_features(log: pd.DataFrame, day: int) -> pd.DataFrame:
    """The feature table of the customers due on ``day``: ``customer_id``, ``day`` and ``FEATURES``."""
    missing = {"customer_id", "day", "amount", "promo"} - set(log.columns)
    if missing:
        raise ValueError(f"the transaction log lacks column(s) {', '.join(sorted(missing))}")
    past = log[(log["day"] < day) & (log["customer_id"] % 7 == day % 7)]
    by = past.groupby("customer_id")
    recent = past[past["day"] >= day - 90].groupby("customer_id")
    table = pd.DataFrame({"recency_days": day - by["day"].max()})
    table["frequency_90d"] = recent.size().reindex(table.index, fill_value=0)
    table["monetary_90d"] = recent["amount"].sum().reindex(table.index, fill_value=0.0).round(2)
    table["tenure_days"] = day - by["day"].min()
    promo = past[past["promo"]].groupby("customer_id")["amount"].sum().reindex(table.index, fill_value=0.0)
    table["discount_share"] = (promo / by["amount"].sum()).round(3)
    table = table.reset_index()
    table.insert(1, "day", day)
    return table.astype(
        {c: "int64" for c in ("customer_id", "day", "recency_days", "frequency_90d", "tenure_days")}
    )


def feature_tables(log: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    """The daily tables of days ``first`` to ``last`` (included), one under the other."""
    if last < first:
        raise ValueError(f"the last day ({last}) comes before the first ({first})")
    return pd.concat([daily_features(log, d) for d in range(first, last + 1)], ignore_index=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, default=Path("transactions.parquet"))
    parser.add_argument("--day", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    table = daily_features(pd.read_parquet(args.log), args.day)
    table.to_parquet(args.out, index=False)
    print(f"day {args.day}: {len(table)} customers due -> {args.out}")


if __name__ == "__main__":
    main()
