"""Run the federation: N nodes, each with its own shard, train a logistic regression by FedAvg.

By default on Flower's simulation engine (``flwr.simulation.run_simulation``, Ray underneath): every
node is a virtual SuperNode in this machine's Ray actors. The final average and the run's history
go to ``--out`` (JSON), which ``register.py`` turns into a modelward version. Run from anywhere:

    python examples/federated/federate.py [--nodes 3] [--rounds 5] [--rows-per-node 800] [--out federated.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flower_app import make_client_app, make_server_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows-per-node", type=int, default=800)
    parser.add_argument("--local-iterations", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("federated.json"))
    args = parser.parse_args(argv)
    if args.nodes < 2 or args.rounds < 1:
        parser.error("a federation needs at least 2 nodes and 1 round")

    from flwr.simulation import run_simulation

    settings = {
        "rounds": args.rounds,
        "nodes": args.nodes,
        "rows-per-node": args.rows_per_node,
        "local-iterations": args.local_iterations,
        "seed": args.seed,
        "out": str(args.out.resolve()),
    }
    run_simulation(
        server_app=make_server_app(settings),
        client_app=make_client_app(settings),
        num_supernodes=args.nodes,
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
    )
    summary = json.loads(args.out.read_text())
    last = summary["history"][-1]
    print(
        f"{summary['nodes']} nodes, {summary['rounds']} rounds of {summary['strategy']}: "
        f"federated accuracy {last['eval_accuracy']:.3f}; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
