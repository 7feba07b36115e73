"""Synthetic user-item interactions for the recommender example.

Users and items each have a hidden taste vector (``dims`` numbers); a user interacts with an item
with a probability that rises with their tastes' dot product and with the item's popularity. Items
come from two providers: ``major`` (a quarter of the catalogue, more popular) and ``indie`` (the
rest), which is what the exposure check looks at. Everything comes from one seeded ``numpy``
generator, so a seed gives the same data set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PROVIDERS = ("major", "indie")


def generate(
    n_users: int = 300, n_items: int = 120, *, seed: int = 0, dims: int = 4, per_user: int = 20
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(interactions, items)``: ``user_id, item_id`` pairs and ``item_id, provider``."""
    if n_users < 2 or n_items < 2 or per_user < 1 or per_user >= n_items:
        raise ValueError("need at least 2 users and 2 items, and 1 <= per_user < n_items")
    rng = np.random.default_rng(seed)
    users = rng.normal(size=(n_users, dims))
    items = rng.normal(size=(n_items, dims))
    major = rng.random(n_items) < 0.25
    popularity = np.where(major, 1.5, 0.0) + rng.normal(0.0, 0.3, n_items)
    logits = users @ items.T / np.sqrt(dims) * 2.0 + popularity
    rows = []
    for user in range(n_users):
        weights = np.exp(logits[user] - logits[user].max())
        chosen = rng.choice(n_items, size=per_user, replace=False, p=weights / weights.sum())
        rows.extend((user, int(item)) for item in chosen)
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id"]).astype("int64")
    catalogue = pd.DataFrame(
        {"item_id": np.arange(n_items, dtype=np.int64), "provider": np.where(major, "major", "indie")}
    )
    return interactions, catalogue


def requests(n: int, n_users: int, n_items: int, *, seed: int = 0, candidates: int = 10) -> pd.DataFrame:
    """``n`` scoring requests as a client sends them: a user id and a list of candidate item ids."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user_id": rng.integers(0, n_users, n).astype(np.int64),
            "item_ids": [
                sorted(rng.choice(n_items, size=candidates, replace=False).tolist()) for _ in range(n)
            ],
        }
    )
