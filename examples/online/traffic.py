"""Live traffic against a running ``modelward serve``, a concept drift, and the accuracy it costs.

Each batch is ``--batch`` events, each one request (``{"features": {...}}``), whose true label goes
back at once by request id (``POST /feedback``). The first ``--before`` batches follow the old rule,
every batch after them the new one. The accuracy printed per batch is the share of the server's
answers that were right, and the versions are the ones that answered: the old champion, the canary of
an update, then the promoted update. After the drift, traffic goes on until the last ``--settle``
batches were answered entirely by a newer version with a mean accuracy of ``--recovered`` or better,
and that version is the champion (the canary promoted it), or for ``--max-after`` batches (then it
exits 1). Batches are ``--interval`` seconds apart: the
traffic's pace, during which the server's controller notices the fall, runs the update job and rolls
the update out. Run after the README's set-up:

    python examples/online/traffic.py [URL] [--model online] [--before 10] [--batch 50] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent


def _stream() -> Any:  # examples/ is not a package: load the sibling module by path
    spec = importlib.util.spec_from_file_location("online_stream", HERE / "stream.py")
    if spec is None or spec.loader is None:
        raise ImportError("cannot load stream.py")
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


def batch(client: httpx.Client, model: str, events: Any) -> dict[str, Any]:
    """Score each event, send its label back; the share answered right and by which versions."""
    right, versions, outcomes = 0, Counter[str](), []
    for row in events.to_dict(orient="records"):
        label = int(row.pop("label"))
        body = _check(client.post(f"/models/{model}/predict", json={"features": row}))
        (prediction,) = body["predictions"]
        right += int(prediction["prediction"]) == label
        versions[str(body["version"])] += 1
        outcomes.append({"request_id": prediction["request_id"], "label": label})
    _check(client.post("/feedback", json={"items": outcomes}))
    return {"accuracy": right / len(events), "versions": dict(sorted(versions.items()))}


def champion(client: httpx.Client, model: str) -> str | None:
    """The version that holds the champion alias now."""
    versions = _check(client.get(f"/models/{model}"))["versions"]
    return next((v["version"] for v in versions if "champion" in v["aliases"]), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8000")
    parser.add_argument("--model", default="online")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--before", type=int, default=10, help="batches before the drift")
    parser.add_argument("--max-after", type=int, default=600, help="batches after it, at most")
    parser.add_argument("--recovered", type=float, default=0.9, help="accuracy that counts as recovered")
    parser.add_argument("--settle", type=int, default=5, help="batches of a newer version that are judged")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between batches")
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print every batch as one JSON document")
    args = parser.parse_args(argv)
    stream = _stream()
    url = args.url if "://" in args.url else f"http://{args.url}"
    batches: list[dict[str, Any]] = []
    streak, first, recovered, held = 0, None, False, None
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(args.before + args.max_after):
            concept = 0 if i < args.before else 1
            events = stream.events(args.batch, concept=concept, seed=args.seed + i)
            done = {"batch": i + 1, "concept": concept, **batch(client, args.model, events)}
            batches.append(done)
            if first is None:
                first = min(int(v) for v in done["versions"])
            if not args.json:
                served = ", ".join(f"v{v} {n}" for v, n in done["versions"].items())
                rule = stream.CONCEPTS[concept]
                print(f"batch {i + 1:3d} [{rule}]: accuracy {done['accuracy']:.2f} ({served})", flush=True)
            newer = all(int(v) > first for v in done["versions"])
            streak = streak + 1 if concept == 1 and newer else 0
            last = [b["accuracy"] for b in batches[-args.settle :]]
            if streak >= args.settle and sum(last) / len(last) >= args.recovered:
                # served by the update at the canary's last step is not yet promoted: wait for that
                held = champion(client, args.model)
                if set(done["versions"]) == {held}:
                    recovered = True
                    break
            time.sleep(args.interval)
    if args.json:
        print(json.dumps({"batches": batches, "recovered": recovered}))
    elif recovered:
        print(
            f"recovered: the last {args.settle} batches at {args.recovered:.0%} or better, "
            f"by v{held}, now the champion"
        )
    return 0 if recovered else 1


if __name__ == "__main__":
    sys.exit(main())
