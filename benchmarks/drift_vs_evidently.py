"""Drift between two large files: ``modelward drift --reference --current`` against Evidently.

    bash benchmarks/setup_evidently.sh          # once: Evidently + pandas 2 in benchmarks/.venv-evidently
    python benchmarks/drift_vs_evidently.py     # 1,000,000 rows x 50 numeric columns, 3 rounds
    python benchmarks/drift_vs_evidently.py --quick --skip-evidently   # 2,000 x 5: the harness works

The same two files (reference Parquet, current CSV by default, half the columns shifted by a tenth
of a standard deviation) go through both tools, each in a fresh process, alternating modelward and
Evidently, ``--rounds`` times; the table shows the median wall time and the median peak RSS of the
process (``ru_maxrss`` from ``wait4``), and their ratios. Both sides read the files themselves:
modelward column by column with pyarrow, Evidently with pandas (``read_parquet``, ``read_csv``), then
``Report([DataDriftPreset()]).run(...)`` and the snapshot's ``dict()``. Evidently lives in its own
virtual environment because it does not import with pandas 3, which modelward uses.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_PYTHON = HERE / ".venv-evidently" / "bin" / "python"

EVIDENTLY = """
import json, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset

started = time.perf_counter()
read = lambda p: pd.read_parquet(p) if p.endswith(".parquet") else pd.read_csv(p)
reference, current = read(sys.argv[1]), read(sys.argv[2])
loaded = time.perf_counter()
snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
doc = snapshot.dict()
done = time.perf_counter()
count = next(m["value"] for m in doc["metrics"] if m["metric_name"].startswith("DriftedColumnsCount"))
timing = {"read_seconds": loaded - started, "report_seconds": done - loaded}
print(json.dumps({"drifted": int(count["count"]), **timing}))
"""


def generate(folder: Path, rows: int, columns: int, current_format: str, seed: int = 0) -> tuple[Path, Path]:
    """Reference and current files; every other column of the current data is shifted by 0.1 sd."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    reference = folder / f"reference-{rows}x{columns}.parquet"
    current = folder / f"current-{rows}x{columns}.{current_format}"
    if not reference.exists():
        pq.write_table(pa.table({f"x{i}": rng.normal(0.0, 1.0, rows) for i in range(columns)}), reference)
    if not current.exists():
        table = pa.table({f"x{i}": rng.normal(0.1 if i % 2 == 0 else 0.0, 1.0, rows) for i in range(columns)})
        if current_format == "csv":
            pa_csv.write_csv(table, current)
        else:
            pq.write_table(table, current)
    return reference, current


def measure(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Wall time, peak RSS (MB) and output of one fresh process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=env)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {
            "seconds": round(seconds, 3),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # kilobytes on Linux
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
            "returncode": proc.returncode,
            "timed_out": seconds > timeout,
            "stdout": out.read(),
            "stderr": err.read()[-2000:],
        }


def run_modelward(reference: Path, current: Path, timeout: float) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "modelward",
        "drift",
        "--reference",
        str(reference),
        "--current",
        str(current),
    ]
    result = measure([*cmd, "--json"], timeout)
    if result["returncode"] == 0:
        result["drifted"] = len(json.loads(result["stdout"])["drift"]["drifted_features"])
    return result


def run_evidently(reference: Path, current: Path, timeout: float) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = measure([str(VENV_PYTHON), "-c", EVIDENTLY, str(reference), str(current)], timeout, env)
    if result["returncode"] == 0:
        result.update(json.loads(result["stdout"].strip().splitlines()[-1]))
    return result


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if r["returncode"] == 0]
    if not ok:
        return {"runs": len(runs), "ok": 0, "error": runs[-1]["stderr"][-500:] if runs else "not run"}
    return {
        "runs": len(runs),
        "ok": len(ok),
        "median_seconds": round(statistics.median(r["seconds"] for r in ok), 2),
        "median_cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in ok), 2),
        "median_peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in ok), 1),
        "seconds": [r["seconds"] for r in ok],
        "drifted": ok[-1].get("drifted"),
    }


def table(results: dict[str, Any]) -> str:
    rows = [
        "| tool | median wall s | median CPU s | median peak RSS MB | drifted columns | runs |",
        "|---|---|---|---|---|---|",
    ]
    for tool in ("modelward", "evidently"):
        s = results["tools"].get(tool)
        if not s:
            continue
        if not s.get("ok"):
            rows.append(f"| {tool} | failed | | | | {s['runs']} |")
            continue
        rows.append(
            f"| {tool} | {s['median_seconds']} | {s['median_cpu_seconds']} | {s['median_peak_rss_mb']} | "
            f"{s['drifted']} of {results['columns']} | {s['ok']} |"
        )
    m, e = results["tools"].get("modelward", {}), results["tools"].get("evidently", {})
    if m.get("ok") and e.get("ok"):
        time_ratio = e["median_seconds"] / m["median_seconds"]
        rss_ratio = e["median_peak_rss_mb"] / m["median_peak_rss_mb"]
        results["ratio"] = {"time": round(time_ratio, 1), "peak_rss": round(rss_ratio, 1)}
        rows.append("")
        rows.append(f"Evidently / modelward: {time_ratio:.1f}x the time, {rss_ratio:.1f}x the peak memory.")
    return "\n".join(rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--columns", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3, help="runs of each tool, alternating (median reported)")
    p.add_argument("--current-format", choices=("csv", "parquet"), default="csv")
    p.add_argument("--work", type=Path, default=HERE / ".drift-data", help="where the generated files go")
    p.add_argument("--timeout", type=float, default=3_600.0, help="seconds allowed per run")
    p.add_argument("--skip-evidently", action="store_true", help="measure modelward only")
    p.add_argument(
        "--quick", action="store_true", help="2,000 rows x 5 columns, one round: the harness works"
    )
    p.add_argument("--out", type=Path, help="also write the results as JSON here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.rows, args.columns, args.rounds = 2_000, 5, 1
    args.work.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(HERE))
    import machine

    evidently = not args.skip_evidently and VENV_PYTHON.exists()
    if not args.skip_evidently and not evidently:
        print(f"{VENV_PYTHON} is missing: run bash benchmarks/setup_evidently.sh (measuring modelward only)")
    reference, current = generate(args.work, args.rows, args.columns, args.current_format)
    runs: dict[str, list[dict[str, Any]]] = {"modelward": [], "evidently": []}
    for round_ in range(1, args.rounds + 1):
        runs["modelward"].append(run_modelward(reference, current, args.timeout))
        print(f"round {round_}: modelward {runs['modelward'][-1]['seconds']} s", flush=True)
        if evidently:
            runs["evidently"].append(run_evidently(reference, current, args.timeout))
            print(f"round {round_}: evidently {runs['evidently'][-1]['seconds']} s", flush=True)
    results: dict[str, Any] = {
        "rows": args.rows,
        "columns": args.columns,
        "files": {"reference": reference.name, "current": current.name},
        "machine": machine.describe(),
        "tools": {tool: summarise(r) for tool, r in runs.items() if r},
        "runs": {
            tool: [{k: v for k, v in x.items() if k != "stdout"} for x in r] for tool, r in runs.items()
        },
    }
    text = table(results)
    print(f"\n{args.rows:,} rows x {args.columns} columns, {reference.name} vs {current.name}\n")
    print(text)
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))
    failed = [t for t, s in results["tools"].items() if not s.get("ok")]
    return 1 if "modelward" in failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
