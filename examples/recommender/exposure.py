"""Ask a running ``modelward serve`` for each user's ranking of the whole catalogue, then measure how
the top ``k`` exposure falls across item providers (``modelward.governance.exposure``, on Fairlearn).

Each request is a user id with every catalogue item as a candidate; the item scores come back over
REST, and the top ``k`` of each user is what the user would see. Prints a table, or JSON with
``--json``. Run after ``train.py``, ``modelward register`` and ``modelward serve reco``:

    python examples/recommender/exposure.py [URL] [--users 100] [--k 10] [--model reco]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from modelward.governance.exposure import exposure_audit

HERE = Path(__file__).resolve().parent


def rankings(url: str, model: str, users: list[int], items: list[int], batch: int = 50) -> list[list[int]]:
    """Each user's items, best first, from the served scores."""
    ranked: list[list[int]] = []
    with httpx.Client(base_url=url if "://" in url else f"http://{url}", timeout=60) as client:
        for start in range(0, len(users), batch):
            rows = [{"user_id": u, "item_ids": items} for u in users[start : start + batch]]
            answer = client.post(f"/models/{model}/predict", json={"instances": rows})
            if answer.status_code != 200:
                raise SystemExit(f"{answer.status_code}: {answer.text}")
            for p in answer.json()["predictions"]:
                order = np.argsort(-np.asarray(p["prediction"]), kind="stable")
                ranked.append([items[i] for i in order])
    return ranked


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8000")
    parser.add_argument("--model", default="reco")
    parser.add_argument("--users", type=int, default=100, help="users to rank the catalogue for")
    parser.add_argument("--k", type=int, default=10, help="how many items a user sees")
    parser.add_argument("--data-dir", type=Path, default=HERE / "data")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    catalogue = pd.read_parquet(args.data_dir / "items.parquet")
    items = [int(i) for i in catalogue["item_id"]]
    report = exposure_audit(
        rankings(args.url, args.model, list(range(args.users)), items),
        dict(zip(items, catalogue["provider"].astype(str), strict=True)),
        k=args.k,
    )
    if args.json:
        print(json.dumps(report.to_dict()))
        return
    for g in report.groups:
        print(
            f"{g.group:>8}: {g.items} items ({g.catalogue_share:.0%} of the catalogue), "
            f"{g.exposure_share:.0%} of the top-{report.k} exposure"
        )
    print(f"exposure ratio (lowest / highest exposure per item): {report.exposure_ratio:.2f}")


if __name__ == "__main__":
    main()
