"""Send the test set's customers to a running ``modelward serve``, as a client application would.

Each customer's features go with their ``customer_id`` (what an A/B test keyed on it, ``modelward
deploy churn --key customer_id``, routes by), 100 customers per request. The script first waits
until the server routes by the model's current deployment (servers pick a new one up within their
reload interval, 5 s by default), and at the end until its predictions are in the prediction log,
so that what runs next (``modelward deploy status``, a label import) sees all of them. Run from
the repository root, after ``examples/churn/train.py``:

    python examples/churn/traffic.py [URL] [--rows 5000] [--batch 100] [--model churn]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from modelward.api import open_registry
from modelward.monitoring.prediction_query import count_predictions

HERE = Path(__file__).resolve().parent


def _url(text: str) -> str:
    return text if "://" in text else f"http://{text}"


def _wait_for_deployment(registry: Any, client: httpx.Client, model: str, timeout: float = 60.0) -> None:
    """Until the server routes ``model`` by its stored deployment revision."""
    stored = registry.deployments.get(model)
    wanted = stored.revision if stored else None
    deadline = time.monotonic() + timeout
    while True:
        described = client.get(f"/models/{model}")
        described.raise_for_status()
        serving = (described.json().get("deployment") or {}).get("revision")
        if serving == wanted:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"the server still routes by deployment revision {serving}, not {wanted}")
        time.sleep(0.2)


def _wait_for_log(registry: Any, model: str, since: float, rows: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while count_predictions(registry.store, model, since=since) < rows:
        if time.monotonic() > deadline:
            raise SystemExit(f"fewer than {rows} predictions of {model} were logged")
        time.sleep(0.2)


def _answered(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(arm, version) of each prediction: the response's, or each row's own when rows were split."""
    return [
        (p.get("arm") or body.get("arm") or "", str(p.get("version") or body.get("version")))
        for p in body["predictions"]
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8000", help="the server")
    parser.add_argument("--model", default="churn")
    parser.add_argument("--rows", type=int, default=5_000, help="customers to send (the test set has 5,000)")
    parser.add_argument("--batch", type=int, default=100, help="customers per request")
    parser.add_argument("--data", type=Path, default=HERE / "data" / "churn_test.parquet")
    args = parser.parse_args(argv)

    customers = pd.read_parquet(args.data).drop(columns=["churn"]).head(args.rows)
    records = customers.to_dict(orient="records")
    served: Counter[tuple[str, str]] = Counter()
    with open_registry() as registry, httpx.Client(base_url=_url(args.url), timeout=60) as client:
        _wait_for_deployment(registry, client, args.model)
        start = time.time()
        for i in range(0, len(records), args.batch):
            batch = records[i : i + args.batch]
            answer = client.post(f"/models/{args.model}/predict", json={"instances": batch})
            if answer.status_code != 200:
                raise SystemExit(f"{answer.status_code}: {answer.text}")
            served.update(_answered(answer.json()))
        _wait_for_log(registry, args.model, start, len(records))
    arms = ", ".join(f"{arm} (version {version}) {n}" for (arm, version), n in sorted(served.items()))
    print(f"sent {len(records)} customers in {-(-len(records) // args.batch)} requests: {arms}")


if __name__ == "__main__":
    main()
