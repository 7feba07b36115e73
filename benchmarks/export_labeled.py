"""Peak memory and time of ``modelward export NAME --labeled`` on a large prediction log.

    python benchmarks/export_labeled.py                   # 1,000,000 logged rows, half of them labelled
    python benchmarks/export_labeled.py --rows 20000      # the harness works

A fresh home under a temporary folder gets ``--rows`` logged predictions of ``churn`` (nine input
fields, the outputs a served classifier logs) and labels for every other one, written straight into
the store's tables (the setup is not what is measured). Then ``modelward export churn --labeled
--output train.parquet --json`` runs in a fresh process; its wall time and its peak resident memory
(``ru_maxrss`` of the child) are reported, beside the peak of a fresh interpreter that only imports
modelward's CLI and prints its help (what any command costs before it reads a row).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _populate(home: Path, rows: int) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from modelward.store import Store
    from modelward.store.tables import feedback, predictions

    store = Store(f"sqlite:///{home / 'modelward.db'}").open()
    store.migrate()
    rng = random.Random(0)
    start = time.time() - 3 * 86_400
    chunk = 50_000
    for first in range(0, rows, chunk):
        batch, labels = [], []
        for i in range(first, min(first + chunk, rows)):
            inputs = {
                "age": rng.randint(18, 90),
                "balance": round(rng.uniform(0, 200_000), 2),
                "estimated_salary": round(rng.uniform(10_000, 150_000), 2),
                "gender": rng.choice(["Female", "Male"]),
                "geography": rng.choice(["France", "Germany", "Spain"]),
                "has_cr_card": rng.randint(0, 1),
                "is_active_member": rng.randint(0, 1),
                "num_products": rng.randint(1, 4),
                "tenure": rng.randint(0, 10),
            }
            p = rng.random()
            batch.append(
                {
                    "request_id": f"req-{i}",
                    "ts": start + i * 0.2,
                    "model": "churn",
                    "version": "1",
                    "arm": "primary",
                    "routing_key": None,
                    "inputs": json.dumps(inputs, sort_keys=True),
                    "outputs": json.dumps(
                        {"prediction": int(p > 0.5), "probabilities": {"0": 1 - p, "1": p}}
                    ),
                    "latency_ms": 1.0,
                    "consent": True,
                }
            )
            if i % 2 == 0:
                label = rng.randint(0, 1)
                labels.append(
                    {
                        "request_id": f"req-{i}",
                        "label": json.dumps(label),
                        "value": float(label),
                        "model": "churn",
                        "ts": start + i * 0.2 + 60,
                        "updated_at": start + i * 0.2 + 60,
                        "source": "benchmark",
                    }
                )
        with store.write() as conn:
            conn.execute(predictions.insert(), batch)
            conn.execute(feedback.insert(), labels)
    store.close()


def _child(argv: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in bytes and stdout of ``argv`` in a fresh process."""
    code = (
        "import resource, subprocess, sys, time, json;"
        "t = time.perf_counter();"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "w = time.perf_counter() - t;"
        "print(json.dumps({'wall': w, 'rss': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,"
        " 'rc': p.returncode, 'out': p.stdout, 'err': p.stderr[-2000:]}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, check=True
    )
    result = json.loads(done.stdout)
    if result["rc"] != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result['rc']}: {result['err']}")
    return float(result["wall"]), int(result["rss"]), str(result["out"])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelward-export-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        began = time.perf_counter()
        _populate(home, args.rows)
        print(
            f"logged {args.rows:,} rows, labelled {(args.rows + 1) // 2:,}, "
            f"in {time.perf_counter() - began:.1f} s"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWARD_")}
        env |= {"MODELWARD_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
        target = Path(tmp) / "train.parquet"
        _, floor, _ = _child([sys.executable, "-m", "modelward", "--help"], env)
        wall, rss, out = _child(
            [sys.executable, "-m", "modelward", "export", "churn", "--labeled", "-o", str(target), "--json"],
            env,
        )
        summary = json.loads(out)
        result = {
            "logged_rows": args.rows,
            "exported_rows": summary["rows"],
            "wall_seconds": round(wall, 2),
            "peak_rss_mb": round(rss / 2**20, 1),
            "cli_floor_rss_mb": round(floor / 2**20, 1),
            "file_mb": round(target.stat().st_size / 2**20, 1),
            "database_mb": round((home / "modelward.db").stat().st_size / 2**20, 1),
        }
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    raise SystemExit(main())
