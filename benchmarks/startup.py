"""How long modelward's read-only commands take, against the bare MLflow client doing the same read.

    python benchmarks/startup.py                      # trains churn in a fresh home; 15 rounds; serve 3x
    python benchmarks/startup.py --home ./.modelward  # an existing home holding churn (the README's)
    python benchmarks/startup.py --quick              # 2 rounds, serve once: checks the harness works
    python benchmarks/startup.py --rounds 30 --serve-rounds 5 --out startup.json
    python benchmarks/startup.py --home H --serve-only --serve-rounds 8 --compare ../main/src  # before/after

Every command runs in a fresh interpreter, as a user runs it (``python -m modelward ...``), with its
output discarded; its wall time is taken from just before the process starts to its exit. Each round
runs every command once, in an order rotated by one from the round before, so that no command always
follows the same one; the figures are medians over the rounds. One unmeasured round (``--warmup``)
first fills the caches (the OS page cache, the compiled-model cache).

The floors are what the same read costs without modelward: a fresh interpreter that imports MLflow's
client and makes the call (``MlflowClient(...).search_model_versions("name='churn'")``, or
``search_registered_models()`` for ``models``) against the same tracking database, and a bare
``python -c pass``. Targets (issue 15): each command that reads MLflow within 1.3x its floor, and the
commands that read only modelward's own store (``alerts``, ``audit verify``) under 0.5 s.

``serve``: ``modelward serve churn`` on a free port, timed from the start of the process to the
first accepted TCP connection (tried every 10 ms) and to the first ``GET /ready`` answering 200
(tried every 0.1 s: a probe answered takes the interpreter from the loading model), targets 1 s and
3 s; then stopped with SIGINT. With ``--compare SRC`` every serve run is paired with one of the code
in ``SRC`` (another checkout's ``src``, put on ``PYTHONPATH``), alternating which goes first, so that
both see the same machine. docs/benchmarks.md ("Start-up") says how to read the figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODEL = "churn"

FLOOR_VERSIONS = "mlflow search_model_versions"
FLOOR_MODELS = "mlflow search_registered_models"
PYTHON = "python -c pass"
MLFLOW_TARGET = 1.3
STORE_TARGET_S = 0.5
PORT_TARGET_S = 1.0
READY_TARGET_S = 3.0

_MLFLOW_READ = """
import sys
from mlflow import MlflowClient
uri = sys.argv[1]
client = MlflowClient(tracking_uri=uri, registry_uri=uri)
{call}
"""


@dataclass(frozen=True)
class Command:
    name: str
    argv: tuple[str, ...]
    floor: str | None = None  # the floor it is compared with, by name
    target: str = ""


def commands(tracking_uri: str) -> list[Command]:
    py = sys.executable
    versions_read = _MLFLOW_READ.format(call=f"client.search_model_versions(\"name='{MODEL}'\")")
    models_read = _MLFLOW_READ.format(call="client.search_registered_models()")
    mw = (py, "-m", "modelward")
    ratio = f"<= {MLFLOW_TARGET}x floor"
    absolute = f"< {STORE_TARGET_S} s"
    return [
        Command(PYTHON, (py, "-c", "pass")),
        Command(FLOOR_VERSIONS, (py, "-c", versions_read, tracking_uri)),
        Command(FLOOR_MODELS, (py, "-c", models_read, tracking_uri)),
        Command("modelward --help", (*mw, "--help")),
        Command("modelward models", (*mw, "models"), FLOOR_MODELS, ratio),
        Command("modelward versions churn", (*mw, "versions", MODEL), FLOOR_VERSIONS, ratio),
        Command("modelward show churn --quick", (*mw, "show", MODEL, "--quick"), FLOOR_VERSIONS, ratio),
        Command("modelward show churn", (*mw, "show", MODEL), FLOOR_VERSIONS, "(loads the model)"),
        Command("modelward deploy status churn", (*mw, "deploy", "status", MODEL), FLOOR_VERSIONS, ratio),
        Command("modelward alerts", (*mw, "alerts"), PYTHON, absolute),
        Command("modelward audit verify", (*mw, "audit", "verify"), PYTHON, absolute),
    ]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_once(command: Command, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command.argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command.name} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return seconds


def measure(cmds: list[Command], env: dict[str, str], rounds: int, warmup: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {c.name: [] for c in cmds}
    for _ in range(warmup):  # the page cache, the compiled-model cache, MLflow's first-use work
        for c in cmds:
            run_once(c, env)
    for r in range(rounds):
        order = cmds[r % len(cmds) :] + cmds[: r % len(cmds)]
        for c in order:
            times[c.name].append(run_once(c, env))
        log(
            f"round {r + 1}/{rounds}: "
            + ", ".join(f"{c.name.split()[-1]} {times[c.name][-1]:.2f}" for c in cmds)
        )
    return times


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ready(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/ready")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def serve_once(env: dict[str, str], timeout: float = 120.0) -> dict[str, float]:
    """Seconds from the start of ``modelward serve churn`` to the port accepting and /ready at 200."""
    port = free_port()
    argv = [sys.executable, "-m", "modelward", "serve", MODEL, "--port", str(port), "--no-access-log"]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    result: dict[str, float] = {}
    try:
        while time.perf_counter() - started < timeout:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"serve exited {proc.returncode}: {proc.stderr.read()[-500:] if proc.stderr else ''}"
                )
            if "port_open_s" not in result:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        result["port_open_s"] = time.perf_counter() - started
            if "port_open_s" in result and _ready(port):
                result["ready_s"] = time.perf_counter() - started
                return result
            # Refused connects cost the server nothing; each /ready answered takes the interpreter
            # lock from the thread loading the model, so once the port is open, probe every 0.1 s.
            time.sleep(0.1 if "port_open_s" in result else 0.01)
        raise RuntimeError(f"serve was not ready within {timeout:.0f} s ({result})")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure_serve(
    env: dict[str, str], rounds: int, compare: Path | None = None
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Serve ``rounds`` times; with ``compare`` (another tree's ``src``), as many times with that code
    too (``PYTHONPATH``), alternating, each pair in the opposite order of the one before."""
    out: dict[str, list[float]] = {"port_open_s": [], "ready_s": []}
    other: dict[str, list[float]] = {"port_open_s": [], "ready_s": []}
    runs: list[tuple[str, dict[str, str], dict[str, list[float]]]] = [("this", env, out)]
    if compare is not None:
        runs.append((str(compare), {**env, "PYTHONPATH": str(compare.resolve())}, other))
    for r in range(rounds):
        for label, run_env, into in runs if r % 2 == 0 else runs[::-1]:
            one = serve_once(run_env)
            for key, value in one.items():
                into[key].append(value)
            log(
                f"serve {r + 1}/{rounds} ({label}): port {one['port_open_s']:.2f} s, "
                f"ready {one['ready_s']:.2f} s, load {os.getloadavg()[0]:.1f}"
            )
    return out, other


def prepare_home(home: Path | None, work: Path) -> Path:
    """A home holding churn: the one given, or a fresh one trained as the README does."""
    if home is not None:
        return home.resolve()
    log(f"training churn into {work / '.modelward'} (examples/churn/train.py)...")
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "churn" / "train.py"), "--data-dir", str(work / "data")],
        cwd=work,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return work / ".modelward"


def summarise(
    cmds: list[Command],
    times: dict[str, list[float]],
    serve: dict[str, list[float]],
    compared: dict[str, list[float]] | None = None,
) -> dict[str, Any]:
    median = {name: statistics.median(values) for name, values in times.items() if values}
    rows = []
    for c in cmds if median else []:
        row: dict[str, Any] = {"command": c.name, "median_s": median[c.name], "runs": len(times[c.name])}
        row["min_s"] = min(times[c.name])
        if c.floor is not None:
            row["floor"] = c.floor
            row["ratio"] = median[c.name] / median[c.floor]
        if c.target.startswith("<="):
            row["met"] = row["ratio"] <= MLFLOW_TARGET
        elif c.target.startswith("<"):
            row["met"] = median[c.name] < STORE_TARGET_S
        row["target"] = c.target
        rows.append(row)
    serve_rows = {key: statistics.median(values) for key, values in serve.items() if values}
    summary = {"commands": rows, "serve": serve_rows, "serve_runs": len(serve.get("ready_s", []))}
    summary["serve_all"] = serve
    if compared and compared.get("ready_s"):
        summary["compared"] = {key: statistics.median(values) for key, values in compared.items()}
        summary["compared_all"] = compared
    return summary


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        "| command | median s | min s | floor | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    if not summary["commands"]:
        lines = []
    for row in summary["commands"]:
        ratio = f"{row['ratio']:.2f}x" if "ratio" in row else ""
        met = "" if "met" not in row else "yes" if row["met"] else "**no**"
        lines.append(
            f"| `{row['command']}` | {row['median_s']:.2f} | {row['min_s']:.2f} | {row.get('floor', '')} "
            f"| {ratio} | {row['target']} | {met} |"
        )
    serve = summary["serve"]
    if serve:
        lines += [
            "",
            "| `modelward serve churn` | median s | target | met |",
            "|---|---|---|---|",
            f"| port accepts | {serve['port_open_s']:.2f} | < {PORT_TARGET_S} s | "
            f"{'yes' if serve['port_open_s'] < PORT_TARGET_S else '**no**'} |",
            f"| `/ready` 200 | {serve['ready_s']:.2f} | < {READY_TARGET_S} s | "
            f"{'yes' if serve['ready_s'] < READY_TARGET_S else '**no**'} |",
        ]
    compared = summary.get("compared")
    if compared:
        runs = len(summary["compared_all"]["ready_s"])
        lines += [
            "",
            f"The code compared (`--compare`, alternating): port accepts {compared['port_open_s']:.2f} s, "
            f"`/ready` 200 {compared['ready_s']:.2f} s (medians of {runs}).",
        ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--home", type=Path, help="a modelward home holding churn (default: train one)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first")
    parser.add_argument("--serve-rounds", type=int, default=3, help="0 skips serve")
    parser.add_argument("--quick", action="store_true", help="2 rounds, serve once")
    parser.add_argument("--serve-only", action="store_true", help="time serve alone, not the commands")
    parser.add_argument(
        "--compare", type=Path, help="another tree's src: serve with it too, alternating (before/after)"
    )
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.serve_rounds = 2, min(args.serve_rounds, 1)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="modelward-startup-"))
    try:
        home = prepare_home(args.home, work)
        tracking_uri = f"sqlite:///{home / 'mlflow.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELWARD_", "MLFLOW_"))}
        env["MODELWARD_HOME"] = str(home)
        cmds = commands(tracking_uri)
        times = {} if args.serve_only else measure(cmds, env, args.rounds, args.warmup)
        serve, compared = (
            measure_serve(env, args.serve_rounds, args.compare) if args.serve_rounds else ({}, {})
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = summarise(cmds, times, serve, compared)
    summary["rounds"] = args.rounds
    summary["load_average"] = os.getloadavg()
    print(markdown(summary))
    if args.out is not None:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
