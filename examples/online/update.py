"""The update job: the champion's River model goes on learning from the labels that came back.

Run by the controller when the policy's ``retrain:`` trigger fires (or by hand, or by a schedule),
with the labelled export of the model's traffic: each logged request that got a label, its inputs
joined to the label by request id (``$MODELWARD_RETRAIN_EXPORT``, or ``--export`` made by
``modelward export NAME --labeled``). The job

1. loads the champion through modelward (its artifacts checked against their sha256 pins) and takes
   its River model and what it has learned so far (up to which request time);
2. keeps the labelled rows newer than that, in time order, and sets the newest ``--holdout-share`` of
   them aside as the promotion gates' holdout (written to ``--holdout``, the policy's ``holdout:``):
   the gates then judge the update, and the champion, on labels neither has learned from;
3. calls ``learn_one`` on each of the other rows and logs the updated model to MLflow (a run, not a
   version);
4. runs the model's promotion gates on that logged model against the champion, on the holdout
   (``modelward.validate_model``: nothing registered yet), and registers it as a new version only
   when they pass. A failing update is reported (its failing gates in the summary, the verdict in
   the audit chain as a ``validate_model`` event) and never becomes a version. The policy's
   ``rollout: canary`` takes a registered update from there: the controller runs the gates again at
   rollout, gives it a canary, then all traffic.

With fewer than ``--min-rows`` new labelled rows there is nothing worth an update: it says so and
registers nothing. Its last line is a JSON summary (kept in the retraining run's output).

    python examples/online/update.py --holdout data/holdout.parquet --reference data/reference.parquet
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent


def _sibling(name: str) -> Any:  # examples/ is not a package: load the sibling module by path
    spec = importlib.util.spec_from_file_location(f"online_{name}", HERE / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def new_rows(export: pd.DataFrame, features: tuple[str, ...], until: str | None) -> pd.DataFrame:
    """The export's rows logged after ``until`` (ISO time), oldest first, as features and ``label``."""
    missing = [c for c in (*(f"input.{f}" for f in features), "label", "ts") if c not in export.columns]
    if missing:
        raise SystemExit(f"the labelled export has no column {', '.join(missing)}")
    rows = export if until is None else export[export["ts"] > pd.Timestamp(until)]
    rows = rows.sort_values(["ts", "request_id"], kind="stable")
    out = rows[[f"input.{f}" for f in features]].rename(columns=lambda c: c.removeprefix("input."))
    out["label"] = rows["label"].astype("int64")
    out["ts"] = rows["ts"]
    return out.reset_index(drop=True)


def atomic_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write then rename: a controller reading the holdout never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.environ.get("MODELWARD_RETRAIN_MODEL", "online"))
    parser.add_argument("--export", type=Path, default=None, help="labelled export (default: the run's)")
    parser.add_argument("--holdout", type=Path, required=True, help="the policy's holdout, rewritten")
    parser.add_argument("--reference", type=Path, required=True, help="reference requests for register")
    parser.add_argument("--holdout-share", type=float, default=0.2)
    parser.add_argument("--min-rows", type=int, default=50)
    args = parser.parse_args(argv)
    if not 0 < args.holdout_share < 1:
        parser.error("--holdout-share must be between 0 and 1")
    export_path = args.export or Path(os.environ.get("MODELWARD_RETRAIN_EXPORT") or "")
    if not export_path.name:
        print("no labelled export yet (no request has a label): nothing to learn", file=sys.stderr)
        return 0
    if not export_path.is_file():
        raise SystemExit(f"labelled export {export_path} does not exist")

    import modelward

    learner = _sibling("learner")
    champion = modelward.load(f"{args.model}@champion")
    served = champion.native.pyfunc.unwrap_python_model()  # the RiverClassifier of model.py
    river, learned = served.river, dict(served.learned)
    rows = new_rows(pd.read_parquet(export_path), learner.FEATURES, learned.get("until"))
    summary: dict[str, Any] = {"base_version": champion.version, "new_rows": len(rows)}
    if len(rows) < args.min_rows:
        print(json.dumps({**summary, "registered": None, "why": f"fewer than {args.min_rows} new rows"}))
        return 0

    held = math.ceil(len(rows) * args.holdout_share)
    train, holdout = rows.iloc[: len(rows) - held], rows.iloc[len(rows) - held :]
    before = learner.accuracy(river, holdout)
    learner.learn(river, train)
    after = learner.accuracy(river, holdout)
    learned = {
        "rows": int(learned["rows"]) + len(train),
        "until": train["ts"].max().isoformat(),  # the held-out rows are learned by the next update
        "base_version": champion.version,
    }
    uri = learner.log_model(river, learned, {"holdout_accuracy": after})
    atomic_parquet(holdout.drop(columns=["ts"]), args.holdout)
    summary.update(
        learned=len(train),
        holdout_rows=held,
        holdout_accuracy_before=round(before, 4),
        holdout_accuracy_after=round(after, 4),
        model_uri=uri,
    )
    # The gates before the registry: an update that fails them never becomes a version.
    validation = modelward.validate_model(
        uri, args.model, data=args.holdout, task="classification", allow_pickle=True
    )
    summary["gates"] = validation.verdict
    if not validation.passed:
        failing = {g.name: g.reason for g in validation.failing}
        print(json.dumps({**summary, "registered": None, "failing": failing}), flush=True)
        return 0
    info = modelward.register_mlflow_model(
        uri,
        args.model,
        reference_data=args.reference,
        target="label",
        task="classification",
        allow_pickle=True,
        description=f"v{champion.version} updated with learn_one on {len(train)} labelled requests",
        tags={
            "online.base_version": champion.version,
            "online.learned_rows": str(learned["rows"]),
            "online.learned_now": str(len(train)),
            "online.holdout_rows": str(held),
        },
    )
    summary["registered"] = str(info.version)
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
