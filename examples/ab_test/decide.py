"""Apply the A/B test's verdict: promote the winner to champion and send it all the traffic.

Reads the report from a running server (``GET /models/{name}/abtest``) and decides: the challenger
wins when its always-valid p-value is below alpha with a positive difference and the sample ratio
check found no mismatch (a broken split makes every comparison suspect). A win is applied through
the admin routes (the token is ``MODELWARD_ADMIN_TOKEN``): ``POST /admin/models/{name}/promote``
(the promotion gates run there) and ``PUT /admin/deployments/{name}`` back to a single arm serving
the champion. Otherwise nothing moves and the script says why. Prints the decision as JSON.

    python examples/ab_test/decide.py [URL] [--model churn_ab] [--metric label] [--apply]
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import httpx


def decide(report: dict[str, Any]) -> dict[str, Any]:
    """The arm to promote (or none) and why, from an A/B report's JSON."""
    srm = report.get("srm")
    if srm and srm.get("mismatch"):
        return {
            "winner": None,
            "why": f"sample ratio mismatch (p = {srm['p_value']:.2g}): fix the split first",
        }
    winners = [
        c
        for c in report.get("comparisons") or []
        if c["sequential_significant"] and (c["difference"] or 0.0) > 0
    ]
    best = max(winners, key=lambda c: c["difference"], default=None)
    if best is None:
        return {"winner": None, "why": "no challenger beats the control yet (always-valid p-values)"}
    return {
        "winner": best["treatment"],
        "why": f"{best['treatment']} beats {best['control']} by {best['difference']:+.3f} "
        f"(always-valid p = {best['sequential_p_value']:.2g})",
    }


def _version_of(client: httpx.Client, model: str, target: str) -> str:
    """The version an arm's target (``@alias`` or a version) names now."""
    if not target.startswith("@"):
        return target
    versions = client.get(f"/models/{model}").json()["versions"]
    return str(next(v["version"] for v in versions if target[1:] in v["aliases"]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8000")
    parser.add_argument("--model", default="churn_ab")
    parser.add_argument("--metric", default="label")
    parser.add_argument("--apply", action="store_true", help="promote the winner and route all traffic to it")
    args = parser.parse_args(argv)

    url = args.url if "://" in args.url else f"http://{args.url}"
    token = os.environ.get("MODELWARD_ADMIN_TOKEN", "")
    admin = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, timeout=60) as client:
        answer = client.get(f"/models/{args.model}/abtest", params={"metric": args.metric})
        if answer.status_code != 200:
            raise SystemExit(f"{answer.status_code}: {answer.text}")
        report = answer.json()
        decision = decide(report)
        decision["verdict"] = report["verdict"]
        if decision["winner"] and args.apply:
            deployment = client.get(f"/admin/deployments/{args.model}", headers=admin)
            if deployment.status_code != 200:
                raise SystemExit(f"{deployment.status_code}: {deployment.text}")
            spec = deployment.json()["spec"]
            target = next(a["target"] for a in spec["arms"] if a["name"] == decision["winner"])
            version = _version_of(client, args.model, target)
            reason = f"A/B test: {decision['why']}"
            promoted = client.post(
                f"/admin/models/{args.model}/promote",
                json={"version": str(version), "alias": "champion", "reason": reason},
                headers=admin,
            )
            if promoted.status_code != 200:
                raise SystemExit(f"promotion refused: {promoted.status_code} {promoted.text}")
            single = {
                "model": args.model,
                "strategy": "single",
                "arms": [{"name": "primary", "target": "@champion", "weight": 1.0}],
            }
            routed = client.put(
                f"/admin/deployments/{args.model}", json={"spec": single, "reason": reason}, headers=admin
            )
            if routed.status_code != 200:
                raise SystemExit(f"deployment refused: {routed.status_code} {routed.text}")
            decision["promoted"] = str(version)
    print(json.dumps(decision))


if __name__ == "__main__":
    main()
