"""The CRM's daily retention run against a running ``modelward serve``: score, call, learn what happened.

For each day from ``--first`` to ``--last`` it builds that day's feature table from the transaction
log (``features.py``: the customers due that day), scores it through the server in pages of
``--batch`` customers (``POST /models/{name}/predict``; each answer's ``X-Model-Version`` says which
version scored it), and puts the ``--call-share`` most likely to leave on the retention team's call
list. Overnight the outcomes arrive (``shop.outcomes``: did each checked customer stop buying) and go
back to the server as labels of their requests (``POST /feedback``, by request id). The day ends
once the server counts them, with one line: the versions that scored, the day's AUC (the scores
against the outcomes), each version's live AUC as the server measures it
(``GET /models/{name}/performance``), and which version is champion now. A replayed night lasts
well under a second: before the next day the script waits for the server to serve the champion (it
follows an alias move at its next alias poll, ``--reload-interval``), as a real night would.

    python examples/retention/crm.py [URL] --first 1 --last 14 [--log transactions.parquet] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from features import FEATURES, daily_features
from shop import outcomes
from sklearn.metrics import roc_auc_score


def _check(answer: httpx.Response) -> Any:
    if answer.status_code >= 300:
        raise SystemExit(
            f"{answer.request.method} {answer.request.url.path}: {answer.status_code} {answer.text}"
        )
    return answer.json()


def score(client: httpx.Client, model: str, table: pd.DataFrame, batch: int) -> pd.DataFrame:
    """``request_id``, ``churn_probability`` and ``version`` of each row of ``table``, in its order."""
    parts = []
    for start in range(0, len(table), batch):
        rows = table[FEATURES].iloc[start : start + batch].to_dict(orient="records")
        answer = client.post(f"/models/{model}/predict", json={"instances": rows})
        predictions = _check(answer)["predictions"]
        part = pd.DataFrame(predictions)[["request_id", "churn_probability"]]
        part["version"] = answer.headers.get("X-Model-Version", "")
        parts.append(part)
    return pd.concat(parts, ignore_index=True).set_index(table.index)


def performance(client: httpx.Client, model: str) -> dict[str, Any]:
    return dict(_check(client.get(f"/models/{model}/performance", params={"window": "30d"})))


def wait_counted(client: httpx.Client, model: str, labelled: int, timeout: float = 120.0) -> dict[str, Any]:
    """The performance report once it joins at least ``labelled`` outcomes (the prediction log is
    written off the request path, so it lags the answers a little)."""
    deadline = time.monotonic() + timeout
    while True:
        report = performance(client, model)
        if report["n_labelled"] >= labelled:
            return report
        if time.monotonic() > deadline:
            raise SystemExit(f"the server counts {report['n_labelled']} outcomes, not {labelled}")
        time.sleep(0.2)


def champion(client: httpx.Client, model: str) -> str | None:
    versions = _check(client.get(f"/models/{model}"))["versions"]
    return next((str(v["version"]) for v in versions if "champion" in v["aliases"]), None)


def serving(client: httpx.Client, model: str) -> str | None:
    """The version the server scores ``model`` with now (``GET /ready``; 503 while it loads)."""
    models = client.get("/ready").json().get("models") or {}
    version = (models.get(model) or {}).get("version")
    return None if version is None else str(version)


def follow_champion(client: httpx.Client, model: str, timeout: float = 60.0) -> None:
    """Wait until the server serves the champion; say so on stderr when it does not within ``timeout``
    (a server started with ``--reload-interval 0`` never follows an alias move)."""
    deadline = time.monotonic() + timeout
    while (want := champion(client, model)) is not None and serving(client, model) != want:
        if time.monotonic() > deadline:
            print(
                f"the server still serves v{serving(client, model)}, not the champion v{want}",
                file=sys.stderr,
            )
            return
        time.sleep(0.2)


def day(
    client: httpx.Client, log: pd.DataFrame, d: int, args: argparse.Namespace, before: int
) -> dict[str, Any]:
    """Score day ``d``, send its outcomes and wait for the server to count them on top of ``before``."""
    table = daily_features(log, d)
    if table.empty:
        raise SystemExit(f"day {d}: no customer is due (the log has no purchase before it)")
    scored = score(client, args.model, table, args.batch)
    calls = scored["churn_probability"].rank(ascending=False) <= round(args.call_share * len(table))
    churned = outcomes(table, d, seed=args.seed)  # overnight: what each checked customer did
    items = [
        {"request_id": rid, "label": int(label)}
        for rid, label in zip(scored["request_id"], churned, strict=True)
    ]
    _check(client.post("/feedback", json={"items": items}))
    report = wait_counted(client, args.model, before + len(items))
    live = {
        g["version"]: (g["metrics"].get("roc_auc") or {}).get("value")
        for g in report["versions"]
        if g["n_labelled"]
    }
    return {
        "day": d,
        "checks": len(table),
        "versions": dict(Counter(scored["version"])),
        "calls": int(calls.sum()),
        "churned": int(churned.sum()),
        "auc": float(roc_auc_score(churned, scored["churn_probability"])),
        "live_auc": live,
        "champion": champion(client, args.model),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8000")
    parser.add_argument("--log", type=Path, default=Path("transactions.parquet"))
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--last", type=int, default=14)
    parser.add_argument("--model", default="retention")
    parser.add_argument("--batch", type=int, default=50, help="customers per scoring call")
    parser.add_argument(
        "--call-share", type=float, default=0.2, help="share of the day's checks the team calls"
    )
    parser.add_argument("--seed", type=int, default=0, help="the shop's seed (as given to shop.py)")
    parser.add_argument("--json", action="store_true", help="one JSON object a day")
    args = parser.parse_args(argv)
    if not 0 <= args.call_share <= 1:
        parser.error(f"--call-share must be within 0 and 1, got {args.call_share}")

    log = pd.read_parquet(args.log)
    url = args.url if "://" in args.url else f"http://{args.url}"
    with httpx.Client(base_url=url, timeout=60) as client:
        labelled = performance(client, args.model)["n_labelled"]
        for d in range(args.first, args.last + 1):
            follow_champion(client, args.model)
            result = day(client, log, d, args, labelled)
            labelled += result["checks"]
            if args.json:
                print(json.dumps(result), flush=True)
                continue
            served = ", ".join(f"v{v}" for v in sorted(result["versions"]))
            live = ", ".join(f"v{v} {a:.3f}" for v, a in sorted(result["live_auc"].items()) if a is not None)
            print(
                f"day {d:2d}: {result['checks']} checks by {served}, {result['calls']} calls, "
                f"{result['churned']} left; AUC {result['auc']:.3f} (live: {live}); champion v{result['champion']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
