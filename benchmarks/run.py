"""modelward's serving benchmarks, side by side with its peers, in one command.

    python benchmarks/run.py                      # everything below, about 15 minutes on 2 cores
    python benchmarks/run.py --quick              # small sizes (5-8 minutes): checks the harness works
    python benchmarks/run.py --only serving,noop --rounds 5 --duration 15
    python benchmarks/run.py --write-docs         # also rewrite the results block of docs/benchmarks.md

Scenarios (``--only``; the default is all but drift):

* ``serving``: churn:1 (logistic regression pipeline) served by modelward (batching off and on),
  ``mlflow models serve`` and a plain FastAPI + pydantic server, at 1 and 32 connections;
* ``noop``: modelward serving a one-feature LinearRegression against a bare uvicorn + orjson app;
* ``logging``: modelward with the prediction log on and off;
* ``workers``: modelward with 1 and 2 workers;
* ``overload``: modelward (compiled, native, native without batching) at 32, 256 and 1,000
  connections: goodput, the latency of accepted requests and the share shed (benchmarks/overload.py);
* ``latency``: in process, single-row native vs compiled latency per model type (benchmarks/latency.py);
* ``drift``: benchmarks/drift_vs_evidently.py, when that file exists (not run by default).

Within an HTTP scenario every server is started (on a free loopback port) and warmed first, then
the systems are measured in turn, A B C A B C ..., ``--rounds`` times; medians are reported. The
results go to ``--out`` (JSON) and a Markdown file beside it; docs/benchmarks.md says how to read them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import extra_peers
import loadgen
import machine
import overload
import report
import servers
import tracing_cost
from servers import MODELWARD_DEFAULTS, Server, System

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HTTP_SCENARIOS = ("serving", "noop", "logging", "workers", "overload")
DEFAULT_SCENARIOS = (*HTTP_SCENARIOS, "latency")
ALL_SCENARIOS = (*DEFAULT_SCENARIOS, "drift", "tracing")  # the last two only when named
DRIFT_SCRIPT = HERE / "drift_vs_evidently.py"
EXTRA_MODELS = "forest,xgboost,lightgbm"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="small sizes: 3 rounds of 1 s, 200 latency calls")
    p.add_argument(
        "--only", default=",".join(DEFAULT_SCENARIOS), help=f"comma-separated from {', '.join(ALL_SCENARIOS)}"
    )
    p.add_argument(
        "--systems", default="", help="only these systems (names as in the results), comma-separated"
    )
    p.add_argument("--connections", default="1,32", help="client connection counts for serving and noop")
    p.add_argument(
        "--overload-connections", default="32,256,1000", help="client connection counts for overload"
    )
    p.add_argument("--rounds", type=int, help="measured runs per system and connection count (default 3)")
    p.add_argument("--duration", type=float, help="seconds per measured run (default 10; quick 1)")
    p.add_argument("--warmup", type=float, help="seconds of warm-up load per server (default 5; quick 1)")
    p.add_argument("--pause", type=float, help="idle seconds between runs (default 1; quick 0.2)")
    p.add_argument("--client", choices=("auto", "wrk", "python"), default="auto", help="load generator")
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument("--calls", type=int, help="single-row calls per model and path (default 1000; quick 200)")
    p.add_argument(
        "--latency-models",
        default="logistic_regression,hist_gradient_boosting,random_forest,xgboost,lightgbm",
    )
    p.add_argument("--rows", type=int, default=20_000, help="churn training rows")
    p.add_argument(
        "--model-version",
        default="1",
        help="churn version for the serving scenario (2: HistGradientBoosting)",
    )
    p.add_argument(
        "--mw-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="setting for every modelward server",
    )
    p.add_argument(
        "--work", type=Path, default=HERE / ".work", help="models, homes, logs (default benchmarks/.work)"
    )
    p.add_argument("--out", type=Path, help="results JSON (default <work>/results.json)")
    p.add_argument("--write-docs", action="store_true", help="write the tables into docs/benchmarks.md")
    p.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    p.add_argument(
        "--extra-peers",
        default="",
        help="also serve with mlserver,bentoml (both forms of each; own virtualenvs, made once), or "
        "with forms and settings: bentoml-batching:max_batch_size=32,mlserver-batching:parallel_workers=1",
    )
    p.add_argument(
        "--venvs",
        type=Path,
        help="where the extra peers' virtualenvs are made and kept (default <work>/venvs)",
    )
    p.add_argument("--fresh", action="store_true", help="train and register the models again")
    p.add_argument(
        "--minimal-models", action="store_true", help="register churn:1 and noop only (smoke test)"
    )
    args = p.parse_args(argv)
    quick = args.quick
    for name, full, small in (
        ("rounds", 3, 3),
        ("duration", 10.0, 1.0),
        ("warmup", 5.0, 1.0),
        ("pause", 1.0, 0.2),
        ("calls", 1000, 200),
    ):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    args.scenarios = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.scenarios) - set(ALL_SCENARIOS)
    if unknown:
        p.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; choose from {', '.join(ALL_SCENARIOS)}")
    args.conns = [int(c) for c in args.connections.split(",") if c.strip()]
    args.overload_conns = [int(c) for c in args.overload_connections.split(",") if c.strip()]
    args.system_filter = {s.strip() for s in args.systems.split(",") if s.strip()}
    try:
        args.extras = extra_peers.expand([s.strip() for s in args.extra_peers.split(",") if s.strip()])
    except ValueError as exc:
        p.error(f"--extra-peers: {exc}")
    args.out = args.out or args.work / "results.json"
    for item in args.mw_env:
        if "=" not in item:
            p.error(f"--mw-env wants KEY=VALUE, got {item!r}")
    return args


# --- models --------------------------------------------------------------------------------------


def prepare(work: Path, rows: int, extra: str, fresh: bool, minimal: bool = False) -> dict[str, Any]:
    """Train and register into ``<work>/home`` unless a matching home is already there."""
    home = work / "home"
    marker = home / "benchmark-models.json"
    wanted: dict[str, Any] = {
        "rows": rows,
        "extra": sorted(e for e in extra.split(",") if e),
        "minimal": minimal,
    }
    if not fresh and marker.exists():
        done: dict[str, Any] = json.loads(marker.read_text())
        same = done["rows"] == rows and set(wanted["extra"]) <= set(done["extra"])
        if same and (minimal or not done.get("minimal")):
            return done
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    log(f"training and registering the benchmark models into {home} ...")
    began = time.monotonic()
    env = servers.clean_env(MODELWARD_HOME=str(home), MODELWARD_ACTOR="benchmark")
    cmd = [sys.executable, str(HERE / "prepare.py"), "--rows", str(rows), "--data-dir", str(work / "data")]
    cmd += ["--extra", extra, *(["--minimal"] if minimal else [])]
    done_proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done_proc.returncode != 0:
        raise SystemExit(
            f"preparing the models failed:\n{done_proc.stdout[-2000:]}\n{done_proc.stderr[-4000:]}"
        )
    registered = json.loads(done_proc.stdout.strip().splitlines()[-1])
    done = {**wanted, **registered, "seconds": round(time.monotonic() - began, 1)}
    marker.write_text(json.dumps(done, indent=2))
    return done


def private_home(work: Path, name: str) -> Path:
    """A fresh copy of the template home per modelward server: each writes its own prediction log."""
    target = work / "homes" / name.replace("+", "-")
    shutil.rmtree(target, ignore_errors=True)
    ignore = shutil.ignore_patterns("artifacts", "*.log")  # artifacts are read in place, by absolute URI
    shutil.copytree(work / "home", target, ignore=ignore)
    return target


# --- scenarios -----------------------------------------------------------------------------------


def scenario_systems(scenario: str, args: argparse.Namespace) -> list[System]:
    home = args.work / "home"
    overrides = dict(item.split("=", 1) for item in args.mw_env)

    def mw(name: str, description: str, model: str = "churn", workers: int = 1, **settings: str) -> System:
        merged = {**MODELWARD_DEFAULTS, **overrides, **settings}
        ref = model if model == "noop" else f"churn:{args.model_version}" if model == "churn" else model
        return servers.modelward_system(
            name, description, private_home(args.work, name), ref, workers=workers, settings=merged
        )

    sink = getattr(args, "sink", None)
    builders: dict[str, list[Callable[[], System]]] = {
        "tracing": tracing_cost.builders(mw, sink.url if sink is not None else ""),
        "serving": [
            lambda: mw("modelward", "modelward serve, batching off"),
            lambda: mw(
                "modelward+batching", "modelward serve, adaptive batching on", MODELWARD_BATCHING="true"
            ),
            lambda: servers.mlflow_system(home, args.model_version),
            lambda: servers.fastapi_system(home, args.model_version),
        ],
        # The no-op and logging scenarios run modelward as it is run by default: batching on.
        "noop": [
            lambda: mw(
                "modelward-noop",
                "modelward serve noop (one-feature LinearRegression), its defaults",
                model="noop",
                MODELWARD_BATCHING="true",
            ),
            lambda: mw(
                "modelward-noop-log-off",
                "modelward serve noop, prediction log off",
                model="noop",
                MODELWARD_BATCHING="true",
                MODELWARD_PREDICTION_LOG="false",
            ),
            servers.bare_system,
        ],
        "logging": [
            lambda: mw(
                "modelward-log-on",
                "modelward serve, prediction log on (batching on)",
                MODELWARD_PREDICTION_LOG="true",
                MODELWARD_BATCHING="true",
            ),
            lambda: mw(
                "modelward-log-off",
                "modelward serve, prediction log off (batching on)",
                MODELWARD_PREDICTION_LOG="false",
                MODELWARD_BATCHING="true",
            ),
        ],
        "workers": [
            lambda: mw("modelward-1-worker", "modelward serve --workers 1", workers=1),
            lambda: mw("modelward-2-workers", "modelward serve --workers 2", workers=2),
        ],
        # Overload runs modelward as it is run by default (batching on), compiled and not, and
        # the native model with one call per request: the slowest, overloaded first.
        "overload": [
            lambda: mw(
                "modelward-compiled",
                "modelward serve, compiled runtime, batching on",
                MODELWARD_BATCHING="true",
                MODELWARD_COMPILE="true",
            ),
            lambda: mw(
                "modelward-native",
                "modelward serve, native scikit-learn, batching on",
                MODELWARD_BATCHING="true",
                MODELWARD_COMPILE="false",
            ),
            lambda: mw(
                "modelward-native-unbatched",
                "modelward serve, native scikit-learn, batching off",
                MODELWARD_BATCHING="false",
                MODELWARD_COMPILE="false",
            ),
        ],
    }
    names = {
        "tracing": tracing_cost.NAMES,
        "serving": ["modelward", "modelward+batching", "mlflow", "fastapi"],
        "noop": ["modelward-noop", "modelward-noop-log-off", "bare-asgi"],
        "logging": ["modelward-log-on", "modelward-log-off"],
        "workers": ["modelward-1-worker", "modelward-2-workers"],
        "overload": ["modelward-compiled", "modelward-native", "modelward-native-unbatched"],
    }[scenario]
    keep = [i for i, n in enumerate(names) if not args.system_filter or n in args.system_filter]
    return [builders[scenario][i]() for i in keep]


def run_http(scenario: str, args: argparse.Namespace, results: dict[str, Any]) -> None:
    if scenario == "tracing":  # the servers export to a sink of their own
        args.sink = tracing_cost.Sink()
        try:
            _run_http(scenario, args, results)
        finally:
            results["tracing_sink"] = args.sink.stats()
            args.sink.stop()
        return
    _run_http(scenario, args, results)


def _run_http(scenario: str, args: argparse.Namespace, results: dict[str, Any]) -> None:
    systems = scenario_systems(scenario, args)
    for peer in args.extras if scenario == "serving" else []:
        if args.system_filter and peer not in args.system_filter:
            continue
        log(f"[{scenario}] preparing {peer} (its own virtualenv, made once) ...")
        try:
            systems.append(extra_peers.extra_system(peer, args.work, args.model_version, args.venvs))
        except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
            results["failures"].append({"scenario": scenario, "system": peer, "error": str(exc)[-3000:]})
            log(f"[{scenario}] {peer} skipped: {str(exc)[:600]}")
    if not systems:
        log(f"[{scenario}] no system left after --systems; skipped")
        return
    conns = args.conns if scenario in ("serving", "noop") else [max(args.conns)]
    measure: Callable[..., Any] = loadgen.run_load
    if scenario == "overload":
        conns, measure = args.overload_conns, overload.run_overload
        overload.raise_file_limit(max(conns))  # before the servers start: they inherit it
    launched: list[Server] = []
    try:
        for system in systems:
            results["systems"][system.name] = {"description": system.description, "settings": system.settings}
            log(f"[{scenario}] starting {system.name} ...")
            launched.append(Server(system, args.work / "logs" / scenario).launch())
        up: list[Server] = []
        for server in launched:
            name = server.system.name
            try:
                server.wait()
            except RuntimeError as exc:
                results["failures"].append({"scenario": scenario, "system": name, "error": str(exc)[-3000:]})
                log(f"[{scenario}] {name} did not start: {str(exc)[:600]}")
                continue
            up.append(server)
            results["systems"][name].update({"start_seconds": server.started_in, "sample": server.sample})
            log(f"[{scenario}] {name} ready after {server.started_in} s")
        for server in up:
            try:
                warm = loadgen.run_load(
                    server.predict_url,
                    server.system.body,
                    max(conns),
                    args.warmup,
                    client=args.client,
                    threads=args.threads,
                )
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                results["systems"][server.system.name]["warmup"] = {"failure": str(exc)[-1500:]}
            else:
                results["systems"][server.system.name]["warmup"] = warm.to_dict()
        for rnd in range(1, args.rounds + 1):
            for c in conns:
                for server in up:
                    record: dict[str, Any] = {
                        "scenario": scenario,
                        "system": server.system.name,
                        "round": rnd,
                        "connections": c,
                    }
                    cpu_before = machine.cpu_times()
                    server_before = machine.process_tree_cpu(server.pid)
                    main_before = machine.process_cpu(server.pid)
                    try:
                        got = measure(
                            server.predict_url,
                            server.system.body,
                            c,
                            args.duration,
                            client=args.client,
                            threads=args.threads,
                        )
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        record["failure"] = str(exc)[-1500:]
                        log(f"[{scenario}] round {rnd} {server.system.name} c={c}: FAILED {str(exc)[:300]}")
                    else:
                        record.update(got.to_dict())
                        record["steal"] = machine.steal_share(cpu_before, machine.cpu_times())
                        server_after = machine.process_tree_cpu(server.pid)
                        record.update(cpu_per_request(got, server_before, server_after))
                        main_after = machine.process_cpu(server.pid)
                        if main_before is not None and main_after is not None and got.requests > 0:
                            record["server_main_cpu_us"] = round(
                                1e6 * (main_after - main_before) / got.requests, 1
                            )
                        flag = "" if got.ok else f"  ERRORS {got.errors}"
                        if scenario == "overload":
                            flag += f"  shed {got.shed_share:.0%} (p99 {got.shed_p99_ms:.1f} ms)"
                        stolen = f"  steal {record['steal']:.0%}" if record["steal"] is not None else ""
                        cpu = record.get("server_cpu_us")
                        cost = f"  server {cpu:.0f} us/req" if cpu is not None else ""
                        if cpu is not None and record.get("server_main_cpu_us") is not None:
                            cost += f" (main process {record['server_main_cpu_us']:.0f})"
                        log(
                            f"[{scenario}] round {rnd}/{args.rounds} {server.system.name:<20} c={c:<3} "
                            f"{got.rps:>9.1f} req/s  p50 {got.p50_ms:7.2f} ms  p99 {got.p99_ms:7.2f} ms"
                            f"{flag}{stolen}{cost}"
                        )
                    results["runs"].append(record)
                    time.sleep(args.pause)
    finally:
        for server in launched:
            server.stop()


def cpu_per_request(got: loadgen.LoadResult, before: float | None, after: float | None) -> dict[str, float]:
    """CPU microseconds per answered request spent by the server (its process tree) and by the load
    generator, and the cores the server kept busy on average. Steadier than requests/s on a noisy
    machine: a change that makes the server cheaper shows here even when the neighbours are loud."""
    out: dict[str, float] = {}
    if got.requests <= 0:
        return out
    if before is not None and after is not None:
        out["server_cpu_us"] = round(1e6 * (after - before) / got.requests, 1)
        out["server_cores"] = round((after - before) / max(got.seconds, 1e-9), 2)
    if got.client_cpu_s is not None:
        out["client_cpu_us"] = round(1e6 * got.client_cpu_s / got.requests, 1)
    return out


def run_latency(args: argparse.Namespace, results: dict[str, Any]) -> None:
    log(f"[latency] {args.calls} single-row calls per model and path ...")
    env = servers.clean_env(MODELWARD_HOME=str(args.work / "home"), MODELWARD_ACTOR="benchmark")
    cmd = [
        sys.executable,
        str(HERE / "latency.py"),
        "--calls",
        str(args.calls),
        "--models",
        args.latency_models,
    ]
    cmd += ["--cache-dir", str(args.work / "onnx-cache")]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(loadgen.MARK)]
    if done.returncode != 0 or not lines:
        results["failures"].append({"scenario": "latency", "error": (done.stdout + done.stderr)[-3000:]})
        log(f"[latency] failed:\n{done.stderr[-2000:]}")
        return
    results["latency"] = json.loads(lines[-1][len(loadgen.MARK) :])
    for name, e in results["latency"].items():
        if "error" in e:
            log(f"[latency] {name}: {e['error']}")
        elif e["compiled"]:
            log(
                f"[latency] {name:<24} native {e['native']['median_us']:>9.1f} us  compiled frame "
                f"{e['compiled_frame']['median_us']:>7.1f} us  "
                f"arrays {e['compiled_arrays']['median_us']:>7.1f} us"
                f"  ({e['speedup_frame']}x / {e['speedup_arrays']}x)"
            )
        else:
            log(f"[latency] {name}: not compiled ({e['reason']}); native {e['native']['median_us']} us")


def run_drift(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Run the drift helper's script as it is, passing --quick/--out only if its --help offers them."""
    if not DRIFT_SCRIPT.exists():
        log("[drift] benchmarks/drift_vs_evidently.py is not there; skipped")
        results["notes"].append("drift: benchmarks/drift_vs_evidently.py not present, skipped")
        return
    helptext = subprocess.run(
        [sys.executable, str(DRIFT_SCRIPT), "--help"], capture_output=True, text=True, cwd=ROOT, check=False
    ).stdout
    cmd = [sys.executable, str(DRIFT_SCRIPT)]
    if args.quick and "--quick" in helptext:
        cmd.append("--quick")
    out = args.work / "drift.json"
    if "--out" in helptext:
        cmd += ["--out", str(out)]
    log(f"[drift] {' '.join(cmd)}")
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    shown = ["python", str(DRIFT_SCRIPT.relative_to(ROOT)), *cmd[2:]]
    entry: dict[str, Any] = {"command": " ".join(shown), "returncode": done.returncode}
    entry["output_tail"] = (done.stdout + done.stderr)[-3000:]
    if "--out" in helptext and out.exists():
        with contextlib.suppress(json.JSONDecodeError):
            entry["results"] = json.loads(out.read_text())
    results["drift"] = entry


def _interrupted(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop the servers


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "format": 1,
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python", "benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine.describe(),
        "client": loadgen.choose_client(args.client),
        "settings": {
            k: getattr(args, k) for k in ("rounds", "duration", "warmup", "pause", "calls", "rows", "threads")
        }
        | {
            "scenarios": args.scenarios,
            "connections": args.conns,
            "overload_connections": args.overload_conns,
            "mw_env": args.mw_env,
            "model_version": args.model_version,
        },
        "systems": {},
        "runs": [],
        "failures": [],
        "notes": [],
    }
    if results["client"] == "python":
        results["notes"].append(
            "wrk not found: measured with the Python asyncio client, itself the bottleneck "
            "above a few thousand requests/s"
        )
    needs_extra = "latency" in args.scenarios and any(
        m in args.latency_models for m in ("random_forest", "xgboost", "lightgbm")
    )
    if any(s in args.scenarios for s in (*HTTP_SCENARIOS, "latency", "tracing")):
        extra = EXTRA_MODELS if needs_extra else ""
        results["models"] = prepare(args.work, args.rows, extra, args.fresh, args.minimal_models)
    for scenario in args.scenarios:
        if scenario in (*HTTP_SCENARIOS, "tracing"):
            run_http(scenario, args, results)
        elif scenario == "latency":
            run_latency(args, results)
        elif scenario == "drift":
            run_drift(args, results)
    results["machine"]["load_after"] = machine.load_average()
    results["machine"]["steal"] = machine.steal_share(results["machine"]["cpu_before"], machine.cpu_times())
    results["summary"] = report.summarize(results["runs"])
    results["targets"] = report.evaluate(results["summary"], results.get("latency") or {}, args.scenarios)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    block = report.markdown(results)
    args.out.with_suffix(".md").write_text(block)
    if args.write_docs:
        report.write_docs(args.docs, block)
    log("")
    for row in results["targets"]:
        value = "-" if row["value"] is None else f"{row['value']:.3g}x"
        log(f"  {report.verdict(row):<26} {row['target']}: {value} (goal {row['op']} {row['threshold']}x)")
    log(
        f"\nresults: {args.out} and {args.out.with_suffix('.md')}"
        + (f"; docs: {args.docs}" if args.write_docs else "")
    )
    if results["failures"]:
        log(f"{len(results['failures'])} system(s) or scenario(s) failed: see 'failures' in the results")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
