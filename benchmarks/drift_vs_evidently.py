"""Drift between two large files: ``modelward drift --reference --current`` against Evidently and NannyML.

    bash benchmarks/setup_evidently.sh          # once: Evidently + pandas 2 in benchmarks/.venv-evidently
    bash benchmarks/setup_nannyml.sh            # once: NannyML + pandas 2 in benchmarks/.venv-nannyml
    python benchmarks/drift_vs_evidently.py     # 1,000,000 rows x 50 numeric columns, 3 rounds
    python benchmarks/drift_vs_evidently.py --sizes 100000,1000000,5000000 --time-limit 900
    python benchmarks/drift_vs_evidently.py --quick --skip-evidently --skip-nannyml  # 2,000 x 5
    python benchmarks/drift_vs_evidently.py --skip-evidently --skip-nannyml --compare ../old/src  # vs old

The same two files (reference Parquet, current CSV by default, half the columns shifted by a tenth
of a standard deviation) go through every tool, each in a fresh process, alternating the tools,
``--rounds`` times per size; the table shows the median wall time and the median peak RSS of the
process (``ru_maxrss`` from ``wait4``), and the peers' ratios to modelward. Every tool reads the files
itself: modelward column by column with pyarrow, the peers with pandas (``read_parquet``,
``read_csv``). Evidently: ``Report([DataDriftPreset()]).run(...)`` and the snapshot's ``dict()``.
NannyML: ``UnivariateDriftCalculator`` with its defaults (Jensen-Shannon distance on continuous columns,
thresholds from the spread over the reference's chunks, 10 chunks per period), ``fit`` on the reference
and ``calculate`` on the current data; a column counts as drifted when any chunk raised an alert. The
peers live in virtual environments of their own because they do not import with pandas 3, which
modelward uses, and their pins differ.

A peer run that passes ``--time-limit`` seconds is stopped and recorded as such, and the peer is not run
at the larger sizes; neither is a peer whose median at the previous size, scaled by the rows, already
passes the limit (recorded as projected, with the projection).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_PYTHON = HERE / ".venv-evidently" / "bin" / "python"
NANNYML_PYTHON = HERE / ".venv-nannyml" / "bin" / "python"
PEERS = ("evidently", "nannyml")
TOOLS = ("modelward", *PEERS)
BEFORE = "modelward-before"  # --compare SRC: modelward from another checkout's src, beside this one

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


NANNYML = """
import json, sys, time
import pandas as pd
import nannyml as nml

started = time.perf_counter()
read = lambda p: pd.read_parquet(p) if p.endswith(".parquet") else pd.read_csv(p)
reference, current = read(sys.argv[1]), read(sys.argv[2])
loaded = time.perf_counter()
columns = list(reference.columns)
calculator = nml.UnivariateDriftCalculator(column_names=columns, chunk_number=10)
calculator.fit(reference)
frame = calculator.calculate(current).filter(period="analysis").to_df()
done = time.perf_counter()
drifted = sum(bool(frame[(c, "jensen_shannon", "alert")].any()) for c in columns)
print(json.dumps({"drifted": drifted, "read_seconds": loaded - started, "report_seconds": done - loaded}))
"""


def generate(folder: Path, rows: int, columns: int, current_format: str, seed: int = 0) -> tuple[Path, Path]:
    """Reference and current files; every other column of the current data is shifted by 0.1 sd.

    Written by a process of its own: the peak RSS of a measured run (``ru_maxrss``) starts from its
    parent's high-water mark, which survives fork and exec, so a parent that had held the data would
    lend every tool its memory (it did: 569 MB instead of 280 MB for modelward at 1M rows)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_write_files, folder, rows, columns, current_format, seed).result()


def _write_files(folder: Path, rows: int, columns: int, current_format: str, seed: int) -> tuple[Path, Path]:
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


def run_modelward(reference: Path, current: Path, timeout: float, src: Path | None = None) -> dict[str, Any]:
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
    env = None if src is None else dict(os.environ, PYTHONPATH=str(src))
    result = measure([*cmd, "--json"], timeout, env)
    if result["returncode"] == 0:
        result["drifted"] = len(json.loads(result["stdout"])["drift"]["drifted_features"])
    return result


def run_peer(tool: str, reference: Path, current: Path, timeout: float) -> dict[str, Any]:
    python, code = (VENV_PYTHON, EVIDENTLY) if tool == "evidently" else (NANNYML_PYTHON, NANNYML)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = measure([str(python), "-c", code, str(reference), str(current)], timeout, env)
    if result["returncode"] == 0:
        result.update(json.loads(result["stdout"].strip().splitlines()[-1]))
    return result


def run_tool(
    tool: str, reference: Path, current: Path, timeout: float, compare: Path | None = None
) -> dict[str, Any]:
    if tool == "modelward":
        return run_modelward(reference, current, timeout)
    if tool == BEFORE:
        return run_modelward(reference, current, timeout, compare)
    return run_peer(tool, reference, current, timeout)


def summarise(runs: list[dict[str, Any]], time_limit: float) -> dict[str, Any]:
    ok = [r for r in runs if r["returncode"] == 0 and not r["timed_out"]]
    if not ok:
        if runs and runs[-1]["timed_out"]:
            return {"runs": len(runs), "ok": 0, "exceeded": f"stopped after the {time_limit:g} s limit"}
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


def table(entry: dict[str, Any]) -> str:
    """One size's Markdown table, with each peer's time and memory over modelward's."""
    rows = [
        "| tool | median wall s | median CPU s | median peak RSS MB | drifted columns | runs |",
        "|---|---|---|---|---|---|",
    ]
    for tool in (TOOLS[0], BEFORE, *PEERS):
        s = entry["tools"].get(tool)
        if not s:
            continue
        if not s.get("ok"):
            why = s.get("skipped") or s.get("exceeded") or "failed"
            rows.append(f"| {tool} | {why} | | | | {s['runs']} |")
            continue
        rows.append(
            f"| {tool} | {s['median_seconds']} | {s['median_cpu_seconds']} | {s['median_peak_rss_mb']} | "
            f"{s['drifted']} of {entry['columns']} | {s['ok']} |"
        )
    m = entry["tools"].get("modelward", {})
    entry["ratio"] = {}
    for peer in PEERS:
        e = entry["tools"].get(peer, {})
        if m.get("ok") and e.get("ok"):
            time_ratio = e["median_seconds"] / m["median_seconds"]
            rss_ratio = e["median_peak_rss_mb"] / m["median_peak_rss_mb"]
            entry["ratio"][peer] = {"time": round(time_ratio, 1), "peak_rss": round(rss_ratio, 1)}
            rows.append("")
            rows.append(f"{peer} / modelward: {time_ratio:.1f}x the time, {rss_ratio:.1f}x the peak memory.")
    return "\n".join(rows)


def skip_reason(tool: str, rows: int, done: list[dict[str, Any]], limit: float) -> str | None:
    """Why a peer is not run at ``rows``: it passed the limit at a smaller size, or its median there,
    scaled by the rows, would."""
    for entry in done:
        s = entry["tools"].get(tool, {})
        if s.get("exceeded") or (s.get("skipped") and s.get("ok") == 0):
            return f"skipped: past the {limit:g} s limit at {entry['rows']:,} rows"
    if done and done[-1]["tools"].get(tool, {}).get("ok"):
        last = done[-1]
        projected = last["tools"][tool]["median_seconds"] * rows / last["rows"]
        if projected > limit:
            since = f"{last['rows']:,} rows"
            return f"skipped: projected {projected:,.0f} s from {since}, past the {limit:g} s limit"
    return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument(
        "--sizes", default="", help="comma-separated row counts, smallest first (overrides --rows)"
    )
    p.add_argument("--columns", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3, help="runs of each tool, alternating (median reported)")
    p.add_argument("--current-format", choices=("csv", "parquet"), default="csv")
    p.add_argument("--work", type=Path, default=HERE / ".drift-data", help="where the generated files go")
    p.add_argument(
        "--time-limit",
        "--timeout",
        dest="timeout",
        type=float,
        default=3_600.0,
        help="seconds allowed per run; a peer past it is stopped and not run at larger sizes",
    )
    p.add_argument("--skip-evidently", action="store_true", help="do not measure Evidently")
    p.add_argument("--skip-nannyml", action="store_true", help="do not measure NannyML")
    p.add_argument(
        "--quick", action="store_true", help="2,000 rows x 5 columns, one round: the harness works"
    )
    p.add_argument("--out", type=Path, help="also write the results as JSON here")
    p.add_argument(
        "--compare",
        type=Path,
        metavar="SRC",
        help=f"also run modelward from SRC (another checkout's src, on PYTHONPATH) as {BEFORE!r}",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="instead: profile modelward's two-file path in this process, one thread, at the largest size",
    )
    return p.parse_args(argv)


PROFILE = """
import cProfile, pstats, sys, time
from modelward.monitoring import drift_files
from modelward.monitoring.drift_files import compare_files


class Inline:  # the columns run in this thread, where the profiler sees them
    def __init__(self, *args, **kwargs): pass
    def __enter__(self): return self
    def __exit__(self, *exc): return False
    map = staticmethod(map)

    @staticmethod
    def submit(fn, *args):
        from concurrent.futures import Future
        done = Future()
        done.set_result(fn(*args))
        return done


drift_files.ThreadPoolExecutor = Inline
profiler = cProfile.Profile()
started = time.perf_counter()
profiler.enable()
result = compare_files(sys.argv[1], sys.argv[2], workers=1)
profiler.disable()
print(f"compare_files, one thread: {time.perf_counter() - started:.1f} s, "
      f"{len(result.report.drifted_features)} columns drifted")
pstats.Stats(profiler).sort_stats("tottime").print_stats(int(sys.argv[3]))
"""


def profile(reference: Path, current: Path, lines: int = 15) -> int:
    """Where modelward's time goes: cProfile over ``compare_files`` with its columns run one after the
    other in the profiled thread (the profiler sees only its own thread), the functions that spent the
    most time themselves first."""
    return subprocess.run(
        [sys.executable, "-c", PROFILE, str(reference), str(current), str(lines)], cwd=ROOT
    ).returncode


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [int(n) for n in args.sizes.split(",") if n.strip()] or [args.rows]
    if args.quick:
        sizes, args.columns, args.rounds = [2_000], 5, 1
    if any(n < 10 for n in sizes) or sizes != sorted(sizes):
        raise SystemExit("--sizes: row counts of at least 10, smallest first")
    args.work.mkdir(parents=True, exist_ok=True)
    if args.profile:
        return profile(*generate(args.work, sizes[-1], args.columns, args.current_format))
    sys.path.insert(0, str(HERE))
    import machine

    tools = ["modelward", *([BEFORE] if args.compare else [])]
    for peer, python, skip, setup in (
        ("evidently", VENV_PYTHON, args.skip_evidently, "setup_evidently.sh"),
        ("nannyml", NANNYML_PYTHON, args.skip_nannyml, "setup_nannyml.sh"),
    ):
        if skip:
            continue
        if python.exists():
            tools.append(peer)
        else:
            print(f"{python} is missing: run bash benchmarks/{setup} (not measuring {peer})")
    results: dict[str, Any] = {
        "columns": args.columns,
        "rounds": args.rounds,
        "time_limit": args.timeout,
        "machine": machine.describe(),
        "sizes": [],
    }
    for rows in sizes:
        reference, current = generate(args.work, rows, args.columns, args.current_format)
        skipped = {
            t: why
            for t in tools
            if t in PEERS and (why := skip_reason(t, rows, results["sizes"], args.timeout))
        }
        runs: dict[str, list[dict[str, Any]]] = {t: [] for t in tools if t not in skipped}
        for round_ in range(1, args.rounds + 1):
            for tool in list(runs):
                if runs[tool] and runs[tool][-1]["timed_out"]:
                    continue  # one run past the limit says enough
                runs[tool].append(run_tool(tool, reference, current, args.timeout, args.compare))
                last = runs[tool][-1]
                flag = " (past the limit, stopped)" if last["timed_out"] else ""
                print(f"{rows:,} rows, round {round_}: {tool} {last['seconds']} s{flag}", flush=True)
        entry: dict[str, Any] = {
            "rows": rows,
            "columns": args.columns,
            "files": {"reference": reference.name, "current": current.name},
            "load_average": machine.load_average(),
            "tools": {tool: summarise(r, args.timeout) for tool, r in runs.items()}
            | {tool: {"runs": 0, "ok": 0, "skipped": why} for tool, why in skipped.items()},
            "runs": {
                tool: [{k: v for k, v in x.items() if k != "stdout"} for x in r] for tool, r in runs.items()
            },
        }
        text = table(entry)
        results["sizes"].append(entry)
        print(f"\n{rows:,} rows x {args.columns} columns, {reference.name} vs {current.name}\n")
        print(text + "\n", flush=True)
        if args.out is not None:  # after every size: a long sweep stopped later keeps what it measured
            args.out.write_text(json.dumps(results, indent=2))
    failed = [e["rows"] for e in results["sizes"] if not e["tools"]["modelward"].get("ok")]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
