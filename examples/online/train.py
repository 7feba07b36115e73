"""Train the first River model on events from before the drift and release it as the champion.

``learn_one`` on each of ``--rows`` events (the label is ``x1 + x2 > 0``), then the model is logged as
the pyfunc of ``model.py`` into the tracking store modelward uses (``MODELWARD_HOME``'s, or
``MODELWARD_TRACKING_URI``), registered as the first version of ``--name`` (the events as its
reference data), promoted to champion, and given its policy: the promotion gates on the newest
labelled rows, the update job as the retraining command, the canary rollout (``policy.yaml``, stored
with the model). ``--data-dir`` receives the reference events, the gates' first holdout and the
policy. Run from the repository root:

    python examples/online/train.py [--rows 1000] [--seed 0] [--window 10m] [--cooldown 15m]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _sibling(name: str) -> Any:  # examples/ is not a package: load the sibling module by path
    spec = importlib.util.spec_from_file_location(f"online_{name}", HERE / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def policy(args: argparse.Namespace, holdout: Path, reference: Path) -> str:
    """The model's policy: gates on the newest labelled rows, the update job, the canary."""
    command = [
        sys.executable,
        str(HERE / "update.py"),
        "--holdout",
        str(holdout),
        "--reference",
        str(reference),
    ]
    return (
        f"holdout: {holdout}\n"
        "label: label\n"
        "metrics: {accuracy: {min: 0.8}}\n"
        "regression: {metric: accuracy, margin: 0.02}\n"
        "retrain:\n"
        f"  performance: {{metric: accuracy, min: {args.floor}, min_labels: {args.min_labels}, "
        f"window: {args.window}}}\n"
        f"  cooldown: {args.cooldown}\n"
        "  timeout: 10m\n"
        f"  command: {json.dumps(command)}\n"
        "rollout:\n"
        "  strategy: canary\n"
        f"  steps: [{args.steps}]\n"
        f"  step_duration: {args.step_duration}\n"
        "  metric: accuracy\n"
        "  max_performance_drop: 0.05\n"
        "  max_divergence: 1.0\n"  # an update is meant to answer differently
        "  latency_slack_ms: 250\n"
        f"  min_requests: {args.min_labels}\n"
        f"  min_labels: {args.min_labels}\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="online")
    parser.add_argument("--data-dir", type=Path, default=HERE / "data")
    parser.add_argument("--floor", type=float, default=0.8, help="live accuracy that starts an update")
    parser.add_argument("--min-labels", type=int, default=100, help="labels the trigger and canary need")
    parser.add_argument("--window", default="10m", help="live accuracy is judged over this window")
    parser.add_argument("--cooldown", default="15m", help="between two automatic updates")
    parser.add_argument("--steps", default="10, 50, 100", help="the canary's traffic percentages")
    parser.add_argument("--step-duration", default="5m")
    args = parser.parse_args(argv)

    stream, learner = _sibling("stream"), _sibling("learner")
    events = stream.events(args.rows, concept=0, seed=args.seed)
    holdout_rows = stream.events(300, concept=0, seed=args.seed + 1)
    model = learner.new_model()
    learner.learn(model, events)
    holdout_accuracy = learner.accuracy(model, holdout_rows)

    data = args.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    reference, holdout = data / "reference.parquet", data / "holdout.parquet"
    events.to_parquet(reference, index=False)
    holdout_rows.to_parquet(holdout, index=False)
    learned = {"rows": len(events), "until": None, "base_version": None}
    uri = learner.log_model(model, learned, {"holdout_accuracy": holdout_accuracy})
    print(f"learned {len(events)} events one by one; holdout accuracy {holdout_accuracy:.3f}")
    print(f"logged {uri}")

    import modelward

    info = modelward.register_mlflow_model(
        uri,
        args.name,
        reference_data=reference,
        target="label",
        task="classification",
        allow_pickle=True,  # River models are pickled; the artifacts are pinned by sha256
        description=f"River logistic regression, learn_one on {len(events)} events",
    )
    modelward.promote(args.name, info.version, data=holdout)
    body = policy(args, holdout, reference)
    (data / "policy.yaml").write_text(body)
    modelward.set_policy(args.name, body, source=str(data / "policy.yaml"))
    print(f"registered {args.name}:{info.version} as champion, with the policy in {data / 'policy.yaml'}")


if __name__ == "__main__":
    main()
