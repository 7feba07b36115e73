"""Two weeks of an A/B test against a running ``modelward serve``: traffic by day, then what happened.

Each simulated day, that day's customers (the churn example's synthetic population, with their
``customer_id``) are scored by the server, which routes each customer to an arm by a hash of the id
(the same customer always meets the same model). The retention team offers a discount to every
customer whose ``churn_probability`` is at least ``--threshold``. What happens next is the
simulation: a customer who was not going to leave stays; one who was leaves, unless they got the
offer, which keeps them with probability ``--save-rate``. Staying is the conversion: it goes back
to the server as the label of that request (``POST /feedback``), and the day ends with the running
A/B report (``GET /models/{name}/abtest?metric=label``): each arm's retention, the always-valid
p-value (safe to look at every day) and the verdict. Run after ``train.py`` and
``modelward deploy churn_ab --ab champion=50 challenger=50 --key customer_id``:

    python examples/ab_test/simulate.py [URL] [--days 14] [--per-day 300] [--model churn_ab]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

CHURN = Path(__file__).resolve().parents[1] / "churn"


def churn_generator() -> Any:  # examples/ is not a package: load the churn example's generator by path
    spec = importlib.util.spec_from_file_location("churn_generate", CHURN / "generate.py")
    if spec is None or spec.loader is None:
        raise ImportError("cannot load examples/churn/generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _check(answer: httpx.Response) -> Any:
    if answer.status_code >= 300:
        raise SystemExit(
            f"{answer.request.method} {answer.request.url.path}: {answer.status_code} {answer.text}"
        )
    return answer.json()


def day(client: httpx.Client, model: str, customers: Any, rng: np.random.Generator, args: Any) -> int:
    """Score a day's customers, play out what they do, send each outcome; the offers made."""
    rows = customers.drop(columns=["churn"]).to_dict(orient="records")
    answer = _check(client.post(f"/models/{model}/predict", json={"instances": rows}))
    outcomes, offers = [], 0
    for p, leaving in zip(answer["predictions"], customers["churn"], strict=True):
        offered = p["churn_probability"] >= args.threshold
        offers += int(offered)
        stayed = not leaving or (offered and rng.random() < args.save_rate)
        outcomes.append({"request_id": p["request_id"], "label": int(stayed)})
    _check(client.post("/feedback", json={"items": outcomes}))
    return offers


def wait_logged(client: httpx.Client, model: str, rows: int, timeout: float = 120.0) -> dict[str, Any]:
    """The running A/B report (``?metric=label``), once it counts every request sent so far with its
    outcome (the prediction log is written off the request path, so it lags a little)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(f"/models/{model}/abtest", params={"metric": "label"})
        if answer.status_code != 409:  # 409: no labelled request is logged yet
            body = dict(_check(answer))
            if sum(a["requests"] for a in body["arms"]) >= rows and sum(a["n"] for a in body["arms"]) >= rows:
                return body
        if time.monotonic() > deadline:
            raise SystemExit(f"the A/B report still counts fewer than {rows} labelled requests")
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8000")
    parser.add_argument("--model", default="churn_ab")
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--per-day", type=int, default=300)
    parser.add_argument("--threshold", type=float, default=0.3, help="churn probability that earns an offer")
    parser.add_argument("--save-rate", type=float, default=0.7, help="share of leavers an offer keeps")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the last day's report as JSON")
    args = parser.parse_args(argv)

    population = churn_generator().generate(args.days * args.per_day, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    url = args.url if "://" in args.url else f"http://{args.url}"
    body: dict[str, Any] = {}
    with httpx.Client(base_url=url, timeout=60) as client:
        for d in range(args.days):
            customers = population.iloc[d * args.per_day : (d + 1) * args.per_day]
            offers = day(client, args.model, customers, rng, args)
            body = wait_logged(client, args.model, (d + 1) * args.per_day)
            if not args.json:
                arms = ", ".join(f"{a['name']} {a['mean']:.3f} (n={a['n']})" for a in body["arms"])
                seq = body["comparisons"][0]["sequential_p_value"] if body.get("comparisons") else None
                seq_text = "n/a" if seq is None else f"{seq:.4f}"
                print(f"day {d + 1:2d}: {offers} offers; retention {arms}; always-valid p {seq_text}")
    if args.json:
        print(json.dumps(body))
    else:
        print(body["verdict"])


if __name__ == "__main__":
    main()
